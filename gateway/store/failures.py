"""Sign-in failures per (account, source), and sources where an account recently succeeded.

The policy reading them is in ``gateway/auth/lockout.py`` and ``gateway/auth/known.py``; accounts and
sources arrive here already pseudonymised.
"""

from __future__ import annotations

import datetime as dt

from gateway.store.connections import Row, SyncConnection


def serialise(conn: SyncConnection, key: str) -> None:
    """Hold a transaction-scoped advisory lock on ``key`` until commit."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def failure(conn: SyncConnection, account: str, source: str) -> Row | None:
    return conn.execute("select failures, last_failed_at, locked_until from gateway.sign_in_failures"
                        " where account = %s and source = %s", (account, source)).fetchone()


def count_failure(conn: SyncConnection, account: str, source: str, now: dt.datetime, forget_before: dt.datetime) -> int:
    """Add one failure (restarting the count once a lock has passed); returns the count in a row."""
    conn.execute("delete from gateway.sign_in_failures where last_failed_at < %s", (forget_before,))
    row = conn.execute(
        "insert into gateway.sign_in_failures as f (account, source, failures, last_failed_at)"
        " values (%(account)s, %(source)s, 1, %(now)s) on conflict (account, source) do update set"
        " failures = case when f.locked_until <= %(now)s then 1 else f.failures + 1 end,"
        " last_failed_at = %(now)s,"
        " locked_until = case when f.locked_until <= %(now)s then null else f.locked_until end"
        " returning failures", {"account": account, "source": source, "now": now}).fetchone()
    return int(row["failures"])


def lock(conn: SyncConnection, account: str, source: str, until: dt.datetime) -> None:
    conn.execute("update gateway.sign_in_failures set locked_until = %s where account = %s and source = %s",
                 (until, account, source))


def recent_failures(conn: SyncConnection, account: str, since: dt.datetime) -> int:
    row = conn.execute("select coalesce(sum(failures), 0) as n from gateway.sign_in_failures"
                       " where account = %s and last_failed_at > %s", (account, since)).fetchone()
    return int(row["n"])


def forget(conn: SyncConnection, account: str, source: str | None = None) -> int:
    """Forget the failures of this account from this source (or from every source); returns how many rows."""
    if source is None:
        return conn.execute("delete from gateway.sign_in_failures where account = %s", (account,)).rowcount
    return conn.execute("delete from gateway.sign_in_failures where account = %s and source = %s",
                        (account, source)).rowcount


def remember_success(conn: SyncConnection, account: str, source: str, now: dt.datetime,
                     forget_before: dt.datetime) -> None:
    conn.execute("delete from gateway.known_sources where last_success_at < %s", (forget_before,))
    conn.execute("insert into gateway.known_sources (account, source, last_success_at) values (%s, %s, %s)"
                 " on conflict (account, source) do update set last_success_at = excluded.last_success_at",
                 (account, source, now))


def succeeded_since(conn: SyncConnection, account: str, source: str, since: dt.datetime) -> bool:
    row = conn.execute("select 1 from gateway.known_sources where account = %s and source = %s"
                       " and last_success_at > %s", (account, source, since)).fetchone()
    return row is not None
