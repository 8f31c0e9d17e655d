"""Follow-up's endpoints at the service level (real PostgreSQL, fresh database, no gateway, no NATS):
hand-over on a legal basis, the plan and its versions, closure and re-opening, the work list, what
events carry; and intake's side of a hand-over (who may read the case afterwards)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, CASE_ASSIGNED, SHARING_CHANGED
from contracts.commands import CaseRef
from contracts.events import (
    ArrivalRegisteredV1,
    CaseAssignedV1,
    SharingChangedV1,
    SharingCoverage,
    SharingRecipient,
)
from contracts.reference import ArrivalPoint, LegalBasis, Purpose, Vulnerability
from kernel.errors import SeginError
from kernel.tokens import Principal
from services.followup import handlers
from services.followup.app import APP as FOLLOWUP
from services.intake import handlers as intake_handlers
from services.intake.app import APP as INTAKE
from tests.integration.services import audit_rows, call, deliver, outbox, principal, register

OWNER, MANAGER, NGO, STRANGER = "dgme", "iom", "croix-rouge", "ame"
PLAN_TEXT = "Ouvrir une boutique de couture à Gao avec Mariam"


def caller(org: str, org_type: str, scopes: str = "followup:read followup:write") -> Principal:
    return replace(principal(org, scopes), org_type=org_type)


DGME, IOM, CR, AME = (caller(OWNER, "STATE"), caller(MANAGER, "INTERNATIONAL"), caller(NGO, "NGO"),
                      caller(STRANGER, "NGO"))


@pytest.fixture
async def case_id(followup_pool: AsyncConnectionPool) -> str:
    """DGME's case; consent covers IOM for referral and follow-up (nobody else)."""
    case_id = str(uuid.uuid4())
    arrival = ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.BAMAKO_AIRPORT, arrival_date=date(2026, 11, 1),
        destination_region="07", is_child=False, vulnerabilities=[Vulnerability.EX_DETAINEE], consent_given=True,
        consent_recipient_org_ids=[MANAGER], consent_purposes=[Purpose.REFERRAL, Purpose.FOLLOW_UP])
    event = await deliver(followup_pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, arrival, case_id)
    async with followup_pool.connection() as conn, conn.transaction():  # a redelivery changes nothing
        await handlers.on_arrival_registered(conn, event)
    return case_id


async def ask(pool: AsyncConnectionPool, who: Any, endpoint: str, **payload: Any) -> Any:
    return await call(FOLLOWUP, endpoint, pool, who, payload)


async def refused(pool: AsyncConnectionPool, who: Any, endpoint: str, **payload: Any) -> tuple[str, str | None]:
    with pytest.raises(SeginError) as caught:
        await ask(pool, who, endpoint, **payload)
    return caught.value.code, caught.value.field


def plan(*, action_id: str | None = None, status: str = "PLANNED") -> list[dict[str, Any]]:
    return [{"dimension": "ECONOMIC", "description": PLAN_TEXT, "actions": [
                {"description": "Formation en gestion", "target_date": "2026-12-15", "status": status,
                 **({"id": action_id} if action_id else {})}]},
            {"dimension": "PSYCHOSOCIAL", "description": "Soutien psychosocial", "actions": []}]


async def test_a_new_case_is_managed_by_its_owner_and_its_plan_is_due_a_month_after_arrival(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    seen = await ask(followup_pool, DGME, "get_case", case_id=case_id)
    assert (seen["manager_org_id"], seen["status"], seen["plan"], seen["plan_due_on"]) == (OWNER, "OPEN", None,
                                                                                           "2026-12-01")
    assert [(a["from_org_id"], a["to_org_id"], a["reason_code"]) for a in seen["assignments"]] == [
        (None, OWNER, "REGISTERED")]
    ref = CaseRef(case_id=case_id)
    before = await handlers.get_case(followup_pool, DGME, ref, clock=lambda: datetime(2026, 12, 1, 23, tzinfo=UTC))
    after = await handlers.get_case(followup_pool, DGME, ref, clock=lambda: datetime(2026, 12, 2, 0, tzinfo=UTC))
    assert (before.plan_overdue, after.plan_overdue) == (False, True)


async def test_a_hand_over_needs_a_basis_covering_the_new_organisation_for_follow_up(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    assert await refused(followup_pool, DGME, "assign", case_id=case_id, organization_id="unhcr",
                         organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT") == ("NO_LEGAL_BASIS",
                                                                                              "organizationId")
    assert await outbox(followup_pool, "followup", case_id) == []  # a refusal writes nothing but its audit record
    assert (await audit_rows(followup_pool, "followup"))[-1]["outcome"] == "denied"
    assert await refused(followup_pool, AME, "assign", case_id=case_id, organization_id=MANAGER,
                         reason="SPECIALISED_SUPPORT") == ("NOT_FOUND", "caseId")
    missing = str(uuid.uuid4())
    assert await refused(followup_pool, DGME, "assign", case_id=missing, organization_id=MANAGER,
                         reason="SPECIALISED_SUPPORT") == ("NOT_FOUND", "caseId")


async def test_a_hand_over_moves_the_follow_up_and_is_announced_without_a_name(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    seen = await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
                     organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    assert seen["manager_org_id"] == MANAGER and seen["version"] == 1
    assert seen["assignments"][-1] | {"assigned_at": None} == {
        "from_org_id": OWNER, "to_org_id": MANAGER, "reason_code": "SPECIALISED_SUPPORT", "legal_basis": "CONSENT",
        "assigned_at": None, "assigned_by_org_id": OWNER}
    [event] = await outbox(followup_pool, "followup", case_id)
    assert event["type"] == CASE_ASSIGNED.event_type
    assert event["data"] == {"case_id": case_id, "owner_org_id": OWNER, "from_org_id": OWNER, "to_org_id": MANAGER,
                             "reason_code": "SPECIALISED_SUPPORT", "legal_basis": "CONSENT",
                             "assigned_by_org_id": OWNER, "version": 1}
    # The owner keeps seeing it, the new manager sees it, nobody else does.
    assert (await ask(followup_pool, IOM, "get_case", case_id=case_id))["manager_org_id"] == MANAGER
    assert (await ask(followup_pool, DGME, "get_case", case_id=case_id))["manager_org_id"] == MANAGER
    assert await refused(followup_pool, AME, "get_case", case_id=case_id) == ("NOT_FOUND", "caseId")
    # The owner, no longer managing, cannot change the follow-up.
    assert await refused(followup_pool, DGME, "save_plan", case_id=case_id, version=1, goals=plan(),
                         idempotency_key="dgme-plan-1") == ("FORBIDDEN", "caseId")


async def test_the_manager_saves_a_versioned_idempotent_plan_then_closes_and_reopens(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
              organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    missing = await ask(followup_pool, IOM, "plans_missing", first=10)
    assert [n["case_id"] for n in missing["nodes"]] == [case_id]
    assert (await ask(followup_pool, DGME, "plans_missing", first=10))["nodes"] == []  # no totals, nobody else's

    assert await refused(followup_pool, IOM, "save_plan", case_id=case_id, version=0, goals=plan(),
                         idempotency_key="iom-plan-0001") == ("CONFLICT", "version")
    saved = await ask(followup_pool, IOM, "save_plan", case_id=case_id, version=1, goals=plan(),
                      idempotency_key="iom-plan-0001")
    again = await ask(followup_pool, IOM, "save_plan", case_id=case_id, version=1, goals=plan(),
                      idempotency_key="iom-plan-0001")
    assert saved["version"] == again["version"] == 2  # the retry saved nothing more
    assert await refused(followup_pool, IOM, "save_plan", case_id=case_id, version=1, goals=plan(status="DONE"),
                         idempotency_key="iom-plan-0001") == ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    assert [g["dimension"] for g in saved["plan"]["goals"]] == ["ECONOMIC", "PSYCHOSOCIAL"]
    action = saved["plan"]["goals"][0]["actions"][0]
    assert (await ask(followup_pool, IOM, "plans_missing", first=10))["nodes"] == []

    # An action keeps its id across saves; an unknown id is refused naming it.
    resaved = await ask(followup_pool, IOM, "save_plan", case_id=case_id, version=2,
                        goals=plan(action_id=action["id"]), idempotency_key="iom-plan-0002")
    assert resaved["plan"]["goals"][0]["actions"][0]["id"] == action["id"]
    assert await refused(followup_pool, IOM, "save_plan", case_id=case_id, version=3,
                         goals=plan(action_id=str(uuid.uuid4())), idempotency_key="iom-plan-0003") == (
        "BAD_USER_INPUT", "goals.0.actions.0.id")

    moved = await ask(followup_pool, IOM, "update_action", case_id=case_id, action_id=action["id"], version=3,
                      status="IN_PROGRESS")
    assert moved["plan"]["goals"][0]["actions"][0]["status"] == "IN_PROGRESS" and moved["version"] == 4
    assert await refused(followup_pool, IOM, "update_action", case_id=case_id, action_id=action["id"], version=3,
                         status="DONE") == ("CONFLICT", "version")
    assert await refused(followup_pool, IOM, "update_action", case_id=case_id, action_id=str(uuid.uuid4()),
                         version=4, status="DONE") == ("NOT_FOUND", "actionId")

    closed = await ask(followup_pool, IOM, "close", case_id=case_id, reason="RE_MIGRATED", version=4)
    assert (closed["status"], closed["closure_reason"]) == ("CLOSED", "RE_MIGRATED")
    assert closed["plan"]["goals"][0]["actions"][0]["status"] == "CANCELLED"  # closing closed the open action
    assert await refused(followup_pool, IOM, "update_action", case_id=case_id, action_id=action["id"], version=5,
                         status="DONE") == ("CASE_CLOSED", "caseId")
    assert await refused(followup_pool, IOM, "close", case_id=case_id, reason="DECEASED", version=5) == (
        "INVALID_TRANSITION", "caseId")
    reopened = await ask(followup_pool, IOM, "reopen", case_id=case_id, reason="CONTACT_RESUMED", version=5)
    assert (reopened["status"], reopened["closure_reason"], reopened["version"]) == ("OPEN", None, 6)

    events = await outbox(followup_pool, "followup", case_id)
    assert [e["type"].split(".")[3] for e in events] == ["case_assigned", "plan_saved", "plan_saved",
                                                         "plan_action_updated", "case_closed", "case_reopened"]
    assert events[1]["data"] | {"linked_referral_ids": []} == {
        "case_id": case_id, "manager_org_id": MANAGER, "version": 2, "dimensions": ["ECONOMIC", "PSYCHOSOCIAL"],
        "goal_count": 2, "action_count": 1, "linked_referral_ids": []}
    assert events[4]["data"]["closed_action_ids"] == [action["id"]]
    text = json.dumps(events)
    assert "couture" not in text and "Formation" not in text and "Mariam" not in text  # no plan text, no name
    entries = [r for r in await audit_rows(followup_pool, "followup") if r["org_id"] == MANAGER]
    assert "followup.save_plan" in {e["operation"] for e in entries}
    assert "couture" not in json.dumps([dict(e) for e in entries], default=str)


async def test_handing_over_again_ends_the_previous_managers_view_and_withdrawing_consent_ends_the_managers(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
              organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    # Consent now covers NGOs (by type) for follow-up too: IOM hands the case to the Red Cross.
    await deliver(followup_pool, handlers.on_sharing_changed, SHARING_CHANGED, SharingChangedV1(
        case_id=case_id, owner_org_id=OWNER, change="CONSENT_RECORDED", coverage=[SharingCoverage(
            purpose=Purpose.FOLLOW_UP, recipients=[SharingRecipient(org_id=MANAGER, legal_basis=LegalBasis.CONSENT),
                                                   SharingRecipient(org_type="NGO", legal_basis=LegalBasis.CONSENT)])]),
        case_id)
    handed = await ask(followup_pool, IOM, "assign", case_id=case_id, organization_id=NGO, organization_type="NGO",
                       reason="CLOSER_TO_HOME")
    assert handed["manager_org_id"] == NGO and handed["plan"] is None  # IOM no longer sees the plan
    assert await refused(followup_pool, IOM, "get_case", case_id=case_id) == ("NOT_FOUND", "caseId")
    assert (await ask(followup_pool, CR, "get_case", case_id=case_id))["manager_org_id"] == NGO
    # The steward may hand any case over (followup:manage), without seeing its plan.
    steward = caller("segin-steward", "STATE", "followup:write followup:manage")
    back = await ask(followup_pool, steward, "assign", case_id=case_id, organization_id=OWNER,
                     organization_type="STATE", reason="MANAGER_LEFT")
    assert back["manager_org_id"] == OWNER and back["assignments"][-1]["legal_basis"] is None
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=NGO, organization_type="NGO",
              reason="CLOSER_TO_HOME")
    # Consent withdrawn: the coverage for follow-up is empty, and the manager sees nothing more.
    await deliver(followup_pool, handlers.on_sharing_changed, SHARING_CHANGED, SharingChangedV1(
        case_id=case_id, owner_org_id=OWNER, change="CONSENT_WITHDRAWN",
        coverage=[SharingCoverage(purpose=Purpose.FOLLOW_UP, recipients=[])]), case_id)
    assert await refused(followup_pool, CR, "get_case", case_id=case_id) == ("NOT_FOUND", "caseId")
    assert await refused(followup_pool, CR, "save_plan", case_id=case_id, version=4, goals=plan(),
                         idempotency_key="cr-plan-0001") == ("NOT_FOUND", "caseId")


async def test_the_steward_export_holds_the_plan_and_hand_overs(followup_pool: AsyncConnectionPool,
                                                                case_id: str) -> None:
    await ask(followup_pool, DGME, "save_plan", case_id=case_id, version=0, goals=plan(),
              idempotency_key="dgme-plan-0001")
    [export] = await ask(followup_pool, principal("segin-steward", "audit:read"), "subject_access", case_id=case_id)
    assert export["plan"]["goals"][0]["description"] == PLAN_TEXT and export["assignments"]
    assert await ask(followup_pool, principal("segin-steward", "audit:read"), "subject_access",
                     case_id=str(uuid.uuid4())) == []
    assert await refused(followup_pool, DGME, "subject_access", case_id=case_id) == ("INSUFFICIENT_SCOPE", None)


async def test_intake_opens_the_case_to_the_manager_once_per_hand_over_and_never_goes_back(
        intake_pool: AsyncConnectionPool) -> None:
    """The management projection: a redelivered hand-over applies once; an older one never overwrites a newer one."""
    case = await register(intake_pool, OWNER, consent={"given": True, "recipient_org_ids": [MANAGER, NGO],
                                                       "purposes": ["FOLLOW_UP"]})
    case_id = case["id"]
    reader = {org: caller(org, kind, "cases:read") for org, kind in ((MANAGER, "INTERNATIONAL"), (NGO, "NGO"))}

    async def reads(org: str) -> bool:
        try:
            seen = await call(INTAKE, "get_case", intake_pool, reader[org], {"case_id": case_id})
        except SeginError as exc:
            assert exc.code == "NOT_FOUND"
            return False
        assert seen["access"] == {"purpose": "FOLLOW_UP", "legal_basis": "CONSENT"}
        return True

    assert not await reads(MANAGER)

    def hand_over(to: str, version: int) -> CaseAssignedV1:
        return CaseAssignedV1(case_id=case_id, owner_org_id=OWNER, from_org_id=OWNER, to_org_id=to,
                              reason_code="SPECIALISED_SUPPORT", legal_basis=LegalBasis.CONSENT,
                              assigned_by_org_id=OWNER, version=version)

    first = await deliver(intake_pool, intake_handlers.on_case_assigned, CASE_ASSIGNED, hand_over(MANAGER, 1), case_id)
    assert await reads(MANAGER)
    await deliver(intake_pool, intake_handlers.on_case_assigned, CASE_ASSIGNED, hand_over(NGO, 2), case_id)
    assert (await reads(NGO), await reads(MANAGER)) == (True, False)  # the previous manager lost its view
    async with intake_pool.connection() as conn, conn.transaction():  # the first hand-over, delivered again late
        await intake_handlers.on_case_assigned(conn, first)
    assert (await reads(NGO), await reads(MANAGER)) == (True, False)


# --- the case's free text behind its sensitive scopes (security review, finding 1) ---------------------


async def _gbv_case(pool: AsyncConnectionPool) -> str:
    """DGME's case of a GBV survivor; consent covers IOM and the Red Cross for follow-up."""
    case_id = str(uuid.uuid4())
    await deliver(pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.BAMAKO_AIRPORT, arrival_date=date(2026, 11, 1),
        destination_region="07", is_child=False, vulnerabilities=[Vulnerability.GBV_SURVIVOR], consent_given=True,
        consent_recipient_org_ids=[MANAGER, NGO], consent_purposes=[Purpose.FOLLOW_UP]), case_id)
    return case_id


async def test_plan_text_on_a_sensitive_case_needs_its_scopes_the_structure_does_not(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await _gbv_case(followup_pool)
    iom_gbv = caller(MANAGER, "INTERNATIONAL", "followup:read followup:write sensitive:gbv")
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
              organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    saved = await ask(followup_pool, iom_gbv, "save_plan", case_id=case_id, version=1, goals=plan(),
                      idempotency_key="iom-gbv-plan-1")
    assert saved["plan"]["goals"][0]["description"] == PLAN_TEXT  # the writer holds sensitive:gbv
    await ask(followup_pool, iom_gbv, "assign", case_id=case_id, organization_id=NGO, organization_type="NGO",
              reason="PSYCHOSOCIAL_SUPPORT")
    for reader in (CR, DGME):  # the new manager, the owner: neither holds sensitive:gbv
        seen = (await ask(followup_pool, reader, "get_case", case_id=case_id))["plan"]
        assert [(g["dimension"], g["description"], g["text_restricted"]) for g in seen["goals"]] == [
            ("ECONOMIC", None, "sensitive:gbv"), ("PSYCHOSOCIAL", None, "sensitive:gbv")]
        [action] = seen["goals"][0]["actions"]
        assert (action["description"], action["text_restricted"], action["status"], action["target_date"]) == (
            None, "sensitive:gbv", "PLANNED", "2026-12-15")
        assert PLAN_TEXT not in json.dumps(seen, ensure_ascii=False)
    # The work goes on: the manager moves an action without reading its text.
    moved = await ask(followup_pool, CR, "update_action", case_id=case_id, action_id=action["id"],
                      status="IN_PROGRESS", version=3)
    assert moved["plan"]["goals"][0]["actions"][0]["status"] == "IN_PROGRESS"
    # … and changes the plan by ids, leaving the text it cannot read out: the text is kept, not overwritten.
    [economic, psychosocial] = moved["plan"]["goals"]
    resaved = await ask(followup_pool, CR, "save_plan", case_id=case_id, version=moved["version"], goals=[
        {"id": economic["id"], "dimension": "ECONOMIC", "actions": [
            {"id": action["id"], "target_date": "2026-12-20", "status": "IN_PROGRESS"},
            {"description": "Accompagnement au marché", "target_date": "2027-01-10"}]},
        {"id": psychosocial["id"], "dimension": "PSYCHOSOCIAL", "actions": []}],
        idempotency_key="cr-gbv-plan-2")
    assert [a["target_date"] for a in resaved["plan"]["goals"][0]["actions"]] == ["2026-12-20", "2027-01-10"]
    cr_gbv = caller(NGO, "NGO", "followup:read followup:write sensitive:gbv")
    whole = (await ask(followup_pool, cr_gbv, "get_case", case_id=case_id))["plan"]
    assert [g["description"] for g in whole["goals"]] == [PLAN_TEXT, "Soutien psychosocial"]
    assert [a["description"] for a in whole["goals"][0]["actions"]] == ["Formation en gestion",
                                                                         "Accompagnement au marché"]
    assert whole["goals"][0]["id"] == economic["id"]
    reads = [r["field_categories"] for r in await audit_rows(followup_pool, "followup")
             if r["operation"] == "followup.read"]
    assert reads[-3:] == [["follow_up", "plan_structure"], ["follow_up", "plan_structure"],
                          ["follow_up", "gbv", "plan"]]
    # The person's own export holds the text.
    [export] = await ask(followup_pool, principal("segin-steward", "audit:read"), "subject_access", case_id=case_id)
    assert export["plan"]["goals"][0]["description"] == PLAN_TEXT
    assert export["plan"]["goals"][0]["text_restricted"] is None
    assert "gbv" in (await audit_rows(followup_pool, "followup"))[-1]["field_categories"]


async def test_plan_text_on_a_case_without_sensitive_flags_is_shown_to_owner_and_manager(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    await ask(followup_pool, DGME, "save_plan", case_id=case_id, version=0, goals=plan(),
              idempotency_key="dgme-plain-plan")
    seen = await ask(followup_pool, DGME, "get_case", case_id=case_id)
    assert (seen["plan"]["goals"][0]["description"], seen["plan"]["goals"][0]["text_restricted"]) == (PLAN_TEXT, None)
    read = [r for r in await audit_rows(followup_pool, "followup") if r["operation"] == "followup.read"][-1]
    assert read["field_categories"] == ["follow_up", "plan"]


# --- reasons are closed lists (security review, finding 2) ---------------------------------------------


async def test_a_reason_outside_the_list_is_refused_and_announces_nothing_while_old_reasons_still_read(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    assert (await refused(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
                          organization_type="INTERNATIONAL", reason="AMINATA_COULIBALY_VIH_POSITIVE"))[0] == (
        "BAD_USER_INPUT")
    assert await outbox(followup_pool, "followup", case_id) == []
    # A hand-over stored before the list keeps its code, and the follow-up still reads.
    async with followup_pool.connection() as conn:
        await conn.execute("update followup.assignments set reason_code = 'OLD_FREE_CODE' where case_id = %s",
                           (case_id,))
    seen = await ask(followup_pool, DGME, "get_case", case_id=case_id)
    assert [a["reason_code"] for a in seen["assignments"]] == ["OLD_FREE_CODE"]
    await ask(followup_pool, DGME, "close", case_id=case_id, reason="RE_MIGRATED", version=0)
    assert (await refused(followup_pool, DGME, "reopen", case_id=case_id, reason="MARIAM_TRAORE", version=1))[0] == (
        "BAD_USER_INPUT")
    await ask(followup_pool, DGME, "reopen", case_id=case_id, reason="RETURNED_AGAIN", version=1)
    reopened = (await outbox(followup_pool, "followup", case_id))[-1]
    assert reopened["data"]["reason_code"] == "RETURNED_AGAIN"


# --- the owner takes the case back once no basis covers the manager (security review, finding 3) -------


async def test_after_withdrawal_the_owner_takes_the_case_back_audited_and_announced(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
              organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    # While consent covers IOM, the owner may not take the case from it.
    assert await refused(followup_pool, DGME, "assign", case_id=case_id, organization_id=OWNER,
                         organization_type="STATE", reason="RETURN_TO_OWNER") == ("FORBIDDEN", "caseId")
    await deliver(followup_pool, handlers.on_sharing_changed, SHARING_CHANGED, SharingChangedV1(
        case_id=case_id, owner_org_id=OWNER, change="CONSENT_WITHDRAWN",
        coverage=[SharingCoverage(purpose=Purpose.FOLLOW_UP, recipients=[])]), case_id)
    assert await refused(followup_pool, IOM, "assign", case_id=case_id, organization_id=OWNER,
                         organization_type="STATE", reason="RETURN_TO_OWNER") == ("NOT_FOUND", "caseId")
    # Nobody else is covered: the owner can only take it back, not hand it on.
    assert await refused(followup_pool, DGME, "assign", case_id=case_id, organization_id=NGO,
                         organization_type="NGO", reason="CLOSER_TO_HOME") == ("NO_LEGAL_BASIS", "organizationId")
    back = await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=OWNER,
                     organization_type="STATE", reason="CONSENT_WITHDRAWN")
    assert back["manager_org_id"] == OWNER and back["assignments"][-1] | {"assigned_at": None} == {
        "from_org_id": MANAGER, "to_org_id": OWNER, "reason_code": "CONSENT_WITHDRAWN", "legal_basis": None,
        "assigned_at": None, "assigned_by_org_id": OWNER}
    event = (await outbox(followup_pool, "followup", case_id))[-1]
    assert (event["type"], event["data"]["from_org_id"], event["data"]["to_org_id"], event["data"]["reason_code"]) == (
        CASE_ASSIGNED.event_type, MANAGER, OWNER, "CONSENT_WITHDRAWN")
    entry = (await audit_rows(followup_pool, "followup"))[-1]
    assert (entry["operation"], entry["org_id"], entry["outcome"], entry["purpose"]) == (
        "followup.assign", OWNER, "allowed", "case_management")
    # The owner manages its case again: it writes the plan.
    saved = await ask(followup_pool, DGME, "save_plan", case_id=case_id, version=back["version"], goals=plan(),
                      idempotency_key="dgme-after-withdrawal")
    assert saved["plan"]["goals"][0]["description"] == PLAN_TEXT
