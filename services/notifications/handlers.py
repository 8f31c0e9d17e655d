"""Notifications' event handler and queries."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import CaseRef, MarkRead, NotificationsRequest
from contracts.events import (
    CaseAssignedV1,
    CaseClosedV1,
    CaseReopenedV1,
    CaseUnreachableV1,
    ContactDueV1,
    ContactOverdueV1,
    NeedUnassignedV1,
    PlanOverdueV1,
    ReferralCreatedV1,
    ReferralDeadlineV1,
    ReferralStatusChangedV1,
)
from contracts.replies import NotificationExport, NotificationView, Page
from kernel.audit import AuditPurpose
from kernel.config import coordinator_org_id
from kernel.db import Connection
from kernel.errors import NotFound, parse_id
from kernel.events import CloudEvent
from kernel.pagination import page
from kernel.tokens import Principal
from services.notifications import domain, store
from services.notifications.views import notification_export, notification_view


async def on_referral_created(conn: Connection, event: CloudEvent) -> None:
    referral = ReferralCreatedV1.model_validate(event.data)
    for notice in domain.notices_for_referral(referral):
        await store.insert(conn, notice, referral.priority.value, referral.referral_id, referral.case_id, event.id)


async def on_referral_status_changed(conn: Connection, event: CloudEvent) -> None:
    change = ReferralStatusChangedV1.model_validate(event.data)
    for notice in domain.notices_for_status_change(change):
        await store.insert(conn, notice, change.priority.value, change.referral_id, change.case_id, event.id)




async def on_referral_deadline(conn: Connection, event: CloudEvent) -> None:
    """A reminder, an escalation or an overdue outcome: tell who must act (each once per event)."""
    deadline = ReferralDeadlineV1.model_validate(event.data)
    for notice in domain.notices_for_deadline(deadline, coordinator_org_id()):
        await store.insert(conn, notice, deadline.priority.value, deadline.referral_id, deadline.case_id, event.id)


async def on_need_unassigned(conn: Connection, event: CloudEvent) -> None:
    """An unmet need: tell the registering organisation and the coordinating body (SEGIN_COORDINATOR_ORG)."""
    need = NeedUnassignedV1.model_validate(event.data)
    for notice in domain.notices_for_unassigned(need, coordinator_org_id()):
        await store.insert(conn, notice, need.priority.value, need.referral_id, need.case_id, event.id)


# --- follow-up: the managing organisation is told (each once per event: the inbox and the unique key) ----


async def on_contact_due(conn: Connection, event: CloudEvent) -> None:
    due = ContactDueV1.model_validate(event.data)
    await store.insert(conn, domain.notice_for_contact(due, overdue=False), "NORMAL", None, due.case_id, event.id)


async def on_contact_overdue(conn: Connection, event: CloudEvent) -> None:
    overdue = ContactOverdueV1.model_validate(event.data)
    await store.insert(conn, domain.notice_for_contact(overdue, overdue=True), "HIGH", None, overdue.case_id,
                       event.id)


async def on_case_unreachable(conn: Connection, event: CloudEvent) -> None:
    flagged = CaseUnreachableV1.model_validate(event.data)
    await store.insert(conn, domain.notice_for_unreachable(flagged), "HIGH", None, flagged.case_id, event.id)


async def on_plan_overdue(conn: Connection, event: CloudEvent) -> None:
    late = PlanOverdueV1.model_validate(event.data)
    await store.insert(conn, domain.notice_for_plan_overdue(late), "NORMAL", None, late.case_id, event.id)


async def on_case_closed(conn: Connection, event: CloudEvent) -> None:
    closed = CaseClosedV1.model_validate(event.data)
    notice = domain.notice_for_closure(closed)
    if notice is not None:
        await store.insert(conn, notice, "NORMAL", None, closed.case_id, event.id)


async def on_case_reopened(conn: Connection, event: CloudEvent) -> None:
    reopened = CaseReopenedV1.model_validate(event.data)
    notice = domain.notice_for_reopening(reopened)
    if notice is not None:
        await store.insert(conn, notice, "NORMAL", None, reopened.case_id, event.id)


async def on_case_assigned(conn: Connection, event: CloudEvent) -> None:
    assigned = CaseAssignedV1.model_validate(event.data)
    await store.insert(conn, domain.notice_for_assignment(assigned), "NORMAL", None, assigned.case_id, event.id)


async def list_notifications(pool: AsyncConnectionPool, principal: Principal, request: NotificationsRequest
                             ) -> Page[NotificationView]:
    async with pool.connection() as conn, conn.transaction():
        rows = await store.list_for(conn, principal.org_id, principal.scopes, request.first, request.after,
                                    request.unread_only)
        found = page(rows, request.first)
        result = Page[NotificationView](nodes=[notification_view(r) for r in found["nodes"]],
                                        page_info=found["page_info"])
        await _audit(conn, principal, "notification.list", [(n.kind, n.case_id) for n in result.nodes])
    return result


def _about(kind: str) -> tuple[list[str], AuditPurpose]:
    """What a notice of this kind tells of a case, for the audit trail: a referral, or a follow-up."""
    if kind.startswith("followup."):
        return ["follow_up"], AuditPurpose.FOLLOW_UP
    return ["referral"], AuditPurpose.REFERRAL


async def _audit(conn: Connection, principal: Principal, operation: str, shown: list[tuple[str, Any]]) -> None:
    """One allowed entry per kind of work shown (referral, follow-up), naming the cases concerned."""
    groups: dict[tuple[tuple[str, ...], AuditPurpose], set[Any]] = {}
    for kind, case_id in shown:
        if case_id:
            categories, purpose = _about(kind)
            groups.setdefault((tuple(categories), purpose), set()).add(case_id)
    for (categories, purpose), case_ids in sorted(groups.items()):
        await store.TRAIL.allowed(conn, principal, operation, case_ids, list(categories), purpose)


async def mark_read(pool: AsyncConnectionPool, principal: Principal, request: MarkRead) -> NotificationView:
    notification_id = parse_id(request.notification_id, "id", not_found="No such notification.")
    async with pool.connection() as conn, conn.transaction():
        row = await store.mark_read(conn, principal.org_id, principal.scopes, notification_id)
        if row is not None:
            await _audit(conn, principal, "notification.mark_read", [(row["kind"], row["case_id"])])
    if row is None:
        raise NotFound("No such notification.", field="id")
    return notification_view(row)


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef
                         ) -> list[NotificationExport]:
    """Which organisations were notified about one person's case, and when. Audited."""
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        rows = await store.about_case(conn, case_id)
        categories = sorted({c for r in rows for c in _about(r["kind"])[0]}) or ["referral"]
        await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], categories,
                                  AuditPurpose.DATA_SUBJECT_REQUEST)
    return [notification_export(r) for r in rows]
