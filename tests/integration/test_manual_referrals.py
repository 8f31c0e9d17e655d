"""Referrals people make, their outcomes, and the work views, at the service level (real PostgreSQL,
fresh database, no gateway, no NATS).

The scene: AME registered a woman with medical needs who consented to sharing with IOM and the Gao
health centre for referral. Routing referred her to the health centre (health: a sensitive service).
An AME case worker now refers her to IOM's business start-up service by hand.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, SHARING_CHANGED
from contracts.commands import OverdueCountsRequest, ReferCase, ReferralAction, ReferralListRequest
from contracts.events import (
    ArrivalRegisteredV1,
    ReferralStatusChangedV1,
    SharingChangedV1,
    SharingCoverage,
    SharingRecipient,
)
from contracts.reference import ArrivalPoint, LegalBasis, Purpose, Vulnerability
from kernel.errors import SeginError
from kernel.tokens import Principal
from services.notifications import handlers as notification_handlers
from services.notifications.app import APP as NOTIFICATIONS
from services.referral import handlers, manual, manual_domain, manual_store, store, worklists
from services.referral.app import APP as REFERRAL
from tests.integration.services import CountingPool, audit_rows, call, deliver, outbox, principal

OWNER, IOM, HEALTH, RED_CROSS, COORDINATOR = "ame", "iom", "csref-gao", "croix-rouge", "dgme"
NOTE = "Mme D. souhaite ouvrir un atelier de couture à Gao ; joignable par son frère Oumar."
WRITE = "referrals:write referrals:read"


def worker(org: str = OWNER, scopes: str = WRITE + " sensitive:health", subject: str | None = None) -> Principal:
    """A case worker of ``org`` (a person: their token's subject is theirs, not the client's)."""
    base = principal(org, scopes)
    return Principal(subject=subject or f"person:{org}-worker", org_id=org, client_id=base.client_id,
                     scopes=base.scopes, jti=base.jti, token="", org_type="INTERNATIONAL" if org == IOM else "NGO")


@pytest.fixture
async def scene(referral_pool: AsyncConnectionPool) -> dict[str, Any]:
    async with referral_pool.connection() as conn, conn.transaction():
        for org, name, kind, category in (
                (IOM, "OIM", "INTERNATIONAL", "BUSINESS_START_UP"), (HEALTH, "CSRef Gao", "SERVICE_PROVIDER",
                                                                     "HEALTH_CARE"),
                (RED_CROSS, "Croix-Rouge", "NGO", "FAMILY_TRACING"), (RED_CROSS, "Croix-Rouge", "NGO", "LEGAL_AID"),
                (OWNER, "AME", "NGO", "SHELTER")):
            await store.upsert_directory_service(conn, org, name, kind, category, [])
        await conn.execute("update referral.services set expected_duration = interval '30 days'"
                           " where organization_id = %s and category = 'BUSINESS_START_UP'", (IOM,))
        await conn.execute("update referral.services set status = 'inactive' where category = 'LEGAL_AID'")
        cur = await conn.execute("select organization_id || ':' || category as k, id::text from referral.services")
        services = {r["k"]: r["id"] for r in await cur.fetchall()}
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.GAO, arrival_date=date(2026, 10, 2),
        destination_region="07", is_child=False, vulnerabilities=[Vulnerability.MEDICAL_NEEDS], consent_given=True,
        consent_recipient_org_ids=[IOM, HEALTH]), case_id)
    async with referral_pool.connection() as conn:
        # The reception package's needs no provider of this small directory covers: not this file's subject.
        await conn.execute("delete from referral.referrals where status = 'UNASSIGNED'")
    return {"case_id": case_id, "iom": services[f"{IOM}:BUSINESS_START_UP"],
            "health": services[f"{HEALTH}:HEALTH_CARE"], "tracing": services[f"{RED_CROSS}:FAMILY_TRACING"],
            "inactive": services[f"{RED_CROSS}:LEGAL_AID"], "own": services[f"{OWNER}:SHELTER"]}


def referral(scene: dict[str, Any], service: str = "iom", **overrides: Any) -> dict[str, Any]:
    return {"idempotency_key": str(uuid.uuid4()), "case_id": scene["case_id"], "service_id": scene[service],
            "reason_code": "LIVELIHOOD_SUPPORT", "priority": "NORMAL", "note": NOTE, **overrides}


async def refer(pool: AsyncConnectionPool, scene: dict[str, Any], caller: Principal | None = None,
                **overrides: Any) -> dict[str, Any]:
    return await call(REFERRAL, "refer", pool, caller or worker(), referral(scene, **overrides))


async def referral_count(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("select count(*) as n from referral.referrals")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def refused(coro: Any) -> SeginError:
    with pytest.raises(SeginError) as refusal:
        await coro
    return refusal.value


# --- referring ---------------------------------------------------------------------------------


async def test_a_case_worker_refers_a_case_their_organisation_owns(referral_pool: AsyncConnectionPool,
                                                                 scene: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    made = await refer(referral_pool, scene)
    assert (made["origin"], made["status"], made["legal_basis"], made["to_org_id"], made["from_org_id"]) == (
        "MANUAL", "PENDING", "CONSENT", IOM, OWNER)
    assert (made["made_by"], made["note"], made["service_id"], made["reason_code"]) == (
        "person:ame-worker", NOTE, scene["iom"], "LIVELIHOOD_SUPPORT")
    # NORMAL priority, no deadline given: seven days, from data (manual_domain.DUE_IN).
    due = datetime.fromisoformat(made["due_at"])
    assert before + timedelta(days=7) <= due <= datetime.now(UTC) + timedelta(days=7)
    # The recipient sees it, with the note, in its incoming work.
    [incoming] = (await call(REFERRAL, "incoming", referral_pool, worker(IOM), {}))["nodes"]
    assert (incoming["id"], incoming["note"], incoming["made_by"]) == (made["id"], NOTE, None)


async def test_the_note_never_enters_an_event_or_the_audit_trail(referral_pool: AsyncConnectionPool,
                                                                 scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    await call(REFERRAL, "incoming", referral_pool, worker(IOM), {})
    [created] = await outbox(referral_pool, "referral", made["id"])
    assert created["type"] == REFERRAL_CREATED.event_type
    assert (created["data"]["status"], created["data"]["reason_code"]) == ("PENDING", "LIVELIHOOD_SUPPORT")
    assert "couture" not in json.dumps(created) and "note" not in created["data"]
    rows = await audit_rows(referral_pool, "referral")
    assert "couture" not in str(rows)
    [entry] = [r for r in rows if r["operation"] == "referral.refer"]
    assert (entry["outcome"], entry["legal_basis"], entry["field_categories"], entry["actor"]) == (
        "allowed", "CONSENT", ["note", "referral"], "person:ame-worker")


async def test_a_recipient_holding_an_open_referral_may_refer_on_and_the_owner_sees_no_note(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    await refer(referral_pool, scene)  # IOM now holds an open referral on consent
    onward = await refer(referral_pool, scene, worker(IOM), service="tracing", reason_code="FAMILY_CONTACT")
    # No consent covers the Red Cross: it waits, and the Red Cross does not see it.
    assert (onward["from_org_id"], onward["status"], onward["legal_basis"]) == (IOM, "AWAITING_CONSENT", None)
    assert (await call(REFERRAL, "incoming", referral_pool, worker(RED_CROSS), {}))["nodes"] == []
    seen = await call(REFERRAL, "case_referrals", referral_pool, worker(OWNER), {"case_id": scene["case_id"]})
    [owner_view] = [r for r in seen if r["id"] == onward["id"]]
    assert (owner_view["note"], owner_view["made_by"]) == (None, None)


async def test_a_case_not_readable_answers_as_an_absent_one_with_the_same_statements(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    outsider = worker(RED_CROSS)

    async def statements(case_id: str) -> tuple[str, list[str]]:
        counting = CountingPool(referral_pool)
        refusal = await refused(call(REFERRAL, "refer", counting, outsider, referral(scene, case_id=case_id)))
        assert (refusal.code, refusal.field) == ("NOT_FOUND", "caseId")
        return refusal.message, counting.statements

    hidden, absent = await statements(scene["case_id"]), await statements(str(uuid.uuid4()))
    assert hidden == absent and len(hidden[1]) >= 4
    denied = [r for r in await audit_rows(referral_pool, "referral") if r["outcome"] == "denied"]
    assert [(r["operation"], r["org_id"]) for r in denied] == [("referral.refer", RED_CROSS)] * 2
    assert await referral_count(referral_pool) == 1  # the health referral routing made


async def test_a_recipient_whose_referral_was_revoked_may_no_longer_refer(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    await call(REFERRAL, "revoke", referral_pool, worker(OWNER), {"referral_id": made["id"]})
    refusal = await refused(refer(referral_pool, scene, worker(IOM), service="tracing"))
    assert (refusal.code, refusal.field) == ("NOT_FOUND", "caseId")


async def test_a_manual_referral_without_consent_waits_and_goes_live_when_consent_is_recorded(
        referral_pool: AsyncConnectionPool, notifications_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    waiting = await refer(referral_pool, scene, service="tracing", reason_code="FAMILY_CONTACT")
    assert (waiting["status"], waiting["legal_basis"]) == ("AWAITING_CONSENT", None)
    assert (await call(REFERRAL, "incoming", referral_pool, worker(RED_CROSS), {}))["nodes"] == []

    coverage = [SharingCoverage(purpose=Purpose.REFERRAL, recipients=[
        SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in (IOM, HEALTH, RED_CROSS)])]
    await deliver(referral_pool, handlers.on_sharing_changed, SHARING_CHANGED, SharingChangedV1(
        case_id=scene["case_id"], owner_org_id=OWNER, change="CONSENT_RECORDED", coverage=coverage), scene["case_id"])

    [live] = (await call(REFERRAL, "incoming", referral_pool, worker(RED_CROSS), {}))["nodes"]
    assert (live["id"], live["status"], live["legal_basis"], live["note"]) == (waiting["id"], "PENDING", "CONSENT",
                                                                               NOTE)
    _, changed = await outbox(referral_pool, "referral", waiting["id"])
    assert (changed["data"]["old_status"], changed["data"]["new_status"]) == ("AWAITING_CONSENT", "PENDING")
    # The recipient is told, as for a referral routing made.
    await deliver(notifications_pool, notification_handlers.on_referral_status_changed, REFERRAL_STATUS_CHANGED,
                  ReferralStatusChangedV1.model_validate(changed["data"]), waiting["id"])
    notices = await call(NOTIFICATIONS, "list", notifications_pool, principal(RED_CROSS, "notifications:read"), {})
    assert [(n["kind"], n["referral_id"]) for n in notices["nodes"]] == [("referral.received", waiting["id"])]


async def test_a_second_open_referral_to_the_same_service_is_a_duplicate(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    refusal = await refused(refer(referral_pool, scene))
    assert (refusal.code, refusal.field) == ("DUPLICATE", "serviceId")
    # Routing's health referral (made before services had ids) counts too.
    refusal = await refused(refer(referral_pool, scene, service="health"))
    assert (refusal.code, refusal.field) == ("DUPLICATE", "serviceId")
    assert await referral_count(referral_pool) == 2
    assert len(await outbox(referral_pool, "referral", made["id"])) == 1
    # Once the first is closed, a new referral to the service may be made.
    await call(REFERRAL, "reject", referral_pool, worker(IOM), {"referral_id": made["id"], "reason": "NO_CAPACITY"})
    again = await refer(referral_pool, scene)
    assert again["id"] != made["id"] and again["status"] == "PENDING"


async def test_a_referral_the_caller_may_not_see_is_not_revealed_as_a_duplicate(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    """AME referred the case to IOM; the health centre (holding its own referral of the case) may not
    see AME's referral, so its own referral to IOM is made, not refused as DUPLICATE."""
    first = await refer(referral_pool, scene)
    health = worker(HEALTH, WRITE)
    seen = await call(REFERRAL, "case_referrals", referral_pool, health, {"case_id": scene["case_id"]})
    assert first["id"] not in {r["id"] for r in seen}
    second = await refer(referral_pool, scene, health)
    assert (second["from_org_id"], second["to_org_id"], second["status"]) == (HEALTH, IOM, "PENDING")
    # Its own referral it sees: a third is a duplicate, for it and for the owner, who sees both.
    for caller in (health, worker()):
        refusal = await refused(refer(referral_pool, scene, caller))
        assert (refusal.code, refusal.field) == ("DUPLICATE", "serviceId")
    # The recipient sees both, each from its referring organisation: true information for it.
    incoming = (await call(REFERRAL, "incoming", referral_pool, worker(IOM), {}))["nodes"]
    assert sorted(n["from_org_id"] for n in incoming) == sorted([OWNER, HEALTH])


async def test_the_same_idempotency_key_returns_the_same_referral(referral_pool: AsyncConnectionPool,
                                                                  scene: dict[str, Any]) -> None:
    request = referral(scene)
    first = await call(REFERRAL, "refer", referral_pool, worker(), request)
    again = await call(REFERRAL, "refer", referral_pool, worker(), request)
    assert again == {**first, "overdue": again["overdue"]} and again["id"] == first["id"]
    assert len(await outbox(referral_pool, "referral", first["id"])) == 1
    changed = await refused(call(REFERRAL, "refer", referral_pool, worker(), {**request, "priority": "URGENT"}))
    assert (changed.code, changed.field) == ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    operations = [r["operation"] for r in await audit_rows(referral_pool, "referral") if r["org_id"] == OWNER]
    assert operations == ["referral.refer", "referral.read", "referral.refer"]
    assert await referral_count(referral_pool) == 2


@pytest.mark.parametrize("overrides,field", [
    ({"reason_code": "a reason in prose"}, "reason_code"),
    ({"priority": "SOON"}, "priority"),
    ({"note": "x" * 2001}, "note"),
    ({"note": " \u200b "}, "note"),
    ({"due_in_hours": 0}, "due_in_hours"),
    ({"due_at": "2030-01-01T00:00:00+00:00", "due_in_hours": 5}, "input"),
    ({"due_at": "2030-01-01T00:00:00"}, "due_at"),  # no time zone
    ({"idempotency_key": "short"}, "idempotency_key"),
    ({"case_id": "not-an-id"}, "caseId"),
    ({"service_id": "not-an-id"}, "serviceId"),
    ({"due_at": "2020-01-01T00:00:00+00:00"}, "due_at"),  # in the past: decided with the clock
])
async def test_bad_input_names_the_field_and_writes_nothing(referral_pool: AsyncConnectionPool, scene: dict[str, Any],
                                                            overrides: dict[str, Any], field: str) -> None:
    counting = CountingPool(referral_pool)
    refusal = await refused(call(REFERRAL, "refer", counting, worker(), referral(scene, **overrides)))
    assert (refusal.code, refusal.field, counting.statements) == ("BAD_USER_INPUT", field, [])
    assert await referral_count(referral_pool) == 1


@pytest.mark.parametrize("service,scopes,code", [
    ("health", WRITE, "INSUFFICIENT_SCOPE"),  # sensitive: not even a DUPLICATE answer reveals the health referral
    ("own", WRITE, "OWN_SERVICE"),
    ("inactive", WRITE, "NOT_FOUND"),
])
async def test_services_a_caller_may_not_refer_to(referral_pool: AsyncConnectionPool, scene: dict[str, Any],
                                                  service: str, scopes: str, code: str) -> None:
    for case_id in (scene["case_id"], str(uuid.uuid4())):  # the same answer whatever the case
        refusal = await refused(refer(referral_pool, scene, worker(OWNER, scopes), service=service, case_id=case_id))
        assert (refusal.code, refusal.field) == (code, "serviceId")
    assert await referral_count(referral_pool) == 1
    unknown = await refused(refer(referral_pool, scene, service_id=str(uuid.uuid4())))
    assert (unknown.code, unknown.field) == ("NOT_FOUND", "serviceId")


async def test_a_sensitive_service_awaiting_the_stewards_approval_cannot_be_referred_to(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.services set approved = false where id = %s", (scene["health"],))
    refusal = await refused(refer(referral_pool, scene, worker(OWNER, WRITE + " sensitive:health"), service="health"))
    assert (refusal.code, refusal.field) == ("NOT_FOUND", "serviceId")
    assert await referral_count(referral_pool) == 1


# --- outcomes ------------------------------------------------------------------------------------


async def test_the_recipient_records_the_outcome_and_the_referrer_sees_it(referral_pool: AsyncConnectionPool,
                                                                          scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    accepted = await call(REFERRAL, "accept", referral_pool, worker(IOM), {"referral_id": made["id"]})
    assert accepted["accepted_at"] is not None
    today = datetime.now(UTC).date().isoformat()
    done = await call(REFERRAL, "complete", referral_pool, worker(IOM), {"referral_id": made["id"], "outcome": {
        "service_delivered": True, "delivered_on": today, "outcome_code": "START_UP_KIT_PROVIDED"}})
    assert (done["status"], done["outcome_code"], done["outcome_delivered"], done["outcome_date"]) == (
        "DONE", "START_UP_KIT_PROVIDED", True, today)
    [outgoing] = [r for r in (await call(REFERRAL, "outgoing", referral_pool, worker(), {}))["nodes"]
                  if r["id"] == made["id"]]
    assert (outgoing["outcome_code"], outgoing["outcome_delivered"], outgoing["accepted_at"]) == (
        "START_UP_KIT_PROVIDED", True, accepted["accepted_at"])
    _, _, finished = await outbox(referral_pool, "referral", made["id"])
    assert (finished["data"]["new_status"], finished["data"]["outcome_code"], finished["data"]["outcome_delivered"]) \
        == ("DONE", "START_UP_KIT_PROVIDED", True)
    assert "couture" not in json.dumps(finished)


async def test_completing_without_an_outcome_still_works_for_earlier_clients(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    await call(REFERRAL, "accept", referral_pool, worker(IOM), {"referral_id": made["id"]})
    done = await call(REFERRAL, "complete", referral_pool, worker(IOM), {"referral_id": made["id"]})
    assert (done["status"], done["outcome_code"], done["outcome_delivered"]) == ("DONE", None, None)


@pytest.mark.parametrize("outcome,field", [
    ({"service_delivered": True, "outcome_code": "DONE_WELL"}, "outcome"),  # delivered: when?
    ({"service_delivered": False, "delivered_on": "2026-10-02", "outcome_code": "NOT_REACHED"}, "outcome"),
    ({"service_delivered": True, "delivered_on": "2026-10-02", "outcome_code": "done"}, "outcome.outcome_code"),
    ({"service_delivered": True, "delivered_on": "2999-01-01", "outcome_code": "DONE_WELL"}, "outcome.delivered_on"),
    ({"service_delivered": True, "delivered_on": "2020-01-01", "outcome_code": "DONE_WELL"}, "outcome.delivered_on"),
])
async def test_a_bad_outcome_names_its_field_and_changes_nothing(referral_pool: AsyncConnectionPool,
                                                                 scene: dict[str, Any], outcome: dict[str, Any],
                                                                 field: str) -> None:
    made = await refer(referral_pool, scene)
    await call(REFERRAL, "accept", referral_pool, worker(IOM), {"referral_id": made["id"]})
    refusal = await refused(call(REFERRAL, "complete", referral_pool, worker(IOM),
                                 {"referral_id": made["id"], "outcome": outcome}))
    assert (refusal.code, refusal.field) == ("BAD_USER_INPUT", field)
    [still] = (await call(REFERRAL, "incoming", referral_pool, worker(IOM), {}))["nodes"]
    assert (still["status"], still["outcome_code"]) == ("ACCEPTED", None)
    assert len(await outbox(referral_pool, "referral", made["id"])) == 2


# --- work views ----------------------------------------------------------------------------------


async def test_outgoing_filters_and_pages(referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    """AME's outgoing work: routing's health referral and two made by hand, newest first."""
    urgent = await refer(referral_pool, scene, priority="URGENT")
    tracing = await refer(referral_pool, scene, service="tracing", reason_code="FAMILY_CONTACT")
    walked, after = [], None
    for _ in range(5):
        page = await call(REFERRAL, "outgoing", referral_pool, worker(), {"first": 1, "after": after})
        walked += [n["id"] for n in page["nodes"]]
        if not page["page_info"]["has_next_page"]:
            break
        after = page["page_info"]["end_cursor"]
    assert walked[:2] == [tracing["id"], urgent["id"]] and len(walked) == 3
    by_priority = await call(REFERRAL, "outgoing", referral_pool, worker(), {"priority": "URGENT"})
    assert [n["id"] for n in by_priority["nodes"]] == [urgent["id"]]
    by_status = await call(REFERRAL, "outgoing", referral_pool, worker(), {"status": "AWAITING_CONSENT"})
    assert [n["id"] for n in by_status["nodes"]] == [tracing["id"]]
    # Without the health scope, routing's health referral is absent, as from every list.
    plain = await call(REFERRAL, "outgoing", referral_pool, worker(scopes=WRITE), {})
    assert {n["id"] for n in plain["nodes"]} == {urgent["id"], tracing["id"]}
    # Incoming filters the same way, for the recipient.
    pending = await call(REFERRAL, "incoming", referral_pool, worker(IOM), {"status": "ACCEPTED"})
    assert pending["nodes"] == []


async def test_overdue_follows_the_clock(referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene, priority="URGENT")  # due in 24 hours
    now = datetime.now(UTC)

    async def overdue_incoming(at: datetime) -> list[str]:
        page = await worklists.incoming(referral_pool, worker(IOM), ReferralListRequest(overdue_only=True),
                                        clock=lambda: at)
        return [n.id for n in page.nodes]

    assert await overdue_incoming(now + timedelta(hours=23)) == []
    assert await overdue_incoming(now + timedelta(hours=25)) == [made["id"]]
    # Accepted: overdue only past the service's expected duration (30 days) with no outcome.
    await handlers.act("accept", referral_pool, worker(IOM), ReferralAction(referral_id=made["id"]),
                       clock=lambda: now + timedelta(hours=25))
    assert await overdue_incoming(now + timedelta(days=30)) == []
    assert await overdue_incoming(now + timedelta(days=32)) == [made["id"]]
    late = await worklists.incoming(referral_pool, worker(IOM), ReferralListRequest(), clock=lambda: now + timedelta(
        days=32))
    assert [n.overdue for n in late.nodes] == [True]


async def test_the_sql_and_the_domain_agree_on_overdue(referral_pool: AsyncConnectionPool,
                                                       scene: dict[str, Any]) -> None:
    await refer(referral_pool, scene, priority="URGENT")
    later = datetime.now(UTC) + timedelta(days=2)  # the urgent one is late, routing's (72 hours) is not
    every = await worklists.outgoing(referral_pool, worker(), ReferralListRequest(), clock=lambda: later)
    overdue = await worklists.outgoing(referral_pool, worker(), ReferralListRequest(overdue_only=True),
                                       clock=lambda: later)
    assert [n.id for n in every.nodes if n.overdue] == [n.id for n in overdue.nodes] and len(overdue.nodes) == 1
    assert manual_domain.is_overdue("PENDING", later, None, None, None, later + timedelta(seconds=1))


async def test_overdue_counts_exclude_what_the_token_may_not_see(referral_pool: AsyncConnectionPool,
                                                                 scene: dict[str, Any]) -> None:
    """A week on: routing's health referral (to the health centre) and AME's referral to IOM are overdue."""
    await refer(referral_pool, scene)
    week = datetime.now(UTC) + timedelta(days=8)

    async def counts(caller: Principal, coordinator: str = COORDINATOR) -> dict[str, Any]:
        found = await worklists.overdue_counts(referral_pool, caller, OverdueCountsRequest(), clock=lambda: week,
                                               coordinator=coordinator)
        return found.model_dump()

    assert await counts(worker()) == {"org_id": OWNER, "incoming_not_accepted": 0, "accepted_without_outcome": 0,
                                      "outgoing_overdue": 2, "by_organisation": None}
    # Without the health scope, the health referral is not counted: the count would tell its category.
    assert (await counts(worker(scopes=WRITE)))["outgoing_overdue"] == 1
    # The recipient counts its own incoming work whatever its scopes, as it lists it.
    assert (await counts(worker(HEALTH, WRITE)))["incoming_not_accepted"] == 1
    everyone = await counts(worker(COORDINATOR, WRITE + " sensitive:health"))
    assert everyone["by_organisation"] == [
        {"org_id": OWNER, "incoming_not_accepted": 0, "accepted_without_outcome": 0, "outgoing_overdue": 2},
        {"org_id": HEALTH, "incoming_not_accepted": 1, "accepted_without_outcome": 0, "outgoing_overdue": 0},
        {"org_id": IOM, "incoming_not_accepted": 1, "accepted_without_outcome": 0, "outgoing_overdue": 0}]
    narrow = await counts(worker(COORDINATOR, WRITE))
    assert narrow["by_organisation"] == [
        {"org_id": OWNER, "incoming_not_accepted": 0, "accepted_without_outcome": 0, "outgoing_overdue": 1},
        {"org_id": IOM, "incoming_not_accepted": 1, "accepted_without_outcome": 0, "outgoing_overdue": 0}]
    # Through the endpoint (wall clock, nothing overdue yet), for the coordinating body by default.
    today = await call(REFERRAL, "overdue_counts", referral_pool, worker(COORDINATOR, "referrals:read"), {})
    assert today == {"org_id": COORDINATOR, "incoming_not_accepted": 0, "accepted_without_outcome": 0,
                     "outgoing_overdue": 0, "by_organisation": []}


async def test_refer_takes_the_clock_as_an_argument(referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    made = await manual.refer(referral_pool, worker(), ReferCase.model_validate(referral(scene, priority="HIGH")),
                              clock=lambda: at)
    assert made.due_at == at + timedelta(hours=72)


# --- the audit trail of answers to a referral --------------------------------------------------


async def test_every_refusal_after_the_referral_loads_leaves_a_denied_entry(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    made = await refer(referral_pool, scene)
    no_reason = await refused(call(REFERRAL, "reject", referral_pool, worker(IOM), {"referral_id": made["id"]}))
    assert (no_reason.code, no_reason.field) == ("BAD_USER_INPUT", "reason")
    await call(REFERRAL, "accept", referral_pool, worker(IOM), {"referral_id": made["id"]})
    late = {"service_delivered": True, "delivered_on": "2999-01-01", "outcome_code": "START_UP_KIT_PROVIDED"}
    future = await refused(call(REFERRAL, "complete", referral_pool, worker(IOM),
                                {"referral_id": made["id"], "outcome": late}))
    assert (future.code, future.field) == ("BAD_USER_INPUT", "outcome.delivered_on")
    case = [scene["case_id"]]
    iom = [(r["operation"], r["outcome"], [str(c) for c in r["case_ids"]])
           for r in await audit_rows(referral_pool, "referral") if r["org_id"] == IOM]
    assert iom == [("referral.reject", "denied", case), ("referral.accept", "allowed", case),
                   ("referral.complete", "denied", case)]


async def test_answering_a_referral_to_a_sensitive_service_names_its_category_in_the_audit(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    listed = await call(REFERRAL, "case_referrals", referral_pool, worker(), {"case_id": scene["case_id"]})
    [health] = [r for r in listed if r["service_category"] == "HEALTH_CARE"]
    await call(REFERRAL, "accept", referral_pool, worker(HEALTH, WRITE), {"referral_id": health["id"]})
    await call(REFERRAL, "complete", referral_pool, worker(HEALTH, WRITE), {"referral_id": health["id"]})
    made = await refer(referral_pool, scene)
    await call(REFERRAL, "revoke", referral_pool, worker(), {"referral_id": made["id"]})
    entries = [(r["operation"], r["field_categories"]) for r in await audit_rows(referral_pool, "referral")
               if r["operation"] in ("referral.accept", "referral.complete", "referral.revoke")]
    assert entries == [("referral.accept", ["health", "referral"]), ("referral.complete", ["health", "referral"]),
                       ("referral.revoke", ["note", "referral"])]


async def test_overdue_counts_read_only_the_organisations_open_referrals_through_their_indexes(
        referral_pool: AsyncConnectionPool, scene: dict[str, Any]) -> None:
    """Each arm of the count is an index range of one organisation's open referrals in one state
    (migration 0010), never a scan of every referral nor of every organisation's open work, however
    much of it there is (bench/overdue_counts.py: the figures over 300,000 referrals)."""
    await refer(referral_pool, scene)
    async with referral_pool.connection() as conn:  # the rest of the network: 4,000 referrals, half still open
        await conn.execute(
            "insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category,"
            " priority, status, reason_code, due_at, origin, service_id, accepted_at)"
            " select gen_random_uuid(), gen_random_uuid(), 'org-' || g %% 40, 'org-' || g %% 40, %s, 'BUSINESS_START_UP',"
            "  'NORMAL', (array['PENDING', 'ACCEPTED', 'DONE', 'REJECTED'])[1 + g %% 4], 'BENCH',"
            "  now() - interval '1 hour' * (g %% 100), 'MANUAL', %s, now() - interval '1 day' * (g %% 40)"
            " from generate_series(1, 4000) g", (IOM, scene["iom"]))
        await conn.execute("analyze referral.referrals")
    query, params = manual_store.overdue_counts_statement(OWNER, [], datetime.now(UTC))
    async with referral_pool.connection() as conn, conn.transaction():
        cur = await conn.execute("explain " + query, params)
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
    referral_scans = [line for line in plan.splitlines() if " on referrals " in line]
    assert len(referral_scans) == 4 and all("referrals_open_" in line for line in referral_scans), plan
