"""The revocations outbox (``gateway.revocations``), and clearing credentials that can no longer be used."""

from __future__ import annotations

from gateway.store.connections import AsyncConnection, Row, SyncConnection


def record(conn: SyncConnection, key: str, value: bytes, expires_at: float) -> None:
    """Write (or rewrite, as unpublished) one revocation, in the caller's transaction."""
    conn.execute(
        "insert into gateway.revocations (key, value, expires_at) values (%s, %s, to_timestamp(%s))"
        " on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at,"
        " published_at = null",
        (key, value, expires_at),
    )


def mark_published(conn: SyncConnection, keys: list[str]) -> None:
    conn.execute("update gateway.revocations set published_at = now() where key = any(%s)", (keys,))


async def unpublish_live(conn: AsyncConnection) -> list[Row]:
    """Mark every live revocation unpublished (to send again); returns them (``key``, ``value``)."""
    cur = await conn.execute("update gateway.revocations set published_at = null"
                             " where expires_at > now() returning key, value")
    return await cur.fetchall()


async def pending(conn: AsyncConnection, limit: int = 500) -> list[Row]:
    cur = await conn.execute("select key, value from gateway.revocations where published_at is null"
                             " and expires_at > now() order by created_at limit %s", (limit,))
    return await cur.fetchall()


async def mark_published_async(conn: AsyncConnection, keys: list[str]) -> None:
    await conn.execute("update gateway.revocations set published_at = now() where key = any(%s)", (keys,))


async def delete_expired_credentials(conn: AsyncConnection) -> None:
    """Codes, access-token records, revocations and refresh tokens past any use or replay."""
    await conn.execute("delete from gateway.authorization_codes where expires_at < now() - interval '1 day'")
    await conn.execute("delete from gateway.grant_access_tokens where expires_at < now() - interval '1 hour'")
    await conn.execute("delete from gateway.revocations where expires_at < now() - interval '1 hour'")
    await conn.execute("delete from gateway.refresh_tokens where expires_at < now() - interval '1 day'")
