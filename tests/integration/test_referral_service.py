"""Referral's endpoints at the service level: routing writes referrals and their events, and each
organisation sees (and may change) only the referrals that exist for it (real PostgreSQL, fresh
database, no gateway, no NATS)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, SHARING_CHANGED
from contracts.events import ArrivalRegisteredV1, SharingChangedV1, SharingCoverage, SharingRecipient
from contracts.reference import ArrivalPoint, LegalBasis, Purpose, Vulnerability
from kernel.errors import SeginError
from services.referral import handlers, store
from services.referral.app import APP as REFERRAL
from tests.integration.services import CountingPool, audit_rows, call, deliver, outbox, principal

OWNER, SHELTER, CLINIC = "dgme", "amsode", "csref-gao"


@pytest.fixture
async def routed(referral_pool: AsyncConnectionPool) -> dict[str, Any]:
    """A case screened as a trafficking victim with medical needs, consent given to the shelter only:
    the shelter's referral is live, the clinic's (health: sensitive) waits for consent."""
    async with referral_pool.connection() as conn, conn.transaction():
        await store.upsert_directory_service(conn, SHELTER, "Shelter", "NGO", "COUNTER_TRAFFICKING", [])
        await store.upsert_directory_service(conn, CLINIC, "Clinic", "STATE", "HEALTH_CARE", [])
    case_id = str(uuid.uuid4())
    arrival = ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.GAO, arrival_date=date(2026, 10, 2),
        destination_region="07", is_child=False,
        vulnerabilities=[Vulnerability.TRAFFICKING_VICTIM, Vulnerability.MEDICAL_NEEDS],
        consent_given=True, consent_recipient_org_ids=[SHELTER])
    await deliver(referral_pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, arrival, case_id)
    return {"case_id": case_id}


def ids_by_recipient(referrals: list[dict[str, Any]]) -> dict[str, str]:
    return {r["to_org_id"]: r["id"] for r in referrals}


async def test_routing_writes_one_referral_event_each_and_records_the_sharing(
        referral_pool: AsyncConnectionPool, routed: dict[str, Any]) -> None:
    steward = principal("segin", "audit:read")
    everything = await call(REFERRAL, "subject_access", referral_pool, steward, {"case_id": routed["case_id"]})
    # The immediate package's needs have no provider in this directory: unmet (test_routing_service.py).
    referrals = [r for r in everything if r["status"] != "UNASSIGNED"]
    assert {r["service_category"] for r in everything if r["status"] == "UNASSIGNED"} == {
        "RECEPTION", "FOOD", "NON_FOOD_ITEMS", "CASH_ALLOWANCE"}
    statuses = {r["to_org_id"]: r["status"] for r in referrals}
    assert statuses == {SHELTER: "PENDING", CLINIC: "AWAITING_CONSENT"}
    for referral in referrals:
        [event] = await outbox(referral_pool, "referral", referral["id"])
        assert event["type"] == REFERRAL_CREATED.event_type
        assert (event["data"]["to_org_id"], event["data"]["status"]) == (referral["to_org_id"], referral["status"])
    entries = [r for r in await audit_rows(referral_pool, "referral") if r["operation"] == "referral.create"]
    # One entry per basis the platform shared the case on; none yet for the referral awaiting consent.
    assert [(e["actor"], e["purpose"], e["legal_basis"]) for e in entries] == [
        ("service:referral", "referral", None), ("service:referral", "referral", "CONSENT")]


async def test_who_sees_which_referral_of_a_case(referral_pool: AsyncConnectionPool, routed: dict[str, Any]) -> None:
    async def seen(org: str, scopes: str) -> set[str]:
        found = await call(REFERRAL, "case_referrals", referral_pool, principal(org, scopes),
                           {"case_id": routed["case_id"]})
        return {r["to_org_id"] for r in found if r["status"] != "UNASSIGNED"}  # unmet needs: test_routing_service.py

    # The referring organisation sees a referral to a sensitive service only with that category's scope.
    assert await seen(OWNER, "referrals:read") == set()
    assert await seen(OWNER, "referrals:read sensitive:trafficking") == {SHELTER}
    assert await seen(OWNER, "referrals:read sensitive:trafficking sensitive:health") == {SHELTER, CLINIC}
    # The recipient sees its own once live, whatever its scopes; one awaiting consent does not exist for it.
    assert await seen(SHELTER, "referrals:read") == {SHELTER}
    assert await seen(CLINIC, "referrals:read sensitive:health") == set()
    assert await seen("uninvolved", "referrals:read sensitive:trafficking sensitive:health") == set()
    incoming = await call(REFERRAL, "incoming", referral_pool, principal(CLINIC, "referrals:read"), {})
    assert incoming == {"nodes": [], "page_info": {"has_next_page": False, "end_cursor": None}}


async def test_transitions_follow_who_may_act_and_announce_each_change(
        referral_pool: AsyncConnectionPool, routed: dict[str, Any]) -> None:
    incoming = await call(REFERRAL, "incoming", referral_pool, principal(SHELTER, "referrals:read"), {})
    [referral_id] = [n["id"] for n in incoming["nodes"]]
    with pytest.raises(SeginError) as refused:
        await call(REFERRAL, "accept", referral_pool, principal(OWNER, "referrals:write sensitive:trafficking"),
                   {"referral_id": referral_id})
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(SeginError) as absent:
        await call(REFERRAL, "revoke", referral_pool, principal("uninvolved", "referrals:write"),
                   {"referral_id": referral_id})
    assert (absent.value.code, absent.value.message) == ("NOT_FOUND", "No such referral.")
    accepted = await call(REFERRAL, "accept", referral_pool, principal(SHELTER, "referrals:write"),
                          {"referral_id": referral_id})
    assert accepted["status"] == "ACCEPTED" and accepted["status_reason"] == "ACCEPT"
    created, changed = await outbox(referral_pool, "referral", referral_id)
    assert changed["type"] == REFERRAL_STATUS_CHANGED.event_type
    assert (changed["data"]["old_status"], changed["data"]["new_status"]) == ("PENDING", "ACCEPTED")
    denied = [(r["operation"], r["org_id"]) for r in await audit_rows(referral_pool, "referral")
              if r["outcome"] == "denied"]
    assert denied == [("referral.accept", OWNER), ("referral.revoke", "uninvolved")]


async def test_a_rejection_needs_a_reason_and_changes_nothing_without_one(
        referral_pool: AsyncConnectionPool, routed: dict[str, Any]) -> None:
    incoming = await call(REFERRAL, "incoming", referral_pool, principal(SHELTER, "referrals:read"), {})
    referral_id = incoming["nodes"][0]["id"]
    with pytest.raises(SeginError) as refused:
        await call(REFERRAL, "reject", referral_pool, principal(SHELTER, "referrals:write"),
                   {"referral_id": referral_id})
    assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", "reason")
    counting = CountingPool(referral_pool)
    with pytest.raises(SeginError) as bad:
        await call(REFERRAL, "reject", counting, principal(SHELTER, "referrals:write"),
                   {"referral_id": referral_id, "reason": "not a code"})
    assert (bad.value.code, bad.value.field, counting.statements) == ("BAD_USER_INPUT", "reason", [])
    assert len(await outbox(referral_pool, "referral", referral_id)) == 1


async def test_consent_recorded_later_makes_the_waiting_referral_live(
        referral_pool: AsyncConnectionPool, routed: dict[str, Any]) -> None:
    coverage = [SharingCoverage(purpose=Purpose.REFERRAL, recipients=[
        SharingRecipient(org_id=SHELTER, legal_basis=LegalBasis.CONSENT),
        SharingRecipient(org_id=CLINIC, legal_basis=LegalBasis.CONSENT)])]
    change = SharingChangedV1(case_id=routed["case_id"], owner_org_id=OWNER, change="CONSENT_RECORDED",
                              coverage=coverage)
    await deliver(referral_pool, handlers.on_sharing_changed, SHARING_CHANGED, change, routed["case_id"])
    incoming = await call(REFERRAL, "incoming", referral_pool, principal(CLINIC, "referrals:read"), {})
    [live] = incoming["nodes"]
    assert (live["status"], live["legal_basis"]) == ("PENDING", "CONSENT")
    _, changed = await outbox(referral_pool, "referral", live["id"])
    assert (changed["data"]["old_status"], changed["data"]["new_status"]) == ("AWAITING_CONSENT", "PENDING")


async def test_a_missing_scope_is_refused_before_any_transaction(referral_pool: AsyncConnectionPool) -> None:
    counting = CountingPool(referral_pool)
    with pytest.raises(SeginError) as refused:
        await call(REFERRAL, "accept", counting, principal(SHELTER, "referrals:read"), {"referral_id": "x"})
    assert refused.value.code == "INSUFFICIENT_SCOPE" and counting.statements == []
    [entry] = await audit_rows(referral_pool, "referral")
    assert (entry["operation"], entry["outcome"]) == ("referral.accept", "denied")


async def test_the_referral_service_remembers_each_case_routing_facts_and_referral_recipients(
    referral_pool: AsyncConnectionPool,
) -> None:
    """Manual referrals and re-routing need the case's facts and current sharing without asking intake."""
    case_id = str(uuid.uuid4())
    event = ArrivalRegisteredV1(
        case_id=case_id, owner_org_id="ame", arrival_point="GAO", arrival_date="2026-11-30",
        destination_region="07", is_child=False, vulnerabilities=["EX_DETAINEE"], consent_given=True,
        consent_recipient_org_ids=["iom"], consent_recipient_org_types=["INTERNATIONAL"], sex="FEMALE",
        age_years=31)
    await deliver(referral_pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, event)
    async with referral_pool.connection() as conn:
        row = await store.get_case(conn, case_id)
    assert row is not None
    assert (row["owner_org_id"], row["destination_region"], row["sex"], row["age_years"]) == ("ame", "07", "FEMALE", 31)
    assert [(r.org_id, r.org_type, r.legal_basis) for r in store.case_recipients(row)] == [
        ("iom", None, "CONSENT"), (None, "INTERNATIONAL", "CONSENT")]
