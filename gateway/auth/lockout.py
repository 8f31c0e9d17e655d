"""Failed sign-ins, in the database: guessing a password is stopped, locking someone out is not possible.

A lock-out per account lets anyone who knows a username keep a case worker out of their work by
failing five times. So failures are counted per (account, source), with the rule of
``gateway.auth.throttle.GuessGuard`` (which does the same for client secrets, in memory):

- ``MAX_FAILURES`` in a row from one source refuse that source for ``LOCK_DURATION``, even with
  the right password (which is then not checked): 5 guesses per source per 15 minutes;
- once ``ACCOUNT_ALERT`` failures from all sources together fall within ``LOCK_DURATION`` (a guess
  spread over many addresses), a source that has already failed against the account within that
  time is refused too: about one guess per source per 15 minutes. Sources that have not failed
  against it (the person at their usual desk) still sign in;
- the per-address budget (``SEGIN_AUTH_FAILURES_PER_IP``, in ``gateway.auth.login``) bounds how many
  accounts one source can try.

Sources are IPv4 addresses or IPv6 /64 networks (``gateway.addresses``). Counts live in the
database so every gateway replica sees them; unknown usernames are counted the same way, so the
answers never tell which usernames exist. Rows are forgotten a day after their last failure.
"""

from __future__ import annotations

import datetime as dt

from gateway.store import failures as store
from gateway.store.connections import SyncConnection

MAX_FAILURES = 5
LOCK_DURATION = dt.timedelta(minutes=15)
ACCOUNT_ALERT = 20
FORGET_AFTER = dt.timedelta(days=1)


def serialise(conn: SyncConnection, account: str) -> None:
    """One attempt per account at a time (until commit), so parallel guesses cannot slip past the count."""
    store.serialise(conn, f"sign-in:{account}")


def refused(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> bool:
    """Whether this source may not try this account now (its password is then not even checked)."""
    row = store.failure(conn, account, source)
    if row is None:
        return False
    if row["locked_until"] is not None and row["locked_until"] > now:
        return True
    return row["last_failed_at"] > now - LOCK_DURATION and store.recent_failures(conn, account, now - LOCK_DURATION) >= ACCOUNT_ALERT


def failed(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> bool:
    """Count one failure; True when it leaves this source refused (the message then says locked)."""
    if store.count_failure(conn, account, source, now, now - FORGET_AFTER) >= MAX_FAILURES:
        store.lock(conn, account, source, now + LOCK_DURATION)
        return True
    return refused(conn, account, source, now)


def succeeded(conn: SyncConnection, account: str, source: str) -> None:
    """The right password from this source: its failures are forgiven (other sources' stay counted)."""
    store.forget(conn, account, source)


def clear(conn: SyncConnection, account: str) -> int:
    """Forget every failure for this account (an administrator lifting a lock-out)."""
    return store.forget(conn, account)
