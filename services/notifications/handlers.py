"""Notifications' event handler and queries."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import CaseRef, MarkRead, NotificationsRequest
from contracts.events import ReferralCreatedV1, ReferralStatusChangedV1
from kernel.audit import AuditEntry, record
from kernel.db import Connection
from kernel.errors import NotFound, parse_id
from kernel.events import CloudEvent
from kernel.pagination import page
from kernel.tokens import Principal
from services.notifications import domain, store


async def on_referral_created(conn: Connection, event: CloudEvent) -> None:
    referral = ReferralCreatedV1.model_validate(event.data)
    for notice in domain.notices_for_referral(referral):
        await store.insert(conn, notice, referral.priority.value, referral.referral_id, referral.case_id, event.id)


async def on_referral_status_changed(conn: Connection, event: CloudEvent) -> None:
    change = ReferralStatusChangedV1.model_validate(event.data)
    for notice in domain.notices_for_status_change(change):
        await store.insert(conn, notice, change.priority.value, change.referral_id, change.case_id, event.id)


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
    async with pool.connection() as conn, conn.transaction():
        rows = await store.list_for(conn, principal.org_id, principal.scopes, request.first, request.after,
                                    request.unread_only)
        result = page(rows, request.first)
        result["nodes"] = [notification_view(r) for r in result["nodes"]]
        case_ids = sorted({n["case_id"] for n in result["nodes"] if n["case_id"]})
        if case_ids:
            await record(conn, store.SCHEMA, principal, AuditEntry(
                operation="notification.list", case_ids=case_ids, field_categories=["referral"],
                purpose="referral", outcome="allowed"))
    return result


async def mark_read(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("notifications:read")
    request = MarkRead.model_validate(payload)
    notification_id = parse_id(request.notification_id, "id", not_found="No such notification.")
    async with pool.connection() as conn, conn.transaction():
        row = await store.mark_read(conn, principal.org_id, principal.scopes, notification_id)
        if row is not None and row["case_id"]:
            await record(conn, store.SCHEMA, principal, AuditEntry(
                operation="notification.mark_read", case_ids=[str(row["case_id"])], field_categories=["referral"],
                purpose="referral", outcome="allowed"))
    if row is None:
        raise NotFound("No such notification.", field="id")
    return notification_view(row)


async def subject_access(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]
                         ) -> list[dict[str, Any]]:
    """Which organisations were notified about one person's case, and when. Audited."""
    principal.require("audit:read")
    case_id = parse_id(CaseRef.model_validate(payload).case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute("select * from notifications.notifications where case_id = %s"
                                 " order by created_at, id", (case_id,))
        rows = list(await cur.fetchall())
        await record(conn, store.SCHEMA, principal, AuditEntry(
            operation="dsar.export", case_ids=[str(case_id)], field_categories=["referral"],
            purpose="data_subject_request", outcome="allowed"))
    return [{**notification_view(r), "org_id": r["org_id"]} for r in rows]
