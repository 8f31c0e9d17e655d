"""Deadlines at the service level, against real PostgreSQL with the clock passed in: each mark fires
once with its event in the same transaction, whatever the number of scans or concurrent scanners;
and the notices they lead to reach only the people meant to see them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from contracts.channels import REFERRAL_DEADLINE
from contracts.events import ReferralDeadlineV1
from contracts.reference import DeadlineKind, LegalBasis, Priority, ServiceCategory
from services.notifications import handlers as notification_handlers
from services.notifications.app import APP as NOTIFICATIONS
from services.referral.deadlines import DeadlineSettings, scan_deadlines
from tests.integration.services import audit_rows, call, deliver, outbox, principal

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
NOTHING = {"REMINDER": 0, "ESCALATED": 0, "OUTCOME_OVERDUE": 0}


def fired(reminders: int = 0, escalations: int = 0, overdue: int = 0) -> dict[str, int]:
    return {"REMINDER": reminders, "ESCALATED": escalations, "OUTCOME_OVERDUE": overdue}


async def service(pool: AsyncConnectionPool, expected_duration: timedelta | None) -> uuid.UUID:
    service_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute("insert into referral.organizations (id, name, org_type) values ('unicef', 'UNICEF',"
                           " 'INTERNATIONAL') on conflict do nothing")
        await conn.execute("insert into referral.services (id, organization_id, name_fr, category, expected_duration)"
                           " values (%s, 'unicef', 'Recherche', 'FAMILY_TRACING', %s)", (service_id, expected_duration))
    return service_id


async def referral(pool: AsyncConnectionPool, *, due_at: datetime, status: str = "PENDING",
                   priority: Priority = Priority.URGENT, category: ServiceCategory = ServiceCategory.FAMILY_TRACING,
                   accepted_at: datetime | None = None, service_id: uuid.UUID | None = None,
                   outcome_code: str | None = None) -> str:
    """A referral as routing (or a person) left it; the deadline columns are the scan's to set."""
    referral_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            "insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category,"
            " priority, legal_basis, status, reason_code, due_at, origin, accepted_at, service_id, outcome_code)"
            " values (%s, %s, 'ame', 'ame', 'unicef', %s, %s, 'CONSENT', %s, 'TEST', %s, 'MANUAL', %s, %s, %s)",
            (referral_id, uuid.uuid4(), category.value, priority.value, status, due_at, accepted_at, service_id,
             outcome_code))
    return str(referral_id)


async def scan(pool: AsyncConnectionPool, now: datetime, settings: DeadlineSettings | None = None,
               **kwargs: Any) -> dict[str, int]:
    async with pool.connection() as conn:
        return await scan_deadlines(conn, now, settings, **kwargs)


async def marks(pool: AsyncConnectionPool, referral_id: str) -> tuple[Any, Any, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute("select reminded_at, escalated_at, overdue_flagged_at from referral.referrals"
                                 " where id = %s", (referral_id,))
        row = await cur.fetchone()
        assert row is not None
        return row["reminded_at"], row["escalated_at"], row["overdue_flagged_at"]


async def kinds(pool: AsyncConnectionPool, referral_id: str) -> list[str]:
    events = await outbox(pool, "referral", referral_id)
    assert all(e["type"] == REFERRAL_DEADLINE.event_type for e in events)
    return [e["data"]["kind"] for e in events]


async def test_a_referral_past_due_is_reminded_once_with_its_event(referral_pool: AsyncConnectionPool) -> None:
    late = await referral(referral_pool, due_at=NOW - H)
    not_yet = await referral(referral_pool, due_at=NOW + H)
    assert await scan(referral_pool, NOW) == fired(reminders=1)
    assert await marks(referral_pool, late) == (NOW, None, None)
    [event] = await outbox(referral_pool, "referral", late)
    assert event["data"] | {"referral_id": None, "case_id": None} == {
        "referral_id": None, "case_id": None, "from_org_id": "ame", "to_org_id": "unicef",
        "service_category": "FAMILY_TRACING", "priority": "URGENT", "legal_basis": "CONSENT", "kind": "REMINDER",
        "due_at": (NOW - H).isoformat().replace("+00:00", "Z")}
    assert await kinds(referral_pool, not_yet) == []
    # Again at the same time and later (before the grace period ends): nothing new.
    assert await scan(referral_pool, NOW) == NOTHING
    assert await scan(referral_pool, NOW + 10 * H) == fired(reminders=1)  # only the other one, now due
    assert await kinds(referral_pool, late) == ["REMINDER"]
    assert await kinds(referral_pool, not_yet) == ["REMINDER"]
    [entry, _] = [r for r in await audit_rows(referral_pool, "referral") if r["operation"].startswith("referral.dead")]
    assert (entry["operation"], entry["actor"], entry["purpose"]) == (
        "referral.deadline_reminder", "service:referral", "referral")


async def test_escalation_comes_after_the_grace_of_the_priority_exactly_once(
        referral_pool: AsyncConnectionPool) -> None:
    urgent = await referral(referral_pool, due_at=NOW)
    normal = await referral(referral_pool, due_at=NOW, priority=Priority.NORMAL)
    assert await scan(referral_pool, NOW) == fired(reminders=2)
    assert await scan(referral_pool, NOW + 12 * H - timedelta(seconds=1)) == NOTHING
    assert await scan(referral_pool, NOW + 12 * H) == fired(escalations=1)
    assert await marks(referral_pool, urgent) == (NOW, NOW + 12 * H, None)
    assert await scan(referral_pool, NOW + 71 * H) == NOTHING
    assert await scan(referral_pool, NOW + 72 * H) == fired(escalations=1)
    assert await scan(referral_pool, NOW + 1000 * H) == NOTHING
    assert await kinds(referral_pool, urgent) == ["REMINDER", "ESCALATED"]
    assert await kinds(referral_pool, normal) == ["REMINDER", "ESCALATED"]
    [event] = [e for e in await outbox(referral_pool, "referral", urgent) if e["data"]["kind"] == "ESCALATED"]
    assert event["data"]["due_at"] == NOW.isoformat().replace("+00:00", "Z")  # the due time that was missed


async def test_the_grace_period_comes_from_the_settings(referral_pool: AsyncConnectionPool) -> None:
    high = await referral(referral_pool, due_at=NOW - 2 * H, priority=Priority.HIGH)
    settings = DeadlineSettings(grace={Priority.URGENT: 12 * H, Priority.HIGH: 1 * H, Priority.NORMAL: 72 * H})
    assert await scan(referral_pool, NOW, settings) == fired(reminders=1, escalations=1)
    assert await kinds(referral_pool, high) == ["REMINDER", "ESCALATED"]


async def test_only_pending_referrals_are_reminded_or_escalated(referral_pool: AsyncConnectionPool) -> None:
    for status in ("ACCEPTED", "REJECTED", "DONE", "REVOKED", "AWAITING_CONSENT"):
        await referral(referral_pool, due_at=NOW - 100 * H, status=status)
    assert await scan(referral_pool, NOW) == NOTHING


async def test_an_accepted_referral_without_outcome_is_flagged_past_its_service_duration_once(
        referral_pool: AsyncConnectionPool) -> None:
    week = await service(referral_pool, timedelta(days=7))
    month = await service(referral_pool, timedelta(days=30))
    open_ended = await service(referral_pool, None)
    accepted = {"due_at": NOW - timedelta(days=20), "status": "ACCEPTED", "accepted_at": NOW - timedelta(days=8)}
    late = await referral(referral_pool, service_id=week, **accepted)
    within = await referral(referral_pool, service_id=month, **accepted)
    no_duration = await referral(referral_pool, service_id=open_ended, **accepted)
    no_service = await referral(referral_pool, **accepted)
    with_outcome = await referral(referral_pool, service_id=week, outcome_code="SERVICE_DELIVERED", **accepted)
    assert await scan(referral_pool, NOW) == fired(overdue=1)
    assert await marks(referral_pool, late) == (None, None, NOW)
    [event] = await outbox(referral_pool, "referral", late)
    assert (event["data"]["kind"], event["data"]["due_at"]) == (
        "OUTCOME_OVERDUE", (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z"))
    assert await scan(referral_pool, NOW + timedelta(days=30)) == fired(overdue=1)  # the month is up too
    assert await scan(referral_pool, NOW + timedelta(days=999)) == NOTHING
    assert await kinds(referral_pool, within) == ["OUTCOME_OVERDUE"]
    for never in (no_duration, no_service, with_outcome):
        assert await kinds(referral_pool, never) == []


async def test_one_scan_works_through_every_batch(referral_pool: AsyncConnectionPool) -> None:
    for _ in range(12):
        await referral(referral_pool, due_at=NOW - H)
    assert await scan(referral_pool, NOW, DeadlineSettings(batch=5)) == fired(reminders=12)
    assert await scan(referral_pool, NOW, DeadlineSettings(batch=5)) == NOTHING


async def test_two_concurrent_scans_fire_each_mark_once(referral_pool: AsyncConnectionPool) -> None:
    ids = [await referral(referral_pool, due_at=NOW - 13 * H) for _ in range(40)]
    settings = DeadlineSettings(batch=3)

    async def scanner() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(referral_pool.conninfo, row_factory=dict_row) as conn:
            return await scan_deadlines(conn, NOW, settings)

    first, second = await asyncio.gather(scanner(), scanner())
    assert {k: first[k] + second[k] for k in first} == fired(reminders=40, escalations=40)
    for referral_id in ids:
        assert await kinds(referral_pool, referral_id) == ["REMINDER", "ESCALATED"]


async def test_a_referral_locked_by_someone_else_is_left_for_the_next_scan(referral_pool: AsyncConnectionPool) -> None:
    busy = await referral(referral_pool, due_at=NOW - H)
    async with await psycopg.AsyncConnection.connect(referral_pool.conninfo) as other:
        async with other.transaction():  # e.g. the recipient accepting it right now
            await other.execute("select 1 from referral.referrals where id = %s for update", (busy,))
            assert await asyncio.wait_for(scan(referral_pool, NOW), 10) == NOTHING
    assert await scan(referral_pool, NOW) == fired(reminders=1)


async def test_a_failure_in_the_batch_leaves_neither_the_mark_nor_the_event(referral_pool: AsyncConnectionPool) -> None:
    late = await referral(referral_pool, due_at=NOW - 13 * H)

    async def crash(conn: Any, row: dict[str, Any]) -> None:
        raise RuntimeError("process died here")

    with pytest.raises(RuntimeError):
        await scan(referral_pool, NOW, on_escalated=crash)
    assert await marks(referral_pool, late) == (NOW, None, None)  # the reminder's batch had committed
    assert await kinds(referral_pool, late) == ["REMINDER"]
    seen: list[str] = []

    async def reroute(conn: Any, row: dict[str, Any]) -> None:  # where re-routing would plug in
        seen.append(str(row["id"]))

    assert await scan(referral_pool, NOW, on_escalated=reroute) == fired(escalations=1)
    assert seen == [late]
    assert await kinds(referral_pool, late) == ["REMINDER", "ESCALATED"]


async def test_a_sensitive_escalation_is_audited_with_its_category(referral_pool: AsyncConnectionPool) -> None:
    await referral(referral_pool, due_at=NOW - 13 * H, category=ServiceCategory.GBV_RESPONSE)
    await scan(referral_pool, NOW)
    entries = {r["operation"]: r for r in await audit_rows(referral_pool, "referral")}
    assert entries["referral.deadline_escalated"]["field_categories"] == ["gbv", "referral"]


# --- the notices they lead to ------------------------------------------------------------------

def deadline_event(kind: DeadlineKind, category: ServiceCategory) -> ReferralDeadlineV1:
    return ReferralDeadlineV1(referral_id=str(uuid.uuid4()), case_id=str(uuid.uuid4()), from_org_id="ame",
                              to_org_id="unicef", service_category=category, priority=Priority.URGENT,
                              legal_basis=LegalBasis.CONSENT, kind=kind, due_at=NOW)


async def listed(pool: AsyncConnectionPool, org: str, scopes: str) -> list[str]:
    page = await call(NOTIFICATIONS, "list", pool, principal(org, f"notifications:read {scopes}".strip()), {})
    return [n["kind"] for n in page["nodes"]]


async def test_an_escalation_reaches_the_referrers_supervisors_and_the_coordinator_once(
        notifications_pool: AsyncConnectionPool) -> None:
    escalated = deadline_event(DeadlineKind.ESCALATED, ServiceCategory.GBV_RESPONSE)
    event = await deliver(notifications_pool, notification_handlers.on_referral_deadline, REFERRAL_DEADLINE,
                          escalated, escalated.referral_id)
    async with notifications_pool.connection() as conn, conn.transaction():  # a redelivery changes nothing
        await notification_handlers.on_referral_deadline(conn, event)
    # The referring organisation: only a supervisor's token holding the category's scope sees it.
    assert await listed(notifications_pool, "ame", "referrals:read referrals:write sensitive:gbv") == []
    assert await listed(notifications_pool, "ame", "referrals:supervise") == []
    assert await listed(notifications_pool, "ame", "referrals:supervise sensitive:gbv") == ["referral.escalated"]
    # The coordinating body (SEGIN_COORDINATOR_ORG, default dgme): anyone there with the category's scope.
    assert await listed(notifications_pool, "dgme", "") == []
    assert await listed(notifications_pool, "dgme", "sensitive:gbv") == ["referral.escalated"]
    assert await listed(notifications_pool, "unicef", "sensitive:gbv referrals:supervise") == []


async def test_a_reminder_and_an_overdue_outcome_reach_the_recipient(notifications_pool: AsyncConnectionPool) -> None:
    for kind in (DeadlineKind.REMINDER, DeadlineKind.OUTCOME_OVERDUE):
        payload = deadline_event(kind, ServiceCategory.FAMILY_TRACING)
        await deliver(notifications_pool, notification_handlers.on_referral_deadline, REFERRAL_DEADLINE, payload,
                      payload.referral_id)
    assert await listed(notifications_pool, "unicef", "") == ["referral.outcome_overdue", "referral.reminder"]
    assert await listed(notifications_pool, "ame", "") == ["referral.outcome_overdue"]
