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

from nats.aio.client import Client

from gateway.store import clients, grants
from gateway.store import revocations as store
from gateway.store.connections import AsyncPool, SyncConnection
from kernel.denylist import RETENTION, DenyList, client_entry, jti_entry, open_bucket
from kernel.natsauth import NatsAuth, inbox_prefix, servers
from kernel.periodic import every

log = logging.getLogger(__name__)
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
        store.record(conn, r.key, r.value, r.expires_at)
    return revocations


def revoke_grant(conn: SyncConnection, grant_id: str, reason: str) -> list[Revocation]:
    """Revoke a person's grant: its refresh tokens stop working and its live access tokens are denied."""
    live = grants.revoke_grant(conn, grant_id, reason)
    return record(conn, [access_token(r["jti"], r["exp"]) for r in live])


def revoke_client(conn: SyncConnection, client_id: str) -> list[Revocation] | None:
    """Revoke a client: no new tokens, its live tokens denied, its people's grants revoked. None if unknown."""
    if not clients.mark_revoked(conn, client_id):
        return None
    entries: list[Revocation] = []
    for grant_id in grants.live_grants_of_client(conn, client_id):
        entries += revoke_grant(conn, grant_id, "client revoked")
    return entries + record(conn, [client(client_id, time.time())])


class Publisher:
    """Applies revocations to this gateway's deny list and publishes them to every process."""

    def __init__(self, denylist: DenyList, pool: AsyncPool, nc: Client, *, replicas: int = 1) -> None:
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
            for row in await store.unpublish_live(conn):
                self.denylist.apply(row["key"], bytes(row["value"]))

    async def publish_pending(self) -> int:
        """Publish every unpublished, still useful revocation; returns how many were published."""
        async with self._lock:
            async with self.pool.connection() as conn:
                rows = await store.pending(conn)
            if not rows:
                return 0
            kv = await open_bucket(self.nc.jetstream(timeout=5), replicas=self.replicas)
            for row in rows:
                await kv.put(row["key"], bytes(row["value"]))
            async with self.pool.connection() as conn:
                await store.mark_published_async(conn, [r["key"] for r in rows])
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
            await store.delete_expired_credentials(conn)


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
