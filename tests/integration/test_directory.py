"""The service directory at the service level: who may change which service, optimistic concurrency,
bad input refused by field with nothing written, and every change an event and an audit entry
(real PostgreSQL, fresh database, no gateway, no NATS)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import DIRECTORY_SERVICE_CHANGED
from kernel.errors import SeginError
from services.referral import store
from services.referral.app import APP as REFERRAL
from tests.integration.services import CountingPool, audit_rows, call, outbox, principal

SHELTER_ORG, OTHER_ORG, STEWARD = "ame", "croix-rouge", "segin-steward"
WRITE = "directory:write directory:read"
STEWARD_SCOPES = "directory:write directory:read directory:manage"


def shelter(**overrides: Any) -> dict[str, Any]:
    """A shelter in Bamako with 40 of 60 places free; tests override what they exercise."""
    return {"name_fr": "Centre d'accueil de l'AME", "name_en": "AME reception centre",
            "description_fr": "Hébergement temporaire à la sortie de l'aéroport.", "category": "SHELTER",
            "regions": ["00"], "locations": [{"name": "Centre AME", "address": "Rue 400, Djélibougou",
                                              "city": "Bamako", "region": "00", "latitude": 12.6586,
                                              "longitude": -7.9738}],
            "minimum_age": 18, "sexes": [], "vulnerabilities": [],
            "hours": [{"days": ["MO", "TU", "WE", "TH", "FR"], "opens_at": "08:00", "closes_at": "18:00"}],
            "email": "accueil@ame.example", "phone": "+223 20 21 00 00", "url": "https://ame.example/accueil",
            "expected_duration_days": 7, "capacity": {"available": 40, "maximum": 60}, **overrides}


async def save(pool: AsyncConnectionPool, org: str, payload: dict[str, Any], scopes: str = WRITE) -> dict[str, Any]:
    return await call(REFERRAL, "directory_save", pool, principal(org, scopes), payload)


async def refused(pool: Any, org: str, payload: dict[str, Any], scopes: str = WRITE,
                  endpoint: str = "directory_save") -> SeginError:
    with pytest.raises(SeginError) as caught:
        await call(REFERRAL, endpoint, pool, principal(org, scopes), payload)
    return caught.value


async def test_an_organisation_creates_its_service_and_the_change_is_announced_and_audited(
        referral_pool: AsyncConnectionPool) -> None:
    created = await save(referral_pool, SHELTER_ORG, shelter())
    assert (created["organization_id"], created["version"], created["regions"]) == (SHELTER_ORG, 1, ["00"])
    assert created["capacity"]["available"] == 40 and created["capacity"]["updated_by"] == f"client:{SHELTER_ORG}"
    assert created["locations"][0]["latitude"] == pytest.approx(12.6586)
    [event] = await outbox(referral_pool, "referral", created["id"])
    assert event["type"] == DIRECTORY_SERVICE_CHANGED.event_type
    assert event["data"] == {"service_id": created["id"], "organization_id": SHELTER_ORG, "change": "CREATED",
                             "category": "SHELTER", "regions": ["00"], "status": "active",
                             "capacity_available": 40, "capacity_maximum": 60, "version": 1}
    [entry] = [r for r in await audit_rows(referral_pool, "referral") if r["operation"].startswith("directory.")]
    assert (entry["operation"], entry["org_id"], entry["purpose"], entry["outcome"], entry["field_categories"]) == (
        "directory.create", SHELTER_ORG, "directory", "allowed", ["directory"])
    # Another organisation reads it, without learning who reported the capacity.
    seen = await call(REFERRAL, "directory_service", referral_pool, principal(OTHER_ORG, "directory:read"),
                      {"id": created["id"]})
    assert seen["name_fr"] == "Centre d'accueil de l'AME" and seen["capacity"]["updated_by"] is None


async def test_an_organisation_may_not_change_another_organisations_service_but_the_steward_may(
        referral_pool: AsyncConnectionPool) -> None:
    created = await save(referral_pool, SHELTER_ORG, shelter())
    update = shelter(id=created["id"], version=1, name_fr="Renamed")
    error = await refused(referral_pool, OTHER_ORG, update)
    assert (error.code, error.field) == ("FORBIDDEN", "organization_id") and "own services" in error.message
    error = await refused(referral_pool, OTHER_ORG, {**shelter(), "organization_id": SHELTER_ORG})
    assert error.code == "FORBIDDEN"
    error = await refused(referral_pool, OTHER_ORG, {"service_id": created["id"], "version": 1, "available": 0},
                          endpoint="directory_set_capacity")
    assert error.code == "FORBIDDEN"
    denied = [(r["operation"], r["org_id"]) for r in await audit_rows(referral_pool, "referral")
              if r["outcome"] == "denied"]
    assert denied == [("directory.save", OTHER_ORG)] * 2 + [("directory.set_capacity", OTHER_ORG)]
    assert len(await outbox(referral_pool, "referral", created["id"])) == 1  # nothing changed
    # The steward maintains any organisation's services, and creates them for it.
    updated = await save(referral_pool, STEWARD, update, "directory:write directory:manage")
    assert (updated["name_fr"], updated["version"], updated["organization_id"]) == ("Renamed", 2, SHELTER_ORG)
    other = await save(referral_pool, STEWARD, {**shelter(), "organization_id": OTHER_ORG,
                                                "organization_name": "Croix-Rouge malienne"},
                       "directory:write directory:manage")
    assert (other["organization_id"], other["organization_name"]) == (OTHER_ORG, "Croix-Rouge malienne")


async def test_an_update_from_a_stale_version_is_a_conflict_and_changes_nothing(
        referral_pool: AsyncConnectionPool) -> None:
    created = await save(referral_pool, SHELTER_ORG, shelter())
    first = await save(referral_pool, SHELTER_ORG, shelter(id=created["id"], version=1, name_fr="Premier"))
    assert first["version"] == 2
    error = await refused(referral_pool, SHELTER_ORG, shelter(id=created["id"], version=1, name_fr="Second"))
    assert (error.code, error.field) == ("CONFLICT", "version") and "version 2" in error.message
    error = await refused(referral_pool, SHELTER_ORG, {"service_id": created["id"], "version": 1, "available": 3},
                          endpoint="directory_set_capacity")
    assert (error.code, error.field) == ("CONFLICT", "version")
    error = await refused(referral_pool, SHELTER_ORG, shelter(id=created["id"]))  # an id without a version
    assert (error.code, error.field) == ("CONFLICT", "version")
    now = await call(REFERRAL, "directory_service", referral_pool, principal(SHELTER_ORG, WRITE), {"id": created["id"]})
    assert (now["name_fr"], now["version"], now["capacity"]["available"]) == ("Premier", 2, 40)
    assert [e["data"]["change"] for e in await outbox(referral_pool, "referral", created["id"])] == ["CREATED", "UPDATED"]


async def test_capacity_reports_record_when_and_by_whom_and_a_save_that_changes_nothing_writes_nothing(
        referral_pool: AsyncConnectionPool) -> None:
    created = await save(referral_pool, SHELTER_ORG, shelter())
    again = await save(referral_pool, SHELTER_ORG, shelter(id=created["id"], version=1))
    assert again["version"] == 1 and again["updated_at"] == created["updated_at"]
    full = await call(REFERRAL, "directory_set_capacity", referral_pool, principal(SHELTER_ORG, WRITE),
                      {"service_id": created["id"], "version": 1, "available": 0, "maximum": 60})
    assert (full["capacity"]["available"], full["version"]) == (0, 2)
    assert full["capacity"]["updated_at"] > created["capacity"]["updated_at"]
    changes = [e["data"]["change"] for e in await outbox(referral_pool, "referral", created["id"])]
    assert changes == ["CREATED", "CAPACITY"]
    listed = await call(REFERRAL, "directory_services", referral_pool, principal(OTHER_ORG, "directory:read"),
                        {"open_capacity_only": True})
    assert listed["nodes"] == []


@pytest.mark.parametrize("change,field", [
    ({"regions": ["00", "99"]}, "regions.1"),
    ({"minimum_age": 18, "maximum_age": 12}, "maximum_age"),
    ({"locations": [{"name": "x", "latitude": 95.0, "longitude": -7.9}]}, "locations.0.latitude"),
    ({"locations": [{"name": "x", "latitude": 12.6, "longitude": -181}]}, "locations.0.longitude"),
    ({"locations": [{"name": "x", "latitude": 12.6}]}, "locations.0.longitude"),
    ({"capacity": {"available": 61, "maximum": 60}}, "capacity.maximum"),
    ({"hours": [{"days": ["MO"], "opens_at": "18:00", "closes_at": "08:00"}]}, "hours.0.closes_at"),
    ({"email": "not an address"}, "email"),
    ({"category": "SPA"}, "category"),
])
async def test_bad_input_is_refused_by_field_and_nothing_is_written(
        referral_pool: AsyncConnectionPool, change: dict[str, Any], field: str) -> None:
    counting = CountingPool(referral_pool)
    error = await refused(counting, SHELTER_ORG, shelter(**change))
    assert (error.code, error.field, counting.statements) == ("BAD_USER_INPUT", field, [])


async def test_the_directory_filters_by_category_region_vulnerability_and_organisation(
        referral_pool: AsyncConnectionPool) -> None:
    bamako = await save(referral_pool, SHELTER_ORG, shelter())
    national = await save(referral_pool, OTHER_ORG, shelter(name_fr="Vivres", category="FOOD", regions=[],
                                                            capacity=None))
    gbv = await save(referral_pool, OTHER_ORG, shelter(name_fr="Écoute VBG", category="GBV_RESPONSE", regions=[],
                                                       vulnerabilities=["GBV_SURVIVOR"], sexes=["FEMALE"]),
                     WRITE + " sensitive:gbv")
    await call(REFERRAL, "directory_approve", referral_pool, principal(STEWARD, STEWARD_SCOPES),
               {"id": gbv["id"], "version": gbv["version"]})

    async def ids(org: str, scopes: str = "directory:read", **query: Any) -> list[str]:
        found = await call(REFERRAL, "directory_services", referral_pool, principal(org, scopes), query)
        return [n["id"] for n in found["nodes"]]

    assert await ids("unhcr", region="07") == [national["id"]]  # Gao: national only
    assert await ids("unhcr", region="00") == [national["id"], bamako["id"]]
    assert await ids("unhcr", category="SHELTER") == [bamako["id"]]
    # A GBV service exists only for tokens allowed to see GBV matters, its own organisation and the steward.
    assert gbv["id"] not in await ids("unhcr")
    assert await ids("unhcr", "directory:read sensitive:gbv", vulnerability="GBV_SURVIVOR") == [
        gbv["id"], national["id"], bamako["id"]]  # services open to anyone are open to survivors too
    assert await ids("unhcr", "directory:read sensitive:gbv", vulnerability="ELDERLY") == [national["id"], bamako["id"]]
    assert gbv["id"] in await ids(OTHER_ORG)
    assert gbv["id"] in await ids(STEWARD, "directory:read directory:manage")
    error = await refused(referral_pool, "unhcr", {"id": gbv["id"]}, "directory:read", "directory_service")
    assert error.code == "NOT_FOUND"
    assert await ids("unhcr", organization_id=SHELTER_ORG) == [bamako["id"]]
    first = await call(REFERRAL, "directory_services", referral_pool, principal("unhcr", "directory:read"), {"first": 1})
    rest = await call(REFERRAL, "directory_services", referral_pool, principal("unhcr", "directory:read"),
                      {"first": 1, "after": first["page_info"]["end_cursor"]})
    assert first["page_info"]["has_next_page"] and [n["id"] for n in first["nodes"] + rest["nodes"]] == [
        national["id"], bamako["id"]]


async def test_reading_needs_directory_read_and_writing_directory_write(referral_pool: AsyncConnectionPool) -> None:
    error = await refused(referral_pool, SHELTER_ORG, shelter(), "directory:read")
    assert error.code == "INSUFFICIENT_SCOPE"
    error = await refused(referral_pool, SHELTER_ORG, {}, "referrals:read", "directory_services")
    assert error.code == "INSUFFICIENT_SCOPE"
    error = await refused(referral_pool, SHELTER_ORG, {"id": str(uuid.uuid4())}, "directory:read", "directory_service")
    assert error.code == "NOT_FOUND"


# --- sensitive services: the category's scope to describe one, the steward's approval to use one ---


async def test_a_sensitive_service_needs_its_scope_and_waits_for_the_stewards_approval_before_anyone_uses_it(
        referral_pool: AsyncConnectionPool) -> None:
    """The attack this closes: an organisation lists "child protection" in a region, routing prefers
    regional services, and the region's unaccompanied children are referred to it on vital interest."""
    protection = shelter(name_fr="Protection de l'enfance", category="CHILD_PROTECTION", minimum_age=None,
                         maximum_age=17, regions=["07"])
    counting = CountingPool(referral_pool)
    error = await refused(counting, OTHER_ORG, protection)  # no sensitive:child_protection: refused, nothing written
    assert (error.code, error.field) == ("INSUFFICIENT_SCOPE", "category")
    assert "sensitive:child_protection" in error.message
    assert [s for s in counting.statements if s.lstrip().lower().startswith(("insert into referral.services",
                                                                            "update referral.services"))] == []
    scoped = WRITE + " sensitive:child_protection"
    created = await save(referral_pool, OTHER_ORG, protection, scoped)
    assert created["awaiting_approval"] is True

    async def in_use() -> list[str]:
        async with referral_pool.connection() as conn:
            return [p.service_id for p in await store.providers(conn)]

    reader = principal("unhcr", "directory:read sensitive:child_protection")
    assert created["id"] not in await in_use()  # routing, assigning and re-routing read store.providers
    listed = await call(REFERRAL, "directory_services", referral_pool, reader, {})
    assert created["id"] not in [n["id"] for n in listed["nodes"]]  # nor do other organisations see it
    assert (await refused(referral_pool, "unhcr", {"id": created["id"]}, "directory:read sensitive:child_protection",
                          "directory_service")).code == "NOT_FOUND"
    steward = principal(STEWARD, STEWARD_SCOPES)
    waiting = await call(REFERRAL, "directory_services", referral_pool, steward, {"awaiting_approval": True})
    assert [n["id"] for n in waiting["nodes"]] == [created["id"]]
    # Only the steward approves, as of the version it reviewed.
    error = await refused(referral_pool, OTHER_ORG, {"id": created["id"], "version": 1}, scoped, "directory_approve")
    assert error.code == "INSUFFICIENT_SCOPE"
    error = await refused(referral_pool, STEWARD, {"id": created["id"], "version": 7}, STEWARD_SCOPES,
                          "directory_approve")
    assert (error.code, error.field) == ("CONFLICT", "version")
    approved = await call(REFERRAL, "directory_approve", referral_pool, steward, {"id": created["id"], "version": 1})
    assert (approved["awaiting_approval"], approved["version"]) == (False, 2)
    assert created["id"] in await in_use()
    assert (await call(REFERRAL, "directory_service", referral_pool, reader, {"id": created["id"]}))["id"] == created["id"]
    changes = [e["data"]["change"] for e in await outbox(referral_pool, "referral", created["id"])]
    assert changes == ["CREATED", "APPROVED"]
    denied = [r["operation"] for r in await audit_rows(referral_pool, "referral") if r["outcome"] == "denied"]
    # The scope refusal, the approval by a token without directory:manage, the stale approval.
    assert denied == ["directory.save", "referral.directory_approve", "directory.approve"]
    # A new phone number keeps the approval; a wider area or another age range needs it again.
    phone = await save(referral_pool, OTHER_ORG, {**protection, "id": created["id"], "version": 2,
                                                  "phone": "+223 76 00 00 00"}, scoped)
    assert (phone["awaiting_approval"], created["id"] in await in_use()) == (False, True)
    wider = await save(referral_pool, OTHER_ORG, {**protection, "id": created["id"], "version": 3,
                                                  "phone": "+223 76 00 00 00", "regions": ["07", "08"]}, scoped)
    assert (wider["awaiting_approval"], created["id"] in await in_use()) == (True, False)
    # Capacity reports keep the service as it is: a count says nothing of who it serves.
    full = await call(REFERRAL, "directory_set_capacity", referral_pool, principal(OTHER_ORG, scoped),
                      {"service_id": created["id"], "version": 4, "available": 3})
    assert full["awaiting_approval"] is True
    # An organisation without the scope cannot turn its ordinary service into a sensitive one either.
    food = await save(referral_pool, OTHER_ORG, shelter(category="FOOD"))
    error = await refused(referral_pool, OTHER_ORG, {**protection, "id": food["id"], "version": 1})
    assert (error.code, error.field) == ("INSUFFICIENT_SCOPE", "category")
    # The steward's own saves need no second look.
    by_steward = await save(referral_pool, STEWARD, {**protection, "organization_id": OTHER_ORG}, STEWARD_SCOPES)
    assert by_steward["awaiting_approval"] is False


async def test_the_stewards_edit_of_a_waiting_service_does_not_approve_it(referral_pool: AsyncConnectionPool) -> None:
    """Only ``approve`` ends a wait: a steward fixing a typo has not reviewed who the service serves."""
    scoped = WRITE + " sensitive:child_protection"
    protection = shelter(category="CHILD_PROTECTION", minimum_age=None, maximum_age=17, regions=["07"])
    waiting = await save(referral_pool, OTHER_ORG, protection, scoped)
    edited = await save(referral_pool, STEWARD, {**protection, "id": waiting["id"], "version": 1,
                                                 "phone": "+223 76 11 11 11"}, STEWARD_SCOPES)
    assert (edited["version"], edited["awaiting_approval"]) == (2, True)
    async with referral_pool.connection() as conn:
        assert waiting["id"] not in [p.service_id for p in await store.providers(conn)]


async def test_an_organisation_takes_its_type_from_its_credentials_and_not_another_organisations_name(
        referral_pool: AsyncConnectionPool) -> None:
    """Consent may name a type of organisation ("state bodies"): an NGO that declared itself STATE
    would receive those referrals. And "UNICEF Mali" on another's services passes them off as UNICEF's."""
    await save(referral_pool, "unicef", shelter(organization_name="UNICEF Mali"))
    counting = CountingPool(referral_pool)
    as_state = await refused(counting, OTHER_ORG, shelter(organization_type="STATE"))
    assert (as_state.code, as_state.field) == ("FORBIDDEN", "organization_type")
    for name in ("UNICEF Mali", "unicef  mali", "Unicéf-Mali"):
        posing = await refused(counting, OTHER_ORG, shelter(organization_name=name))
        assert (posing.code, posing.field) == ("CONFLICT", "organization_name")
    assert [s for s in counting.statements if s.lstrip().lower().startswith(
        ("insert into referral.", "update referral.services", "update referral.organizations"))] == []
    denied = [r["operation"] for r in await audit_rows(referral_pool, "referral") if r["outcome"] == "denied"]
    assert denied == ["directory.save"] * 4
    # Its own type and a name of its own are fine; the steward settles names and types for anyone.
    mine = await save(referral_pool, OTHER_ORG, shelter(organization_type="NGO", organization_name="Croix-Rouge malienne"))
    assert mine["organization_name"] == "Croix-Rouge malienne"
    renamed = await save(referral_pool, STEWARD, shelter(organization_id="unicef", organization_name="UNICEF",
                                                         organization_type="INTERNATIONAL"), STEWARD_SCOPES)
    assert renamed["organization_name"] == "UNICEF"
    async with referral_pool.connection() as conn:
        org = await conn.execute("select org_type from referral.organizations where id = 'unicef'")
        assert (await org.fetchone())["org_type"] == "INTERNATIONAL"


async def test_the_hsds_organisations_name_only_organisations_the_caller_sees_a_service_of(
        referral_pool: AsyncConnectionPool) -> None:
    """An organisation known only by a waiting or hidden service is not listed, counted or found: the
    list would otherwise say that it runs a child-protection service somewhere."""
    await save(referral_pool, SHELTER_ORG, shelter())
    scoped = WRITE + " sensitive:child_protection"
    await save(referral_pool, OTHER_ORG, shelter(category="CHILD_PROTECTION", minimum_age=None, maximum_age=17),
               scoped)
    reader = principal("unhcr", "directory:read sensitive:child_protection")
    listed = await call(REFERRAL, "hsds_organizations", referral_pool, reader, {"per_page": 50})
    assert ([o["alternate_name"] for o in listed["contents"]], listed["total_items"]) == ([SHELTER_ORG], 1)
    [croix_rouge] = [o for o in (await call(REFERRAL, "hsds_organizations", referral_pool,
                                            principal(STEWARD, STEWARD_SCOPES), {}))["contents"]
                     if o["alternate_name"] == OTHER_ORG]
    assert (await refused(referral_pool, "unhcr", {"id": croix_rouge["id"]}, "directory:read sensitive:child_protection",
                          "hsds_organization")).code == "NOT_FOUND"
    own = await call(REFERRAL, "hsds_organizations", referral_pool, principal(OTHER_ORG, WRITE), {})
    assert OTHER_ORG in [o["alternate_name"] for o in own["contents"]]
