"""Background work repeated at an interval, until the process stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, stop: asyncio.Event, work: Callable[[], Awaitable[object]], *,
                name: str, immediately: bool = False) -> None:
    """Run ``work`` every ``seconds`` until ``stop`` (first at once when ``immediately``).

    A failure is logged (its type only: messages may quote data) and retried at the next tick,
    so a database or NATS outage delays the work without ending it.
    """
    if not immediately and await _stopped_within(stop, seconds):
        return
    while not stop.is_set():
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("periodic task failed", extra={"task": name, "error": type(exc).__name__})
        if await _stopped_within(stop, seconds):
            return


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False
