"""Notifications' endpoints at the service level: who is told what, and which notices exist for
which tokens (real PostgreSQL, fresh database, no gateway, no NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASE_ASSIGNED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED
from contracts.events import CaseAssignedV1, ReferralCreatedV1, ReferralStatusChangedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory
from kernel.errors import SeginError
from services.notifications import handlers
from services.notifications.app import APP as NOTIFICATIONS
from tests.integration.services import CountingPool, audit_rows, call, deliver, principal

OWNER, SHELTER = "dgme", "amsode"


def created(status: ReferralStatus, category: ServiceCategory = ServiceCategory.COUNTER_TRAFFICKING
            ) -> ReferralCreatedV1:
    return ReferralCreatedV1(
        referral_id=str(uuid.uuid4()), case_id=str(uuid.uuid4()), from_org_id=OWNER, to_org_id=SHELTER,
        service_category=category, priority=Priority.URGENT,
        legal_basis=LegalBasis.CONSENT if status == ReferralStatus.PENDING else None, status=status,
        due_at=datetime.now(UTC) + timedelta(hours=24), reason_code="TRAFFICKING_VICTIM")


async def notices(pool: AsyncConnectionPool, org: str, scopes: str) -> list[str]:
    page = await call(NOTIFICATIONS, "list", pool, principal(org, f"notifications:read {scopes}".strip()), {})
    return [n["kind"] for n in page["nodes"]]


async def test_a_live_referral_tells_its_recipient_and_the_answer_tells_the_referring_side(
        notifications_pool: AsyncConnectionPool) -> None:
    referral = created(ReferralStatus.PENDING, ServiceCategory.SHELTER)
    await deliver(notifications_pool, handlers.on_referral_created, REFERRAL_CREATED, referral, referral.referral_id)
    assert await notices(notifications_pool, SHELTER, "") == ["referral.received"]
    assert await notices(notifications_pool, OWNER, "") == []
    accepted = ReferralStatusChangedV1(**referral.model_dump(exclude={"status", "due_at", "reason_code"}),
                                       old_status=ReferralStatus.PENDING, new_status=ReferralStatus.ACCEPTED)
    await deliver(notifications_pool, handlers.on_referral_status_changed, REFERRAL_STATUS_CHANGED, accepted,
                  referral.referral_id)
    assert await notices(notifications_pool, OWNER, "") == ["referral.accepted"]
    [entry, *_] = [r for r in await audit_rows(notifications_pool, "notifications") if r["org_id"] == SHELTER]
    assert (entry["operation"], entry["purpose"]) == ("notification.list", "referral")


async def test_a_notice_about_a_sensitive_service_exists_only_for_tokens_with_its_scope(
        notifications_pool: AsyncConnectionPool) -> None:
    waiting = created(ReferralStatus.AWAITING_CONSENT)
    await deliver(notifications_pool, handlers.on_referral_created, REFERRAL_CREATED, waiting, waiting.referral_id)
    assert await notices(notifications_pool, OWNER, "") == []
    assert await notices(notifications_pool, OWNER, "sensitive:trafficking") == ["referral.awaiting_consent"]
    assert await notices(notifications_pool, SHELTER, "sensitive:trafficking") == []
    page = await call(NOTIFICATIONS, "list", notifications_pool,
                      principal(OWNER, "notifications:read sensitive:trafficking"), {})
    [notice] = page["nodes"]
    assert "traite" not in notice["title_fr"] and "trafficking" not in notice["title_en"]
    with pytest.raises(SeginError) as hidden:
        await call(NOTIFICATIONS, "mark_read", notifications_pool, principal(OWNER, "notifications:read"),
                   {"notification_id": notice["id"]})
    assert (hidden.value.code, hidden.value.field) == ("NOT_FOUND", "id")
    read = await call(NOTIFICATIONS, "mark_read", notifications_pool,
                      principal(OWNER, "notifications:read sensitive:trafficking"), {"notification_id": notice["id"]})
    assert read["read_at"] is not None and read["id"] == notice["id"]


async def test_the_steward_export_names_who_was_told(notifications_pool: AsyncConnectionPool) -> None:
    referral = created(ReferralStatus.PENDING)
    await deliver(notifications_pool, handlers.on_referral_created, REFERRAL_CREATED, referral, referral.referral_id)
    export = await call(NOTIFICATIONS, "subject_access", notifications_pool, principal("segin", "audit:read"),
                        {"case_id": referral.case_id})
    assert [(n["org_id"], n["kind"]) for n in export] == [(SHELTER, "referral.received")]
    [entry] = [r for r in await audit_rows(notifications_pool, "notifications") if r["operation"] == "dsar.export"]
    assert entry["purpose"] == "data_subject_request"


async def test_scope_and_input_are_checked_before_any_transaction(notifications_pool: AsyncConnectionPool) -> None:
    counting = CountingPool(notifications_pool)
    with pytest.raises(SeginError) as refused:
        await call(NOTIFICATIONS, "list", counting, principal(SHELTER, "referrals:read"), {})
    assert refused.value.code == "INSUFFICIENT_SCOPE"
    with pytest.raises(SeginError) as bad:
        await call(NOTIFICATIONS, "list", counting, principal(SHELTER, "notifications:read"), {"first": 1000})
    assert (bad.value.code, bad.value.field) == ("BAD_USER_INPUT", "first")
    assert counting.statements == []
    [entry] = await audit_rows(notifications_pool, "notifications")
    assert (entry["operation"], entry["outcome"]) == ("notifications.list", "denied")


async def test_reading_follow_up_and_referral_notices_is_audited_as_what_each_is_about(
        notifications_pool: AsyncConnectionPool) -> None:
    """A follow-up notice is follow-up work: its reading is audited as such, not as a referral."""
    referral = created(ReferralStatus.PENDING, ServiceCategory.SHELTER)
    await deliver(notifications_pool, handlers.on_referral_created, REFERRAL_CREATED, referral, referral.referral_id)
    handed = CaseAssignedV1(case_id=str(uuid.uuid4()), owner_org_id=OWNER, from_org_id=OWNER, to_org_id=SHELTER,
                            reason_code="SPECIALISED_SUPPORT", legal_basis=LegalBasis.CONSENT,
                            assigned_by_org_id=OWNER, version=2)
    await deliver(notifications_pool, handlers.on_case_assigned, CASE_ASSIGNED, handed, handed.case_id)
    assert sorted(await notices(notifications_pool, SHELTER, "")) == ["followup.case_assigned", "referral.received"]
    listed = [r for r in await audit_rows(notifications_pool, "notifications") if r["org_id"] == SHELTER]
    about = {(r["purpose"], tuple(r["field_categories"]), tuple(str(c) for c in r["case_ids"])) for r in listed}
    assert about == {("follow_up", ("follow_up",), (handed.case_id,)),
                     ("referral", ("referral",), (referral.case_id,))}
