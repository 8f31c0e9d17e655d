"""Slowing down guessing: repeated authentication failures get HTTP 429 with a growing Retry-After.

Failures are counted per key (an address, a client id with an address) in a sliding window. Once
``limit`` failures fall within ``window`` seconds, the key is refused for ``base_delay`` seconds,
doubling with each further failure up to ``max_delay``. Counts live in each gateway process's
memory: with several replicas an attacker gets at most ``limit`` tries per replica per window, which
still defeats guessing a secret. People's sign-in failures are counted in the database with the same
rule (``gateway.auth.lockout``). Every failure is logged as JSON with what identifies the attempt, never
the secret or password.

A failure never refuses the account to everyone (:class:`GuessGuard`): anyone may send a wrong
secret for someone else's client id, and a lock-out they could trigger would be theirs to use. Nor
does a spent address budget refuse an account that succeeded from that address lately
(``gateway.auth.known``): whoever shares the address could otherwise stop everyone there.
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

    def count(self, key: str, now: float | None = None) -> int:
        """Failures of this key within the window."""
        now = time.monotonic() if now is None else now
        times = self._failures.get(key)
        return sum(1 for t in times if t >= now - self.window) if times else 0

    def last_failure(self, key: str) -> float | None:
        times = self._failures.get(key)
        return times[-1] if times else None

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times


class GuessGuard:
    """Throttles guessing one account's secret without letting a third party lock the account out.

    - per source (an address, shared with the sign-in page): ``per_source``;
    - per (account, source): ``limit`` failures in ``window``, then growing delays, for that source only;
    - per account: once ``alert`` failures from all sources together fall within ``window`` (a guess
      spread over many addresses), each source that has already failed against the account waits
      until ``window`` after its last failure: about one guess per source per window. Sources that
      have not failed against it (the account's owner, normally) are served as usual.
    """

    def __init__(self, per_source: FailureThrottle, *, limit: int = 5, window: float = 300.0, alert: int = 20,
                 base_delay: float = 15.0, max_delay: float = 900.0) -> None:
        self.per_source = per_source
        self.pairs = FailureThrottle(limit, window, base_delay=base_delay, max_delay=max_delay)
        self.accounts = FailureThrottle(alert, window)
        self.alert, self.window = alert, window

    def retry_after(self, account: str | None, source: str, now: float | None = None, *,
                    known: bool = False) -> int | None:
        """Seconds this source must wait before trying this account (or any, for None) again.

        ``known``: the account succeeded from this source lately (``gateway.auth.known``), so the source's
        budget, spent by whoever shares the address, does not refuse it; its own limits still do.
        """
        now = time.monotonic() if now is None else now
        waits = [None if known and account else self.per_source.retry_after(source_key(source), now)]
        if account:
            pair = _pair_key(account, source)
            waits.append(self.pairs.retry_after(pair, now))
            last = self.pairs.last_failure(pair)
            if last is not None and self.accounts.count(account, now) >= self.alert and last + self.window > now:
                waits.append(math.ceil(last + self.window - now))
        return max((w for w in waits if w), default=None)

    def failed(self, account: str | None, source: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.per_source.failed(source_key(source), now)
        if account:
            self.pairs.failed(_pair_key(account, source), now)
            self.accounts.failed(account, now)

    def succeeded(self, account: str, source: str) -> None:
        """The right secret from this source: its own failures are forgiven (the account's count stays)."""
        self.pairs.succeeded(_pair_key(account, source))


def source_key(source: str) -> str:
    """The per-address key, shared by the token endpoints and the sign-in page (one budget)."""
    return f"ip:{source}"


def _pair_key(account: str, source: str) -> str:
    return f"{account}\x00{source}"


def pseudonym(secret: bytes, value: str) -> str:
    """A stable, non-reversible stand-in for a username in logs (keyed, so it cannot be looked up)."""
    return hmac.new(secret, value.strip().lower().encode(), hashlib.sha256).hexdigest()[:16]


def client_fields(secret: bytes, client_id: str, registered: bool) -> dict[str, str]:
    """How a client id appears in logs: as sent when it names a registered client, else as a pseudonym.

    What arrives in the client id field is attacker-supplied, and sometimes a secret pasted there.
    """
    if not client_id:
        return {}
    return {"client_id": client_id} if registered else {"client_id_hash": pseudonym(secret, client_id)}


def log_failure(endpoint: str, ip: str, reason: str, **ids: str) -> None:
    """One structured line per failed attempt: endpoint, reason, IP and the client id or username hash."""
    log.warning("authentication failed", extra={"event": "auth.failure", "endpoint": endpoint, "reason": reason,
                                                "ip": ip, **{k: v[:128] for k, v in ids.items()}})


def log_throttled(endpoint: str, ip: str, retry_after: int, **ids: str) -> None:
    log.warning("authentication throttled", extra={"event": "auth.throttled", "endpoint": endpoint, "ip": ip,
                                                   "retry_after": retry_after,
                                                   **{k: v[:128] for k, v in ids.items()}})
