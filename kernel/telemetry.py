"""OpenTelemetry wiring and W3C trace-context propagation through NATS headers.

The exporter is chosen by the standard ``OTEL_TRACES_EXPORTER`` variable (``otlp``,
``console`` or ``none``, the default), so nothing is sent anywhere unless asked.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_configured = False


def setup_telemetry(service: str) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(resource=Resource.create({"service.name": f"segin-{service}"}))
    exporters = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")]
    exporting = False
    if "otlp" in exporters:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        exporting = True
    if "console" in exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        exporting = True
    trace.set_tracer_provider(provider)
    if exporting:
        # A span per SQL statement costs CPU on every request: worth it only when the spans are read.
        # Without an exporter, requests still carry their trace ids (logs, audit records, NATS headers).
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)


def tracer(name: str = "segin") -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Add ``traceparent``/``tracestate`` of the current span to a header dict."""
    headers = dict(headers or {})
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    return propagate.extract(dict(headers or {}))


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def record_failure(span: trace.Span, exc: BaseException) -> None:
    """Mark ``span`` failed with the exception's type and frames, never its message: a database error
    can quote the row it failed on, and traces, like logs, must not carry personal data."""
    frames = "".join(traceback.format_tb(exc.__traceback__))[-4000:]
    span.add_event("exception", {"exception.type": type(exc).__name__, "exception.stacktrace": frames})
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
