"""OpenTelemetry traces (`pip install 'izzati[otel]'`): a span for each request, its callback, each
`q.put`, and a worker's processing of that item, with the W3C `traceparent` carried inside queue
items and jobs, so one trace runs from the HTTP request into the worker process.

Tracing is on in a process when a tracer provider of the OpenTelemetry SDK is set: by the
application (e.g. when the callback's module is imported) or by izzati from `IZZATI_TRACES`.
Off (no OpenTelemetry, or no provider), the hot path reads one module attribute, `ACTIVE`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "ACTIVE",
    "refresh",
    "configure",
    "span",
    "label_route",
    "ROUTE",
    "inject",
    "current_traceparent",
    "Consumer",
    "failed",
    "Traced",
    "producing",
    "UNTRACED",
]

ACTIVE = False
"""Whether spans are made in this process (see `refresh`)."""

_tracer: Any = None


def refresh() -> bool:
    """Turn tracing on when an SDK tracer provider is set in this process, off otherwise."""
    global ACTIVE, _tracer
    try:
        from opentelemetry import trace
    except ImportError:
        ACTIVE, _tracer = False, None
        return False
    provider = trace.get_tracer_provider()
    ACTIVE = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
    _tracer = trace.get_tracer("izzati") if ACTIVE else None
    return ACTIVE


def configure(mode: str) -> bool:
    """Set up the SDK in this process for `IZZATI_TRACES` (`otlp`: the OTLP/HTTP exporter, set by the
    standard OTEL_* variables; `console`: spans printed), unless a provider is set already."""
    if mode and not refresh():
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
        except ImportError as exc:
            from .exceptions import ConfigError

            raise ConfigError(f"IZZATI_TRACES={mode!r} needs OpenTelemetry: pip install 'izzati[otel]'") from exc
        exporter: SpanExporter
        if mode == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
        resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "izzati"}))  # named by neither
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    return refresh()


ROUTE = "izzati.route"
"""The attribute that names the route (its path: `/`, `/classify`) a request, callback or job serves."""


def label_route(path: str) -> None:
    """Name the route on the current span (the request's server span) (tracing on)."""
    from opentelemetry import trace

    trace.get_current_span().set_attribute(ROUTE, path)


@contextlib.contextmanager
def span(
    name: str, kind: str = "INTERNAL", attributes: Mapping[str, Any] | None = None, carrier: Any = None
) -> Iterator[Any]:
    """A current span (its parent: the current span, or the one `carrier`'s headers name)."""
    from opentelemetry import propagate, trace

    context = propagate.extract(carrier) if carrier is not None else None
    with _tracer.start_as_current_span(
        name, context=context, kind=getattr(trace.SpanKind, kind), attributes=dict(attributes or {})
    ) as current:
        yield current


UNTRACED: contextlib.nullcontext[dict[Any, Any]] = contextlib.nullcontext({})
"""What `producing` is when tracing is off: no span, no fields."""


@contextlib.contextmanager
def producing(destination: str, system: str = "redis") -> Iterator[dict[Any, Any]]:
    """A producer span for a `put` on `destination`; yields the entry's extra fields (`t`:
    its traceparent). Use as `with producing(name) if ACTIVE else UNTRACED as fields:`."""
    attributes = {"messaging.system": system, "messaging.destination.name": destination}
    attributes["messaging.operation.type"] = "publish"
    with span(f"publish {destination}", "PRODUCER", attributes):
        traceparent = current_traceparent()
        yield {"t": traceparent} if traceparent else {}


def failed(current: Any, description: str | None = None) -> None:
    """Mark a span as failed (a 5xx reply, an exception)."""
    from opentelemetry.trace import Status, StatusCode

    current.set_status(Status(StatusCode.ERROR, description))


def inject() -> dict[str, str]:
    """The current span's context as headers (`traceparent`, `tracestate`)."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_traceparent() -> str | None:
    """The current span's W3C `traceparent`, or None (tracing off, or no span)."""
    return inject().get("traceparent") if ACTIVE else None


class Consumer:
    """The span of the item a worker works on: from the `get()` that returned it to the next
    `get()` or `task_done()`, a child of the span that put it."""

    def __init__(self) -> None:
        self._open: tuple[Any, Any] | None = None

    def begin(self, name: str, traceparent: str | None, attributes: Mapping[str, Any]) -> None:
        """End the previous item's span; start this item's and make it current."""
        self.end()
        if not ACTIVE:
            return
        from opentelemetry import context, propagate, trace

        parent = propagate.extract({"traceparent": traceparent} if traceparent else {})
        current = _tracer.start_span(name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=dict(attributes))
        token = context.attach(trace.set_span_in_context(current))
        self._open = (current, token)

    def end(self) -> None:
        """End the current item's span, if one is open."""
        if self._open is None:
            return
        from opentelemetry import context

        current, token = self._open
        self._open = None
        with contextlib.suppress(ValueError):  # detached in another context: the span still ends
            context.detach(token)
        current.end()


class Traced(bytes):
    """A queue entry's payload that carries the `traceparent` of the span that put it."""

    traceparent: str

    def __new__(cls, payload: bytes | str, traceparent: bytes | str) -> Traced:
        """The payload's bytes, with `traceparent` (text) attached."""
        made = super().__new__(cls, payload.encode() if isinstance(payload, str) else payload)
        made.traceparent = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
        return made
