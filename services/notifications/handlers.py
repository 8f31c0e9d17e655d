"""Notifications' event handler and queries."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import MarkRead, NotificationsRequest
from contracts.events import ReferralCreatedV1
from kernel.db import Connection
from kernel.errors import NotFound
from kernel.events import CloudEvent
from kernel.pagination import page
from kernel.tokens import Principal
from services.notifications import domain, store


async def on_referral_created(conn: Connection, event: CloudEvent) -> None:
    referral = ReferralCreatedV1.model_validate(event.data)
    for notice in domain.notices_for_referral(referral):
        await store.insert(conn, notice, referral.priority.value, referral.referral_id, referral.case_id, event.id)


def notification_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "priority": row["priority"],
        "title_fr": row["title_fr"],
        "title_en": row["title_en"],
        "referral_id": str(row["referral_id"]) if row["referral_id"] else None,
        "case_id": str(row["case_id"]) if row["case_id"] else None,
        "created_at": row["created_at"],
        "read_at": row["read_at"],
    }


async def list_notifications(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("notifications:read")
    request = NotificationsRequest.model_validate(payload)
    async with pool.connection() as conn:
        rows = await store.list_for(conn, principal.org_id, request.first, request.after, request.unread_only)
    result = page(rows, request.first)
    result["nodes"] = [notification_view(r) for r in result["nodes"]]
    return result


async def mark_read(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("notifications:read")
    request = MarkRead.model_validate(payload)
    try:
        notification_id = uuid.UUID(request.notification_id)
    except ValueError:
        raise NotFound("No such notification.", field="id") from None
    async with pool.connection() as conn:
        row = await store.mark_read(conn, principal.org_id, notification_id)
    if row is None:
        raise NotFound("No such notification.", field="id")
    return notification_view(row)
