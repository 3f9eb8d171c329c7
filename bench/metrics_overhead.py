"""What metrics cost: W1 (a tiny form echoed as JSON) on izzati with metrics on and off, side by
side and interleaved in one invocation (the goal: on ≥ 0.95× off).

    python -m bench metrics [--runs 5] [--duration 5] [--connections 32] [--workers 1] [--no-pin]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.runner import W1_EXPECT, check_json, free_port, load_test, log, make_bodies, server_for, with_servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per target, median reported (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per timed run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="server processes per target (default 1)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin server/wrk to CPUs 0/1")
    opts = parser.parse_args(argv)
    opts.pin = opts.pin and (os.cpu_count() or 1) >= 2
    log(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="izzati-bench-metrics-") as tmp:
        bodies = make_bodies(Path(tmp))
        form = bodies["form"]
        on = server_for("izzati", "echo", free_port(), opts.pin, workers=opts.workers, label="metrics on")
        off = server_for("izzati", "echo", free_port(), opts.pin, workers=opts.workers, label="metrics off")
        off.argv.append("--no-metrics")
        rows = with_servers(
            [on, off],
            Path(tmp),
            lambda: load_test(
                [on, off], form, lambda port: check_json(port, form, W1_EXPECT), opts, opts.connections, opts.pin
            ),
        )
    log(f"load average after: {os.getloadavg()}")
    by = {row.label: row for row in rows}
    for row in rows:
        print(
            f"{row.label:<12} {row.rps:>10,.0f} req/s  p50 {row.p50_ms:.2f} ms  p99 {row.p99_ms:.2f} ms  "
            f"server CPU {row.server_cpu:.0%}  runs {row.runs} {row.note}"
        )
    ratio = by["metrics on"].rps / by["metrics off"].rps if by["metrics off"].rps else 0.0
    print(f"W1 metrics on / off: {ratio:.3f}x (goal >= 0.95x) -- {'met' if ratio >= 0.95 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
