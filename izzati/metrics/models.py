"""The metrics of `@izzati.multiplexed` loaders: models loaded, evicted, and resident now.

Loads and evictions are rare and slow next to requests (a model takes seconds to load), so they
are written into prometheus-client at once rather than gathered by the `Recorder`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ModelMetrics", "model_metrics"]


class ModelMetrics:
    """The multiplexing metrics of one process, labelled by loader (`module:qualname`)."""

    def __init__(self) -> None:
        self.loads = Counter("izzati_model_loads", "Models loaded by a multiplexed loader", ["loader"])
        self.load_failures = Counter(
            "izzati_model_load_failures", "Loads that raised (an unknown model id included)", ["loader"]
        )
        self.evictions = Counter(
            "izzati_model_evictions", "Models evicted (least recently used) to make room for another", ["loader"]
        )
        self.resident = Gauge(
            "izzati_models_resident",
            "Models held now by multiplexed loaders (summed over live processes)",
            ["loader"],
            multiprocess_mode="livesum",
        )


_metrics: ModelMetrics | None = None


def model_metrics() -> ModelMetrics:
    """This interpreter's multiplexing metrics, made at the first load (after the service chose
    prometheus-client's multiprocess mode, like `instruments()`)."""
    global _metrics
    if _metrics is None:
        _metrics = ModelMetrics()
    return _metrics
