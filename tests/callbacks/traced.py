"""A traced service for the tracing tests: the OpenTelemetry SDK with its in-memory exporter, each
finished span also appended as JSON to the file named by TRACE_LOG (so the test process sees the
spans of the web and worker processes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class SharedInMemoryExporter(InMemorySpanExporter):
    """The SDK's in-memory exporter, writing each span to TRACE_LOG too."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        with open(os.environ["TRACE_LOG"], "a") as log:
            for span in spans:
                log.write(span.to_json(indent=None) + "\n")
        return result


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(SharedInMemoryExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("tests")


def handle(text: dict[str, Any], data: list[Any], q: Any) -> dict[str, str]:
    """Put the text on the queue for the worker."""
    q.put({"n": text.get("n")})
    return {"queued": str(text.get("n"))}


def process(q: Any) -> None:
    """Take items; the work on each is a span of the application's own."""
    while True:
        item = q.get()
        with tracer.start_as_current_span("work", attributes={"n": str(item["n"])}):
            pass
        q.task_done()
