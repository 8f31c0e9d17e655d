"""Failed sign-ins, in the database: guessing a password is stopped, locking someone out is not possible.

A lock-out per account lets anyone who knows a username keep a case worker out of their work by
failing five times. So failures are counted per (account, source), with the rule of
``gateway.throttle.GuessGuard`` (which does the same for client secrets, in memory):

- ``MAX_FAILURES`` in a row from one source refuse that source for ``LOCK_DURATION``, even with
  the right password (which is then not checked): 5 guesses per source per 15 minutes;
- once ``ACCOUNT_ALERT`` failures from all sources together fall within ``LOCK_DURATION`` (a guess
  spread over many addresses), a source that has already failed against the account within that
  time is refused too: about one guess per source per 15 minutes. Sources that have not failed
  against it (the person at their usual desk) still sign in;
- the per-address budget (``SEGIN_AUTH_FAILURES_PER_IP``, in ``gateway.login``) bounds how many
  accounts one source can try.

Sources are IPv4 addresses or IPv6 /64 networks (``gateway.addresses``). Counts live in the
database so every gateway replica sees them; unknown usernames are counted the same way, so the
answers never tell which usernames exist. Rows are forgotten a day after their last failure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

MAX_FAILURES = 5
LOCK_DURATION = dt.timedelta(minutes=15)
ACCOUNT_ALERT = 20
FORGET_AFTER = dt.timedelta(days=1)

SyncConnection = psycopg.Connection[Any]


def serialise(conn: SyncConnection, account: str) -> None:
    """One attempt per account at a time (until commit), so parallel guesses cannot slip past the count."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"sign-in:{account}",))


def refused(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> bool:
    """Whether this source may not try this account now (its password is then not even checked)."""
    row = conn.execute("select failures, last_failed_at, locked_until from gateway.sign_in_failures"
                       " where account = %s and source = %s", (account, source)).fetchone()
    if row is None:
        return False
    if row["locked_until"] is not None and row["locked_until"] > now:
        return True
    return row["last_failed_at"] > now - LOCK_DURATION and _recent_failures(conn, account, now) >= ACCOUNT_ALERT


def failed(conn: SyncConnection, account: str, source: str, now: dt.datetime) -> bool:
    """Count one failure; True when it leaves this source refused (the message then says locked)."""
    conn.execute("delete from gateway.sign_in_failures where last_failed_at < %s", (now - FORGET_AFTER,))
    row = conn.execute(
        "insert into gateway.sign_in_failures as f (account, source, failures, last_failed_at)"
        " values (%(account)s, %(source)s, 1, %(now)s) on conflict (account, source) do update set"
        " failures = case when f.locked_until <= %(now)s then 1 else f.failures + 1 end,"
        " last_failed_at = %(now)s,"
        " locked_until = case when f.locked_until <= %(now)s then null else f.locked_until end"
        " returning failures", {"account": account, "source": source, "now": now}).fetchone()
    if row["failures"] >= MAX_FAILURES:
        conn.execute("update gateway.sign_in_failures set locked_until = %s where account = %s and source = %s",
                     (now + LOCK_DURATION, account, source))
        return True
    return refused(conn, account, source, now)


def succeeded(conn: SyncConnection, account: str, source: str) -> None:
    """The right password from this source: its failures are forgiven (other sources' stay counted)."""
    conn.execute("delete from gateway.sign_in_failures where account = %s and source = %s", (account, source))


def clear(conn: SyncConnection, account: str) -> int:
    """Forget every failure for this account (an administrator lifting a lock-out)."""
    return conn.execute("delete from gateway.sign_in_failures where account = %s", (account,)).rowcount


def _recent_failures(conn: SyncConnection, account: str, now: dt.datetime) -> int:
    row = conn.execute("select coalesce(sum(failures), 0) as n from gateway.sign_in_failures"
                       " where account = %s and last_failed_at > %s", (account, now - LOCK_DURATION)).fetchone()
    return int(row["n"])
