"""Revoking access tokens, grants and clients: recorded in the database, then told to every process.

A revocation is written to ``gateway.revocations`` in the same transaction as its cause (a
revoked refresh-token family, a revoked client), applied at once to this gateway's deny list,
and published to the ``REVOKED_TOKENS`` bucket that every process watches (``kernel/denylist.py``).
Rows not yet published (NATS unreachable, or written by the admin CLI) are published by the
gateway's background loop: an outbox, as for events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from nats.aio.client import Client
from psycopg_pool import AsyncConnectionPool

from kernel.denylist import RETENTION, DenyList, client_entry, jti_entry, open_bucket
from kernel.natsauth import NatsAuth, inbox_prefix, servers
from kernel.periodic import every

log = logging.getLogger(__name__)

SyncConnection = psycopg.Connection[Any]
PUBLISH_EVERY = 2.0
HOUSEKEEPING_EVERY = 600.0


@dataclass(frozen=True)
class Revocation:
    key: str
    value: bytes
    expires_at: float  # when the entry names nothing alive any more


def access_token(jti: str, exp: float) -> Revocation:
    key, value = jti_entry(jti, exp)
    return Revocation(key, value, exp + RETENTION)


def client(client_id: str, not_before: float) -> Revocation:
    key, value = client_entry(client_id, not_before)
    return Revocation(key, value, not_before + RETENTION)


def record(conn: SyncConnection, revocations: list[Revocation]) -> list[Revocation]:
    """Write revocations to the outbox (in the caller's transaction); returns them."""
    for r in revocations:
        conn.execute(
            "insert into gateway.revocations (key, value, expires_at) values (%s, %s, to_timestamp(%s))"
            " on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at,"
            " published_at = null",
            (r.key, r.value, r.expires_at),
        )
    return revocations


def revoke_grant(conn: SyncConnection, grant_id: str, reason: str) -> list[Revocation]:
    """Revoke a person's grant: its refresh tokens stop working and its live access tokens are denied."""
    conn.execute("update gateway.person_grants set revoked_at = now(), revoked_reason = %s"
                 " where id = %s and revoked_at is null", (reason, grant_id))
    rows = conn.execute("select jti, extract(epoch from expires_at)::float8 as exp from gateway.grant_access_tokens"
                        " where grant_id = %s and expires_at > now() - interval '1 minute'", (grant_id,)).fetchall()
    return record(conn, [access_token(r["jti"], r["exp"]) for r in rows])


def revoke_client(conn: SyncConnection, client_id: str) -> list[Revocation] | None:
    """Revoke a client: no new tokens, its live tokens denied, its people's grants revoked. None if unknown."""
    cur = conn.execute("update gateway.oauth_clients set revoked_at = coalesce(revoked_at, now())"
                       " where client_id = %s", (client_id,))
    if cur.rowcount == 0:
        return None
    grants = conn.execute("select id::text from gateway.person_grants where client_id = %s and revoked_at is null",
                          (client_id,)).fetchall()
    entries: list[Revocation] = []
    for g in grants:
        entries += revoke_grant(conn, g["id"], "client revoked")
    return entries + record(conn, [client(client_id, time.time())])


class Publisher:
    """Applies revocations to this gateway's deny list and publishes them to every process."""

    def __init__(self, denylist: DenyList, pool: AsyncConnectionPool, nc: Client, *, replicas: int = 1) -> None:
        self.denylist, self.pool, self.nc, self.replicas = denylist, pool, nc, replicas
        self._lock = asyncio.Lock()

    def apply_locally(self, revocations: list[Revocation]) -> None:
        """Deny at once in this process (thread-safe: called from the authorization server's threads)."""
        for r in revocations:
            self.denylist.apply(r.key, r.value)

    async def republish_live(self) -> None:
        """At start: deny every live revocation here at once, and send them all again in case NATS lost
        its bucket (publishing is idempotent)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("update gateway.revocations set published_at = null"
                                     " where expires_at > now() returning key, value")
            for row in await cur.fetchall():
                self.denylist.apply(row["key"], bytes(row["value"]))

    async def publish_pending(self) -> int:
        """Publish every unpublished, still useful revocation; returns how many were published."""
        async with self._lock:
            async with self.pool.connection() as conn:
                cur = await conn.execute("select key, value from gateway.revocations where published_at is null"
                                         " and expires_at > now() order by created_at limit 500")
                rows = await cur.fetchall()
            if not rows:
                return 0
            kv = await open_bucket(self.nc.jetstream(timeout=5), replicas=self.replicas)
            for row in rows:
                await kv.put(row["key"], bytes(row["value"]))
            async with self.pool.connection() as conn:
                await conn.execute("update gateway.revocations set published_at = now() where key = any(%s)",
                                   ([r["key"] for r in rows],))
            return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what is pending every few seconds; clear expired credentials now and then."""
        await asyncio.gather(
            every(PUBLISH_EVERY, stop, self.publish_pending, name="revocations", immediately=True),
            every(HOUSEKEEPING_EVERY, stop, self._housekeeping, name="credential-housekeeping", immediately=True),
        )

    async def _housekeeping(self) -> None:
        """Delete what can no longer be used or replayed (codes, access-token records, old revocations)."""
        async with self.pool.connection() as conn:
            await conn.execute("delete from gateway.authorization_codes where expires_at < now() - interval '1 day'")
            await conn.execute("delete from gateway.grant_access_tokens where expires_at < now() - interval '1 hour'")
            await conn.execute("delete from gateway.revocations where expires_at < now() - interval '1 hour'")
            await conn.execute("delete from gateway.refresh_tokens where expires_at < now() - interval '1 day'")


async def publish_once(nats_url: str, revocations: list[Revocation], *, replicas: int = 1,
                       auth: NatsAuth | None = None) -> None:
    """Publish revocations straight away (the admin CLI); the gateway's loop retries if this fails."""
    import nats

    nc = await nats.connect(servers=servers(nats_url), name="segin-admin", inbox_prefix=inbox_prefix("segin-admin"),
                            connect_timeout=3, max_reconnect_attempts=0, **(auth or NatsAuth()).options())
    try:
        kv = await open_bucket(nc.jetstream(timeout=5), replicas=replicas)
        for r in revocations:
            await kv.put(r.key, r.value)
    finally:
        await nc.close()
