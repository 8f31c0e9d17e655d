"""Slowing down guessing: repeated authentication failures get HTTP 429 with a growing Retry-After.

Failures are counted per key (a client id, an IP address) in a sliding window. Once ``limit``
failures fall within ``window`` seconds, the key is refused for ``base_delay`` seconds, doubling with
each further failure up to ``max_delay``. Counts live in each gateway process's memory: with
several replicas an attacker gets at most ``limit`` tries per replica per window, which still
defeats guessing a secret; people's accounts are also locked in the database (``gateway.people``).
Every failure is logged as JSON with what identifies the attempt, never the secret or password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict, deque

log = logging.getLogger("gateway.auth")


class FailureThrottle:
    def __init__(self, limit: int, window: float = 300.0, *, base_delay: float = 15.0, max_delay: float = 900.0,
                 max_keys: int = 10_000) -> None:
        self.limit, self.window, self.base_delay, self.max_delay = limit, window, base_delay, max_delay
        self.max_keys = max_keys  # bounded memory however many keys an attacker invents
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float | None = None) -> int | None:
        """Seconds this key must wait before its next attempt, or None when it may try now."""
        now = time.monotonic() if now is None else now
        recent = self._recent(key, now)
        if len(recent) < self.limit:
            return None
        delay = min(self.base_delay * 2 ** (len(recent) - self.limit), self.max_delay)
        wait = recent[-1] + delay - now
        return math.ceil(wait) if wait > 0 else None

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(key, now).append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times


def pseudonym(secret: bytes, value: str) -> str:
    """A stable, non-reversible stand-in for a username in logs (keyed, so it cannot be looked up)."""
    return hmac.new(secret, value.strip().lower().encode(), hashlib.sha256).hexdigest()[:16]


def log_failure(endpoint: str, ip: str, reason: str, **ids: str) -> None:
    """One structured line per failed attempt: endpoint, reason, IP and the client id or username hash."""
    log.warning("authentication failed", extra={"event": "auth.failure", "endpoint": endpoint, "reason": reason,
                                                "ip": ip, **{k: v[:128] for k, v in ids.items()}})


def log_throttled(endpoint: str, ip: str, retry_after: int, **ids: str) -> None:
    log.warning("authentication throttled", extra={"event": "auth.throttled", "endpoint": endpoint, "ip": ip,
                                                   "retry_after": retry_after,
                                                   **{k: v[:128] for k, v in ids.items()}})
