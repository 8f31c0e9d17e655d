"""The clock handlers read: an argument (``clock=utcnow`` by default), so that tests move time instead
of sleeping and a rule's "overdue" or "due this week" is decided against the time a test chose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
