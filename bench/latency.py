"""Latency percentiles of several wrk runs taken together.

wrk prints each run's percentiles; the median of three runs' p99s is the median of three figures
that each rest on the slowest 1 % of one run (3 requests of a 10 s run at 28 requests/s). Pooled,
the p99 of three such runs rests on 9. bench/lua/post.lua prints each run's histogram (every
latency it recorded, in µs, with its count), and `percentile` reads the pooled histograms the way
wrk reads one (`stats_percentile` in wrk's stats.c).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["percentile", "of_values"]

Histogram = Sequence[Sequence[float]]
"""[[latency µs, count], ...], as post.lua prints it."""


def percentile(histograms: Iterable[Histogram], p: float) -> float:
    """The `p`-th percentile (µs) of all the requests of `histograms` together; 0 with none."""
    counts: Counter[float] = Counter()
    for histogram in histograms:
        for value, count in histogram:
            counts[value] += int(count)
    total = sum(counts.values())
    if not total:
        return 0.0
    rank = math.floor(p / 100 * total + 0.5 + 0.5)  # C's round(): halves away from zero, as wrk has it
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)


def of_values(values: Iterable[float], p: float) -> float:
    """The `p`-th percentile of `values` (any unit), read as `percentile` reads a histogram: every
    bench script that times requests itself gives its p50 and p99 by the same rule as wrk's; 0 with
    none."""
    return percentile([[(value, 1) for value in values]], p)
