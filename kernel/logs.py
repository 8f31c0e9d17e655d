"""Structured JSON logs carrying trace ids.

Rule: log identifiers and codes, never names, dates of birth, contact details or free text
about a person. Call sites pass only such values in ``extra``.

Enforced here for what Segin's call sites do not control: an exception is logged as its type
and stack frames, never its message (a GraphQL or validation error quotes the client's input, a
database error the row); a record from another library (uvicorn, strawberry, graphql-core)
keeps its message template but not the text arguments filled into it (a request line carries a
GET document).
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class _TraceContext(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.service = self.service
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True


OWN_LOGGERS = ("gateway", "kernel", "services", "contracts", "segin", "__main__")
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _scrubbed(value: object) -> object:
    return value if isinstance(value, int | float) else "…"


class _IdentifiersOnly(logging.Filter):
    """Other libraries' records: template kept, text arguments replaced, non-text messages named by type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in OWN_LOGGERS:
            return True
        if not isinstance(record.msg, str):
            record.msg, record.args = type(record.msg).__name__, ()
        elif isinstance(record.args, dict):
            record.args = {key: _scrubbed(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_scrubbed(value) for value in record.args)
        return True


class _Formatter(JsonFormatter):
    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 (logging's name)
        """The exception's type and frames, never its message."""
        kind, _, tb = ei
        return "".join(traceback.format_tb(tb))[-4000:] + (kind.__name__ if kind else "")


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContext(service))
    handler.addFilter(_IdentifiersOnly())
    handler.setFormatter(
        _Formatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("nats", "uvicorn.access", "httpx", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
