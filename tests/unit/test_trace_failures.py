"""A failure recorded on a trace span names the exception's type and frames, never its message (a
database error can quote the row it failed on: a person's name)."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kernel.telemetry import record_failure


def test_a_failure_on_a_span_carries_no_message() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    row = "(given_name)=(Awa Keïta)"
    with provider.get_tracer("test").start_as_current_span("svc.intake.check_in") as span:
        try:
            raise ValueError(f"duplicate key value violates unique constraint: Key {row}")
        except ValueError as exc:
            record_failure(span, exc)
    [finished] = exporter.get_finished_spans()
    assert finished.status.status_code == StatusCode.ERROR
    [event] = finished.events
    assert event.attributes["exception.type"] == "ValueError"
    assert "test_a_failure_on_a_span_carries_no_message" in event.attributes["exception.stacktrace"]
    assert "Keïta" not in str(dict(event.attributes)) and "Keïta" not in str(finished.status.description)
