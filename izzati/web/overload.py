"""How long a refused caller should wait (`Retry-After`) when `max_inflight` calls are in."""

from __future__ import annotations

__all__ = ["retry_wait"]


def retry_wait(mean_seconds: float, inflight: int, limit: int, concurrency: int) -> float:
    """Seconds until a slot is likely free: the calls over the limit must end first, and calls
    end at about `concurrency` per measured mean service time (0.0 before any call is measured)."""
    return mean_seconds * (inflight - limit + 1) / max(concurrency, 1)
