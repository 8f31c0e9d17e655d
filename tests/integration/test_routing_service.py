"""Routing by the rules file, unmet needs, hand assignment and re-routing, at the service level (real
PostgreSQL, fresh database per test, no gateway, no NATS): rows, outbox events, notices, audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, NEED_UNASSIGNED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED
from contracts.events import ArrivalRegisteredV1, NeedUnassignedV1, ReferralCreatedV1, ReferralStatusChangedV1
from contracts.reference import ArrivalPoint, Sex, Vulnerability
from kernel.errors import SeginError
from services.notifications import handlers as notification_handlers
from services.notifications.app import APP as NOTIFICATIONS
from services.referral import handlers, rules
from services.referral.app import APP as REFERRAL
from services.referral.rules import DEFAULT_FILE, load_rules
from tests.integration.services import audit_rows, call, deliver, outbox, principal

OWNER, COORDINATOR, OTHER = "ame", "coord", "iom-test"
ALL_SENSITIVE = "sensitive:child_protection sensitive:gbv sensitive:health sensitive:trafficking"


@pytest.fixture(autouse=True)
def coordinator(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SEGIN_COORDINATOR_ORG", COORDINATOR)
    return COORDINATOR


@pytest.fixture(autouse=True)
def packaged_rules() -> Iterator[None]:
    """Every test starts and ends with the packaged rules in force (one test switches versions)."""
    rules.install(load_rules(DEFAULT_FILE))
    yield
    rules.install(load_rules(DEFAULT_FILE))


async def service(pool: AsyncConnectionPool, org: str, category: str, regions: list[str] | None = None,
                  org_type: str = "NGO", **columns: Any) -> str:
    """A directory service as the directory holds it (eligibility, capacity); returns its id."""
    service_id = str(uuid.uuid4())
    names = ["id", "organization_id", "name_fr", "category", "regions", *columns]
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("insert into referral.organizations (id, name, org_type) values (%s, %s, %s)"
                           " on conflict (id) do nothing", (org, org, org_type))
        await conn.execute(f"insert into referral.services ({', '.join(names)}) values"
                           f" ({', '.join(['%s'] * len(names))})",
                           [service_id, org, category, category, regions or [], *columns.values()])
    return service_id


def arrival(*vulnerabilities: Vulnerability, owner: str = OWNER, consent_to: tuple[str, ...] = (),
            point: ArrivalPoint = ArrivalPoint.GAO, region: str = "07", is_child: bool = False,
            age: int | None = 30, sex: Sex = Sex.FEMALE) -> ArrivalRegisteredV1:
    return ArrivalRegisteredV1(
        case_id=str(uuid.uuid4()), owner_org_id=owner, arrival_point=point, arrival_date=date(2026, 12, 2),
        destination_region=region, is_child=is_child, vulnerabilities=list(vulnerabilities),
        consent_given=bool(consent_to), consent_recipient_org_ids=list(consent_to), sex=sex, age_years=age)


async def route(pool: AsyncConnectionPool, event: ArrivalRegisteredV1) -> dict[str, dict[str, Any]]:
    """Deliver the arrival to routing; its referrals by category, as the steward's export shows them."""
    await deliver(pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, event, event.case_id)
    rows = await call(REFERRAL, "subject_access", pool, principal("segin", "audit:read"), {"case_id": event.case_id})
    return {r["service_category"]: r for r in rows}


async def row(pool: AsyncConnectionPool, referral_id: str) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute("select * from referral.referrals where id = %s", (referral_id,))
        found = await cur.fetchone()
    assert found is not None
    return found


# --- routing by the rules file --------------------------------------------------------------------


async def test_an_arrival_gets_the_immediate_package_with_rule_and_rules_version_recorded(
        referral_pool: AsyncConnectionPool) -> None:
    food = await service(referral_pool, "food-gao", "FOOD", ["07"], capacity_available=10)
    await service(referral_pool, "food-national", "FOOD", [])  # regional comes first
    by_category = await route(referral_pool, arrival(consent_to=("food-gao",)))
    assert set(by_category) == {"RECEPTION", "FOOD", "NON_FOOD_ITEMS", "CASH_ALLOWANCE"}  # at home: no shelter/transport
    meal = by_category["FOOD"]
    assert (meal["to_org_id"], meal["service_id"], meal["status"], meal["legal_basis"]) == (
        "food-gao", food, "PENDING", "CONSENT")
    assert (meal["origin"], meal["rule_id"], meal["rules_version"]) == ("RULE", "IMMEDIATE_FOOD", "2026-12-01.1")
    [created] = await outbox(referral_pool, "referral", meal["id"])
    assert created["type"] == REFERRAL_CREATED.event_type


async def test_a_need_no_provider_covers_is_unassigned_announced_and_both_organisations_are_told(
        referral_pool: AsyncConnectionPool, notifications_pool: AsyncConnectionPool) -> None:
    await service(referral_pool, "gbv-kayes", "GBV_RESPONSE", ["01"])
    by_category = await route(referral_pool, arrival(Vulnerability.GBV_SURVIVOR))
    need = by_category["GBV_RESPONSE"]
    assert (need["status"], need["to_org_id"], need["unassigned_reason"], need["rule_id"]) == (
        "UNASSIGNED", None, "NO_PROVIDER_IN_REGION", "GBV_SURVIVOR")
    [event] = await outbox(referral_pool, "referral", need["id"])
    assert event["type"] == NEED_UNASSIGNED.event_type
    assert event["data"] == {"referral_id": need["id"], "case_id": need["case_id"], "owner_org_id": OWNER,
                             "service_category": "GBV_RESPONSE", "priority": "URGENT",
                             "reason": "NO_PROVIDER_IN_REGION", "rule_id": "GBV_SURVIVOR", "rerouted_from": None,
                             "from_org_id": None, "rerouted_by_org_id": None}
    # The notifications service tells the registering organisation and the coordinating body; a need of
    # a sensitive category only to their tokens holding its scope.
    await deliver(notifications_pool, notification_handlers.on_need_unassigned, NEED_UNASSIGNED,
                  NeedUnassignedV1.model_validate(event["data"]), need["id"])

    async def told(org: str, scopes: str) -> list[tuple[str, str | None]]:
        page = await call(NOTIFICATIONS, "list", notifications_pool, principal(org, f"notifications:read {scopes}"), {})
        return [(n["kind"], n["referral_id"]) for n in page["nodes"]]

    for org in (OWNER, COORDINATOR):
        assert await told(org, "sensitive:gbv") == [("referral.unassigned", need["id"])]
        assert await told(org, "sensitive:health") == []
    assert await told(OTHER, "sensitive:gbv") == []


async def test_the_reason_is_no_capacity_or_not_eligible_when_that_is_what_stopped_it(
        referral_pool: AsyncConnectionPool) -> None:
    await service(referral_pool, "food-full", "FOOD", ["07"], capacity_available=0, capacity_maximum=50)
    await service(referral_pool, "cash-men", "CASH_ALLOWANCE", [], sexes=["MALE"])
    by_category = await route(referral_pool, arrival())
    assert by_category["FOOD"]["unassigned_reason"] == "NO_CAPACITY"
    assert by_category["CASH_ALLOWANCE"]["unassigned_reason"] == "NOT_ELIGIBLE"
    assert by_category["NON_FOOD_ITEMS"]["unassigned_reason"] == "NO_PROVIDER_IN_REGION"


async def test_a_new_rules_version_routes_new_arrivals_and_never_changes_past_referrals(
        referral_pool: AsyncConnectionPool, tmp_path: Path) -> None:
    await service(referral_pool, "clinic", "HEALTH_CARE", [])
    await service(referral_pool, "mhpss", "MHPSS_COUNSELLING", [])
    v1 = load_rules(DEFAULT_FILE)
    rules.install(v1)
    a = await route(referral_pool, arrival(Vulnerability.MEDICAL_NEEDS, Vulnerability.MENTAL_HEALTH_NEEDS,
                                           consent_to=("clinic", "mhpss")))
    before = {c: await row(referral_pool, r["id"]) for c, r in a.items()}

    v2_file = tmp_path / "routing.yaml"
    v2_file.write_text(DEFAULT_FILE.read_text(encoding="utf-8")
                       .replace('version: "2026-12-01.1"', 'version: "2026-12-15.1"')
                       .replace("    priority: HIGH\n    due_in: PT72H\n  - id: MENTAL_HEALTH_NEEDS",
                                "    priority: URGENT\n    due_in: PT24H\n  - id: MENTAL_HEALTH_NEEDS")
                       .replace("category: MHPSS_COUNSELLING", "category: CLINICAL_MENTAL_HEALTH"), encoding="utf-8")
    rules.install(load_rules(v2_file))
    b = await route(referral_pool, arrival(Vulnerability.MEDICAL_NEEDS, Vulnerability.MENTAL_HEALTH_NEEDS,
                                           consent_to=("clinic", "mhpss")))

    assert {c: await row(referral_pool, r["id"]) for c, r in a.items()} == before  # A untouched, field by field
    assert (a["HEALTH_CARE"]["priority"], a["HEALTH_CARE"]["rules_version"]) == ("HIGH", "2026-12-01.1")
    assert a["MHPSS_COUNSELLING"]["to_org_id"] == "mhpss"
    health = b["HEALTH_CARE"]
    assert (health["priority"], health["rules_version"], health["rule_id"]) == ("URGENT", "2026-12-15.1",
                                                                                "MEDICAL_NEEDS")
    assert "MHPSS_COUNSELLING" not in b
    assert (b["CLINICAL_MENTAL_HEALTH"]["status"], b["CLINICAL_MENTAL_HEALTH"]["rules_version"]) == (
        "UNASSIGNED", "2026-12-15.1")


# --- the unassigned list ----------------------------------------------------------------------------


async def test_unmet_needs_are_listed_to_the_owner_and_the_coordinator_only_sensitive_with_its_scope(
        referral_pool: AsyncConnectionPool) -> None:
    mine = await route(referral_pool, arrival(Vulnerability.TRAFFICKING_VICTIM))
    others = await route(referral_pool, arrival(owner=OTHER))

    async def listed(org: str, scopes: str = "", **page: Any) -> list[str]:
        found = await call(REFERRAL, "unassigned", referral_pool, principal(org, f"referrals:read {scopes}"), page)
        return [n["id"] for n in found["nodes"]]

    owner_plain = await listed(OWNER)
    assert set(owner_plain) == {r["id"] for c, r in mine.items() if c != "COUNTER_TRAFFICKING"}
    assert set(await listed(OWNER, "sensitive:trafficking")) == {r["id"] for r in mine.values()}
    everything = await listed(COORDINATOR, "sensitive:trafficking")
    assert set(everything) == {r["id"] for r in [*mine.values(), *others.values()]}
    assert set(await listed(OTHER)) == {r["id"] for r in others.values()}
    assert await listed("uninvolved", ALL_SENSITIVE) == []
    # Cursor paging as everywhere: pages of two cover the list once, newest first.
    walked, after = [], None
    while True:
        found = await call(REFERRAL, "unassigned", referral_pool,
                           principal(COORDINATOR, "referrals:read sensitive:trafficking"),
                           {"first": 2, **({"after": after} if after else {})})
        walked += [n["id"] for n in found["nodes"]]
        if not found["page_info"]["has_next_page"]:
            break
        after = found["page_info"]["end_cursor"]
    assert walked == everything
    listed_entries = [r for r in await audit_rows(referral_pool, "referral") if r["operation"] == "referral.list_unassigned"]
    assert {e["org_id"] for e in listed_entries} == {OWNER, COORDINATOR, OTHER}


# --- assigning a need by hand ---------------------------------------------------------------------


async def test_the_owner_assigns_an_unmet_need_live_when_consent_covers_the_recipient(
        referral_pool: AsyncConnectionPool) -> None:
    need = (await route(referral_pool, arrival(consent_to=("food-ngo",))))["FOOD"]
    food = await service(referral_pool, "food-ngo", "FOOD", ["05"])  # listed later, elsewhere: a person decides
    assigned = await call(REFERRAL, "assign", referral_pool, principal(OWNER, "referrals:write"),
                          {"referral_id": need["id"], "service_id": food})
    assert (assigned["status"], assigned["to_org_id"], assigned["service_id"], assigned["legal_basis"]) == (
        "PENDING", "food-ngo", food, "CONSENT")
    stored = await row(referral_pool, need["id"])
    assert (stored["assigned_by"], stored["assigned_by_org"], stored["status_reason"]) == (
        f"client:{OWNER}", OWNER, "ASSIGNED")
    _, changed = await outbox(referral_pool, "referral", need["id"])
    assert changed["type"] == REFERRAL_STATUS_CHANGED.event_type
    assert (changed["data"]["old_status"], changed["data"]["new_status"], changed["data"]["to_org_id"]) == (
        "UNASSIGNED", "PENDING", "food-ngo")
    ReferralStatusChangedV1.model_validate(changed["data"])
    [entry] = [r for r in await audit_rows(referral_pool, "referral") if r["operation"] == "referral.assign"]
    assert (entry["org_id"], entry["outcome"], entry["legal_basis"]) == (OWNER, "allowed", "CONSENT")
    # It is no longer an unmet need: a second assignment is refused.
    with pytest.raises(SeginError) as again:
        await call(REFERRAL, "assign", referral_pool, principal(COORDINATOR, "referrals:write"),
                   {"referral_id": need["id"], "service_id": food})
    assert again.value.code == "INVALID_TRANSITION"


async def test_the_coordinator_assigns_without_consent_it_waits_except_on_a_childs_vital_interest(
        referral_pool: AsyncConnectionPool) -> None:
    child = await route(referral_pool, arrival(Vulnerability.UNACCOMPANIED_CHILD, is_child=True, age=15))
    nfi = await service(referral_pool, "nfi", "NON_FOOD_ITEMS", [])
    protection = await service(referral_pool, "protect", "CHILD_PROTECTION", [])
    writer = principal(COORDINATOR, "referrals:write sensitive:child_protection")
    waiting = await call(REFERRAL, "assign", referral_pool, writer,
                         {"referral_id": child["NON_FOOD_ITEMS"]["id"], "service_id": nfi})
    assert (waiting["status"], waiting["legal_basis"]) == ("AWAITING_CONSENT", None)
    vital = await call(REFERRAL, "assign", referral_pool, writer,
                       {"referral_id": child["CHILD_PROTECTION"]["id"], "service_id": protection})
    assert (vital["status"], vital["legal_basis"]) == ("PENDING", "VITAL_INTEREST")


async def test_a_sensitive_service_awaiting_approval_is_neither_routed_to_nor_assigned(
        referral_pool: AsyncConnectionPool) -> None:
    """An organisation lists child protection in Gao (regional, so routing would prefer it) and the
    steward has not approved it: an unaccompanied child goes to the approved national service."""
    pending = await service(referral_pool, "newcomer", "CHILD_PROTECTION", ["07"], approved=False)
    national = await service(referral_pool, "unicef-test", "CHILD_PROTECTION", [])
    child = await route(referral_pool, arrival(Vulnerability.UNACCOMPANIED_CHILD, is_child=True, age=15))
    protection = child["CHILD_PROTECTION"]
    assert (protection["to_org_id"], protection["service_id"], protection["legal_basis"]) == (
        "unicef-test", national, "VITAL_INTEREST")
    alone = await route(referral_pool, arrival(Vulnerability.UNACCOMPANIED_CHILD, is_child=True, age=15,
                                               region="07"))
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.services set status = 'inactive' where id = %s", (national,))
    again = await route(referral_pool, arrival(Vulnerability.UNACCOMPANIED_CHILD, is_child=True, age=15))
    assert (again["CHILD_PROTECTION"]["status"], again["CHILD_PROTECTION"]["to_org_id"]) == ("UNASSIGNED", None)
    writer = principal(COORDINATOR, "referrals:write sensitive:child_protection")
    with pytest.raises(SeginError) as refused:
        await call(REFERRAL, "assign", referral_pool, writer,
                   {"referral_id": again["CHILD_PROTECTION"]["id"], "service_id": pending})
    assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "serviceId")
    assert alone["CHILD_PROTECTION"]["to_org_id"] == "unicef-test"


async def test_assignment_refusals_change_nothing(referral_pool: AsyncConnectionPool) -> None:
    need = await route(referral_pool, arrival(Vulnerability.GBV_SURVIVOR))
    food = await service(referral_pool, "food-ngo", "FOOD", [])
    own = await service(referral_pool, OWNER, "NON_FOOD_ITEMS", ["05"])

    async def refused(org: str, scopes: str, referral_id: str, service_id: str) -> tuple[str, str | None]:
        with pytest.raises(SeginError) as caught:
            await call(REFERRAL, "assign", referral_pool, principal(org, scopes),
                       {"referral_id": referral_id, "service_id": service_id})
        return caught.value.code, caught.value.field

    assert await refused(OTHER, "referrals:write", need["FOOD"]["id"], food) == ("NOT_FOUND", "id")
    assert await refused(OWNER, "referrals:write", need["GBV_RESPONSE"]["id"], food) == ("NOT_FOUND", "id")
    assert await refused(OWNER, "referrals:write", need["CASH_ALLOWANCE"]["id"], food) == ("BAD_USER_INPUT",
                                                                                           "serviceId")
    assert await refused(OWNER, "referrals:write", need["NON_FOOD_ITEMS"]["id"], own) == ("BAD_USER_INPUT",
                                                                                          "serviceId")
    assert await refused(OWNER, "referrals:write", need["FOOD"]["id"], str(uuid.uuid4())) == ("NOT_FOUND",
                                                                                              "serviceId")
    for r in need.values():
        assert (await row(referral_pool, r["id"]))["status"] == "UNASSIGNED"
        assert len(await outbox(referral_pool, "referral", r["id"])) == 1
    denied = [r["org_id"] for r in await audit_rows(referral_pool, "referral")
              if r["operation"] == "referral.assign" and r["outcome"] == "denied"]
    assert denied == [OTHER, OWNER, OWNER, OWNER, OWNER]


# --- re-routing -------------------------------------------------------------------------------------


async def test_rerouting_goes_to_the_next_provider_in_order_then_leaves_the_need_unassigned(
        referral_pool: AsyncConnectionPool, notifications_pool: AsyncConnectionPool) -> None:
    first = await service(referral_pool, "food-a", "FOOD", ["07"], capacity_available=20)
    second = await service(referral_pool, "food-b", "FOOD", ["07"], capacity_available=5)
    await service(referral_pool, "food-full", "FOOD", ["07"], capacity_available=0)
    original = (await route(referral_pool, arrival(consent_to=("food-a", "food-b"))))["FOOD"]
    assert original["service_id"] == first

    writer = principal(OWNER, "referrals:write")
    moved = await call(REFERRAL, "reroute", referral_pool, writer, {"referral_id": original["id"], "reason": "NO_ANSWER"})
    assert (moved["to_org_id"], moved["service_id"], moved["status"], moved["origin"], moved["rerouted_from"]) == (
        "food-b", second, "PENDING", "REROUTE", original["id"])
    assert (moved["rule_id"], moved["rules_version"], moved["status_reason"]) == (
        "IMMEDIATE_FOOD", "2026-12-01.1", "NO_ANSWER")
    old = await row(referral_pool, original["id"])
    assert (old["status"], old["status_reason"], str(old["rerouted_to"])) == ("REVOKED", "REROUTED", moved["id"])
    _, revoked = await outbox(referral_pool, "referral", original["id"])
    assert (revoked["data"]["old_status"], revoked["data"]["new_status"]) == ("PENDING", "REVOKED")
    [created] = await outbox(referral_pool, "referral", moved["id"])
    assert created["type"] == REFERRAL_CREATED.event_type

    # The recipient rejects; the coordinating body re-routes: nobody left (both tried, the last full).
    await call(REFERRAL, "reject", referral_pool, principal("food-b", "referrals:write"),
               {"referral_id": moved["id"], "reason": "NO_PLACE"})
    last = await call(REFERRAL, "reroute", referral_pool, principal(COORDINATOR, "referrals:write"),
                      {"referral_id": moved["id"]})
    assert (last["status"], last["to_org_id"], last["unassigned_reason"], last["rerouted_from"]) == (
        "UNASSIGNED", None, "NO_CAPACITY", moved["id"])
    rejected = await row(referral_pool, moved["id"])
    assert (rejected["status"], rejected["status_reason"], str(rejected["rerouted_to"])) == (
        "REJECTED", "NO_PLACE", last["id"])
    [need] = await outbox(referral_pool, "referral", last["id"])
    assert (need["type"], need["data"]["reason"], need["data"]["rerouted_from"]) == (
        NEED_UNASSIGNED.event_type, "NO_CAPACITY", moved["id"])
    await deliver(notifications_pool, notification_handlers.on_need_unassigned, NEED_UNASSIGNED,
                  NeedUnassignedV1.model_validate(need["data"]), last["id"])
    for org in (OWNER, COORDINATOR):
        page = await call(NOTIFICATIONS, "list", notifications_pool, principal(org, "notifications:read"), {})
        assert [n["kind"] for n in page["nodes"]] == ["referral.unassigned"]
    entries = [(r["org_id"], r["outcome"]) for r in await audit_rows(referral_pool, "referral")
               if r["operation"] == "referral.reroute"]
    assert entries == [(OWNER, "allowed"), (COORDINATOR, "allowed")]


async def test_who_may_reroute_what(referral_pool: AsyncConnectionPool) -> None:
    await service(referral_pool, "food-a", "FOOD", [])
    await service(referral_pool, "food-b", "FOOD", [])
    referral = (await route(referral_pool, arrival(consent_to=("food-a",))))["FOOD"]

    async def refused(org: str, referral_id: str) -> str:
        with pytest.raises(SeginError) as caught:
            await call(REFERRAL, "reroute", referral_pool, principal(org, "referrals:write"),
                       {"referral_id": referral_id})
        return caught.value.code

    assert await refused("food-a", referral["id"]) == "NOT_FOUND"  # the recipient does not re-route
    assert await refused("uninvolved", referral["id"]) == "NOT_FOUND"
    await call(REFERRAL, "accept", referral_pool, principal("food-a", "referrals:write"), {"referral_id": referral["id"]})
    assert await refused(OWNER, referral["id"]) == "INVALID_TRANSITION"  # accepted and not escalated
    assert len(await outbox(referral_pool, "referral", referral["id"])) == 2


async def test_the_coordinator_reroutes_only_an_escalated_or_rejected_referral_and_the_referrer_is_told(
        referral_pool: AsyncConnectionPool, notifications_pool: AsyncConnectionPool) -> None:
    await service(referral_pool, "food-a", "FOOD", [])
    await service(referral_pool, "food-b", "FOOD", [])
    fresh = (await route(referral_pool, arrival(consent_to=("food-a", "food-b"))))["FOOD"]
    coordinator = principal(COORDINATOR, "referrals:write")
    with pytest.raises(SeginError) as caught:  # a fresh referral is the referring organisation's to move
        await call(REFERRAL, "reroute", referral_pool, coordinator, {"referral_id": fresh["id"]})
    assert (caught.value.code, caught.value.field) == ("NOT_FOUND", "id")
    assert (await row(referral_pool, fresh["id"]))["status"] == "PENDING"
    denied = [(r["org_id"], r["outcome"]) for r in await audit_rows(referral_pool, "referral")
              if r["operation"] == "referral.reroute"]
    assert denied == [(COORDINATOR, "denied")]

    async with referral_pool.connection() as conn:  # the deadline scan escalated it
        await conn.execute("update referral.referrals set escalated_at = now() where id = %s", (fresh["id"],))
    moved = await call(REFERRAL, "reroute", referral_pool, coordinator, {"referral_id": fresh["id"]})
    assert (moved["to_org_id"], moved["rerouted_from"]) == ("food-b", fresh["id"])
    [created] = await outbox(referral_pool, "referral", moved["id"])
    assert (created["data"]["rerouted_from"], created["data"]["rerouted_by_org_id"],
            created["data"]["case_owner_org_id"]) == (fresh["id"], COORDINATOR, OWNER)
    await deliver(notifications_pool, notification_handlers.on_referral_created, REFERRAL_CREATED,
                  ReferralCreatedV1.model_validate(created["data"]), moved["id"])
    page = await call(NOTIFICATIONS, "list", notifications_pool, principal(OWNER, "notifications:read"), {})
    assert [(n["kind"], n["referral_id"]) for n in page["nodes"]] == [("referral.rerouted", moved["id"])]

    # The referring organisation keeps its rights: it re-routes a fresh referral, and is not told of its own act.
    again = await call(REFERRAL, "reroute", referral_pool, principal(OWNER, "referrals:write"),
                       {"referral_id": moved["id"]})
    [unassigned] = await outbox(referral_pool, "referral", again["id"])  # both tried: nobody left
    assert (unassigned["type"], unassigned["data"]["rerouted_by_org_id"]) == (NEED_UNASSIGNED.event_type, OWNER)
