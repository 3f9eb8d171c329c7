"""How many of the calls waiting a batch takes: even batches when a batch costs in proportion to
its size, full ones when it does not.

With more calls waiting than one batch holds, full batches leave a remainder behind: 25 calls
that keep coming back (50 clients on two server processes) in batches of 8 go as 8, 8, 8 and 1,
and one call in eight waits a whole batch more than the others. Split evenly (7, 6, 6, 6), every
call waits about as long, and the slowest wait comes down to the mean's. That costs nothing when a
batch's work grows with its size (a convolutional network on a CPU: about 60 ms of CPU an image at
batch 1, 4 or 8), and a lot when it does not (a weight-bound model, or a GPU, for which a batch of 8
costs what one of 6 does): so the size of a batch is chosen by what batches of each size have cost.

The cost of a batch is the CPU time of the process while it ran (`time.process_time()`), not its
wall time: with several server processes on the same cores, a smaller batch's wall time per call
was 10-20 % above a full one's (the other processes took the cores it left), while its CPU time
per call was the same.

`BatchSizes.take(waiting)`: with at most `max_size` waiting, all of them; with more, the even share
(`ceil(waiting / ceil(waiting / max_size))`) when its cost per call, as measured, is within
`TOLERANCE` of a full batch's, or it has not been measured yet (so it is tried once); a full batch
otherwise, and before a full batch's cost is known. A size passed over is tried again after
`RETRY` batches and measured afresh, so one costly batch in a busy moment does not rule it out
for good.
"""

from __future__ import annotations

import math

__all__ = ["BatchSizes", "TOLERANCE", "RETRY"]

TOLERANCE = 0.10
"""How much more per call than a full batch an even batch may cost and still be taken."""

RETRY = 64
"""Batches after which a size passed over is tried again."""

ALPHA = 0.25
"""The weight of the latest batch in the running mean of a size's cost."""


class BatchSizes:
    """The running mean cost of a batch of each size (one model's), and the size the next takes."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.seconds: dict[int, float] = {}  # the running mean cost (CPU seconds) of a batch of each size
        self.last: dict[int, int] = {}  # the batch count when a batch of each size last ran
        self.count = 0

    def record(self, size: int, seconds: float) -> None:
        """A batch of `size` calls cost `seconds` (and returned)."""
        mean = self.seconds.get(size)
        if mean is None or self.count - self.last[size] >= RETRY:  # not measured lately: afresh
            self.seconds[size] = seconds
        else:
            self.seconds[size] = mean + ALPHA * (seconds - mean)
        self.count += 1
        self.last[size] = self.count

    def take(self, waiting: int) -> int:
        """How many of `waiting` calls the next batch takes."""
        if waiting <= self.max_size:
            return waiting
        even = math.ceil(waiting / math.ceil(waiting / self.max_size))
        full = self.seconds.get(self.max_size)
        if even == self.max_size or full is None:
            return self.max_size
        mean = self.seconds.get(even)
        if mean is None or self.count - self.last[even] >= RETRY:
            return even  # not measured, or not lately: try it
        if mean / even <= full / self.max_size * (1 + TOLERANCE):
            return even
        return self.max_size
