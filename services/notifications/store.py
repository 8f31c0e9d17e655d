"""Notifications' tables (schema ``notifications``)."""

from __future__ import annotations

import uuid
from typing import Any

from kernel.audit import Trail
from kernel.db import Connection
from kernel.pagination import keyset_query
from services.notifications.domain import Notice

SCHEMA = "notifications"
TRAIL = Trail(SCHEMA)  # notifications' audit trail: one call per handler


async def insert(conn: Connection, notice: Notice, priority: str, referral_id: str | None, case_id: str,
                 event_id: str) -> None:
    await conn.execute(
        "insert into notifications.notifications (id, org_id, kind, priority, title_fr, title_en, referral_id,"
        " case_id, source_event_id, scope, audience) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (source_event_id, org_id, kind) do nothing",
        (uuid.uuid4(), notice.org_id, notice.kind, priority, notice.title_fr, notice.title_en, referral_id, case_id,
         event_id, notice.scope, notice.audience),
    )


# A notice needing a scope (domain.Notice.scope), or meant for an audience (domain.Notice.audience),
# exists only for tokens holding every scope it names.
_VISIBLE = " and array_remove(array[scope, audience], null) <@ %s::text[]"


async def list_for(conn: Connection, org_id: str, scopes: frozenset[str], first: int, after: str | None,
                   unread_only: bool) -> list[dict[str, Any]]:
    query = "select * from notifications.notifications where org_id = %s" + _VISIBLE
    if unread_only:
        query += " and read_at is null"
    query, params = keyset_query(query, [org_id, sorted(scopes)], first, after)
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


async def mark_read(conn: Connection, org_id: str, scopes: frozenset[str],
                    notification_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        "update notifications.notifications set read_at = coalesce(read_at, now())"
        " where id = %s and org_id = %s" + _VISIBLE + " returning *",
        (notification_id, org_id, sorted(scopes)),
    )
    return await cur.fetchone()


async def about_case(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every notification about one case, whoever it went to (the steward's data-subject export)."""
    cur = await conn.execute("select * from notifications.notifications where case_id = %s"
                             " order by created_at, id", (case_id,))
    return list(await cur.fetchall())
