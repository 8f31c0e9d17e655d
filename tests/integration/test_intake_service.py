"""Intake's endpoints at the service level: who may read a case, what each command announces, and
what the runtime refuses before a handler runs (real PostgreSQL, no gateway, no NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, SHARING_CHANGED
from contracts.events import ReferralCreatedV1, ReferralStatusChangedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory
from contracts.replies import CaseView
from kernel.errors import SeginError
from kernel.rpc import Endpoint, ReplyInvalid, bind
from services.intake import handlers, views
from services.intake.app import APP as INTAKE
from tests.integration.services import CountingPool, audit_rows, call, deliver, outbox, principal, register


def referral_to(case: dict[str, Any], org: str, status: ReferralStatus = ReferralStatus.PENDING,
                legal_basis: LegalBasis | None = LegalBasis.CONSENT) -> ReferralCreatedV1:
    return ReferralCreatedV1(
        referral_id=str(uuid.uuid4()), case_id=case["id"], from_org_id=case["owner_org_id"], to_org_id=org,
        service_category=ServiceCategory.COUNTER_TRAFFICKING, priority=Priority.URGENT, legal_basis=legal_basis,
        status=status, due_at=datetime.now(UTC) + timedelta(hours=24), reason_code="TRAFFICKING_VICTIM")


async def test_registering_writes_the_case_and_its_event_in_one_transaction(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme", vulnerabilities=["TRAFFICKING_VICTIM", "PREGNANT"])
    [event] = await outbox(intake_pool, "intake", case["id"])
    assert event["type"] == ARRIVAL_REGISTERED.event_type and event["source"] == "/segin/intake"
    assert event["data"]["owner_org_id"] == "dgme" and event["data"]["consent_recipient_org_ids"] == ["unicef"]
    assert "given_name" not in event["data"], "events carry references, not dossiers"
    assert case["access"] == {"purpose": "CASE_MANAGEMENT", "legal_basis": None}
    # The registering token holds no sensitive scope: the flags it just entered come back restricted.
    assert case["vulnerabilities"] == [] and case["sensitive"]["trafficking"] is None
    [entry] = [r for r in await audit_rows(intake_pool, "intake") if str(case["id"]) in map(str, r["case_ids"])]
    assert (entry["operation"], entry["purpose"], entry["outcome"]) == ("case.create", "case_management", "allowed")


async def test_the_owner_reads_its_case_with_the_sensitive_flags_its_token_allows(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme", vulnerabilities=["TRAFFICKING_VICTIM", "PREGNANT"])
    scoped = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read sensitive:trafficking"),
                        {"case_id": case["id"]})
    assert scoped["vulnerabilities"] == ["TRAFFICKING_VICTIM"]
    assert scoped["sensitive"] == {"health": None, "gbv": None, "trafficking": ["TRAFFICKING_VICTIM"],
                                   "child_protection": None}
    assert scoped["sharing"] is not None and scoped["sharing"][0]["recipient_org_ids"] == ["unicef"]


async def test_an_uninvolved_organisation_is_told_no_such_case_and_the_refusal_is_recorded(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "get_case", intake_pool, principal("ame", "cases:read"), {"case_id": case["id"]})
    assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "id")
    [entry] = [r for r in await audit_rows(intake_pool, "intake")
               if str(case["id"]) in map(str, r["case_ids"]) and r["org_id"] == "ame"]
    assert (entry["operation"], entry["purpose"], entry["outcome"]) == ("case.read", "access_check", "denied")


async def test_a_recipient_reads_the_case_only_while_its_referral_is_open_and_consent_covers_it(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")  # consent to share with unicef
    unicef, other = principal("unicef", "cases:read"), principal("amdh", "cases:read")
    referral = referral_to(case, "unicef")
    await deliver(intake_pool, handlers.on_referral_created, REFERRAL_CREATED, referral, referral.referral_id)
    seen = await call(INTAKE, "get_case", intake_pool, unicef, {"case_id": case["id"]})
    assert seen["access"] == {"purpose": "REFERRAL", "legal_basis": "CONSENT"} and seen["sharing"] is None
    # An open referral without a covering consent opens nothing.
    uncovered = referral_to(case, "amdh")
    await deliver(intake_pool, handlers.on_referral_created, REFERRAL_CREATED, uncovered, uncovered.referral_id)
    with pytest.raises(SeginError):
        await call(INTAKE, "get_case", intake_pool, other, {"case_id": case["id"]})
    # Revoked: unicef's access ends.
    revoked = ReferralStatusChangedV1(**referral.model_dump(exclude={"status", "due_at", "reason_code"}),
                                      old_status=ReferralStatus.PENDING, new_status=ReferralStatus.REVOKED)
    await deliver(intake_pool, handlers.on_referral_status_changed, REFERRAL_STATUS_CHANGED, revoked,
                  referral.referral_id)
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "get_case", intake_pool, unicef, {"case_id": case["id"]})
    assert refused.value.code == "NOT_FOUND"


async def test_consent_commands_belong_to_the_owner_and_announce_the_new_coverage(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    consent = {"given": True, "recipient_org_ids": ["unicef", "iom"], "purposes": ["REFERRAL", "FOLLOW_UP"]}
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "record_consent", intake_pool, principal("unicef", "consent:write"),
                   {"case_id": case["id"], "consent": consent})
    assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "caseId")
    result = await call(INTAKE, "record_consent", intake_pool, principal("dgme", "consent:write"),
                        {"case_id": case["id"], "consent": consent})
    assert result["case_id"] == case["id"] and len(result["sharing"]) == 2
    events = await outbox(intake_pool, "intake", case["id"])
    assert [e["type"] for e in events] == [ARRIVAL_REGISTERED.event_type, SHARING_CHANGED.event_type]
    coverage = {c["purpose"]: {r["org_id"] for r in c["recipients"]} for c in events[-1]["data"]["coverage"]}
    assert coverage["REFERRAL"] == {"unicef", "iom"} and coverage["FOLLOW_UP"] == {"unicef", "iom"}
    assert events[-1]["data"]["change"] == "CONSENT_RECORDED"


async def test_a_missing_scope_is_refused_and_recorded_before_any_transaction(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    counting = CountingPool(intake_pool)
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "get_case", counting, principal("dgme", "cases:write"), {"case_id": case["id"]})
    assert refused.value.code == "INSUFFICIENT_SCOPE"
    assert counting.statements == [], "the handler never ran"
    [entry] = [r for r in await audit_rows(intake_pool, "intake")
               if str(case["id"]) in map(str, r["case_ids"]) and r["operation"] == "intake.get_case"]
    assert (entry["purpose"], entry["outcome"]) == ("access_check", "denied")


@pytest.mark.parametrize("payload,field", [
    ({"case_id": ""}, "case_id"),
    ({"case_id": "x", "extra": 1}, "extra"),
    ({}, "case_id"),
])
async def test_bad_input_is_refused_before_any_transaction(intake_pool: AsyncConnectionPool,
                                                           payload: dict[str, Any], field: str) -> None:
    counting = CountingPool(intake_pool)
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "get_case", counting, principal("dgme", "cases:read"), payload)
    assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", field)
    assert counting.statements == []


async def test_a_misspelt_reply_field_fails_at_the_service_boundary(intake_pool: AsyncConnectionPool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A view that answers ``famly_name`` is refused by the runtime, as an internal error of the
    service, before any caller (or the gateway) sees it."""
    case = await register(intake_pool, "dgme")
    right = views.case_view

    def misspelt(*args: Any) -> dict[str, Any]:
        data = right(*args).model_dump()
        data["famly_name"] = data.pop("family_name")
        return data

    monkeypatch.setattr(views, "case_view", misspelt)
    with pytest.raises(ReplyInvalid) as failed:
        await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read"), {"case_id": case["id"]})
    assert "famly_name" in str(failed.value) and "family_name" in str(failed.value)
    assert not isinstance(failed.value, SeginError), "not the caller's fault: INTERNAL, not BAD_USER_INPUT"
    assert "Diarra" not in str(failed.value), "the error names fields, never their values"


async def test_a_reply_model_also_catches_a_handler_that_forgets_a_field() -> None:
    async def forgetful(pool: Any, caller: Any, command: Any) -> dict[str, Any]:
        return {"id": "c-1"}

    route = bind("svc.intake.get_case", Endpoint(forgetful, INTAKE.endpoints["get_case"].request, "cases:read",
                                                 CaseView), None)
    with pytest.raises(ReplyInvalid) as failed:
        await route.handler(principal("dgme", "cases:read"), {"case_id": "c-1"})
    assert "given_name" in str(failed.value)
