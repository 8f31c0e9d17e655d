"""Where an account has recently proved itself: there, the per-address budget of failures does not refuse it.

The per-address budget (``SEGIN_AUTH_FAILURES_PER_IP``) slows a spray of guesses over many client
ids or usernames from one source. Counted alone, it let anyone at a shared address (an office
behind NAT, every caller behind a proxy the gateway was not told about) stop everyone there from
getting tokens, by failing a hundred times with invented names. So an (account, source) pair that
succeeded within ``KNOWN_FOR`` is *known*: the address's budget does not refuse it. Everything
else still applies to it: the (account, source) limit and the spread-out alert of
``gateway.auth.throttle.GuessGuard`` / ``gateway.auth.lockout``, so a guesser sharing the address gets no more
tries at that account than before.

A success is a token issued by the token endpoint (a client secret, or a code or refresh token,
which only the rightful holder has), an introspection or revocation authenticated with a secret,
or a person's right password. A public client's id alone proves nothing and makes nothing known.
Keys are HMAC pseudonyms (the login secret): no client id, username or address is stored.
Rows live in the database, so every gateway replica knows them; they go ``KNOWN_FOR`` after the
last success.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
import time

from gateway.store import failures as store
from gateway.store.connections import SyncConnection, SyncPool

KNOWN_FOR = dt.timedelta(days=30)
REMEMBER_EVERY = 3600.0  # seconds: a pair's success is written at most this often by one process


def account_key(secret: bytes, kind: str, account: str) -> str:
    """The stored key of a client id (exact, case and all) or of a username pseudonym."""
    return hmac.new(secret, f"known:{kind}:{account}".encode(), hashlib.sha256).hexdigest()[:32]


def source_key(secret: bytes, source: str) -> str:
    return hmac.new(secret, f"known-source:{source}".encode(), hashlib.sha256).hexdigest()[:32]


def remember(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> None:
    """Record a success of this account from this source (keys already pseudonymised)."""
    store.remember_success(conn, account, source, now, now - KNOWN_FOR)


def known(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> bool:
    return store.succeeded_since(conn, account, source, now - KNOWN_FOR)


class KnownSources:
    """The store above for the HTTP layer (called in worker threads), with the pseudonyms computed here."""

    def __init__(self, pool: SyncPool, secret: bytes) -> None:
        self.pool, self.secret = pool, secret
        self._written: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def remember(self, kind: str, account: str, source: str) -> None:
        keys = account_key(self.secret, kind, account), source_key(self.secret, source)
        with self._lock:
            last = self._written.get(keys)
            if last is not None and time.monotonic() - last < REMEMBER_EVERY:
                return  # written lately: no database write for every token
            if len(self._written) > 10_000:
                self._written.clear()
            self._written[keys] = time.monotonic()
        with self.pool.connection() as conn:
            remember(conn, *keys, dt.datetime.now(dt.timezone.utc))

    def known(self, kind: str, account: str, source: str) -> bool:
        with self.pool.connection() as conn:
            return known(conn, account_key(self.secret, kind, account), source_key(self.secret, source),
                         dt.datetime.now(dt.timezone.utc))
