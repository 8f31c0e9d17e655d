"""The demo directory, seeded as organisations save it, answered in HSDS 3 by the referral service's
endpoints (the documents the gateway's /hsds API passes on), validated against the official schemas.
Also: seeding twice changes nothing, and every category of the immediate reception package has a
provider in Bamako or Gao (or a national one)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from devstack.platform import DEMO_DATA
from services.referral.app import APP as REFERRAL
from services.referral.seed import seed_organisation
from tests.hsds_schemas import page_problems, problems
from tests.integration.services import call, principal

RECEPTION_PACKAGE = ["RECEPTION", "FOOD", "SHELTER", "NON_FOOD_ITEMS", "HEALTH_CARE", "ONWARD_TRANSPORT",
                     "CASH_ALLOWANCE"]
READER = principal("dgme", "directory:read sensitive:health sensitive:gbv sensitive:trafficking "
                           "sensitive:child_protection")


async def seed_demo(pool: AsyncConnectionPool) -> int:
    return sum([await seed_organisation(pool, org) for org in json.loads(DEMO_DATA.read_text())["organisations"]])


async def counts(pool: AsyncConnectionPool) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cur = await conn.execute("select (select count(*) from referral.outbox) as events,"
                                 " (select count(*) from referral.audit_log) as audit,"
                                 " (select sum(version) from referral.services) as versions,"
                                 " (select count(*) from referral.service_locations) as places")
        row = await cur.fetchone()
    assert row is not None
    return tuple(row.values())


@pytest.fixture
async def demo(referral_pool: AsyncConnectionPool) -> AsyncConnectionPool:
    await seed_demo(referral_pool)
    return referral_pool


async def test_seeding_the_demo_directory_twice_changes_nothing(demo: AsyncConnectionPool) -> None:
    before = await counts(demo)
    assert before[0] > 0
    await seed_demo(demo)
    assert await counts(demo) == before


async def test_every_reception_package_category_has_a_national_or_bamako_or_gao_provider(
        demo: AsyncConnectionPool) -> None:
    for category in RECEPTION_PACKAGE:
        for region in ("00", "07"):
            found = await call(REFERRAL, "directory_services", demo, READER, {"category": category, "region": region})
            assert found["nodes"], f"no {category} provider covering region {region}"


async def test_every_hsds_answer_about_the_demo_directory_validates_against_the_official_schemas(
        demo: AsyncConnectionPool) -> None:
    seen, page = [], 1
    while True:
        answer = await call(REFERRAL, "hsds_services", demo, READER, {"page": page, "per_page": 7})
        assert page_problems(answer, "service") == []
        seen += answer["contents"]
        if answer["last_page"]:
            break
        page += 1
    assert len(seen) == answer["total_items"] >= 15 and page == answer["total_pages"]
    for entry in seen:
        full = await call(REFERRAL, "hsds_service", demo, READER, {"id": entry["id"]})
        assert problems("service", full) == [], full["name"]
    organizations = await call(REFERRAL, "hsds_organizations", demo, READER, {"per_page": 100})
    assert page_problems(organizations, "organization") == []
    for org in organizations["contents"]:
        one = await call(REFERRAL, "hsds_organization", demo, READER, {"id": org["id"]})
        assert problems("organization", one) == []
        assert all(problems("service", s) == [] for s in one["services"])


async def test_a_shelter_maps_to_hsds_with_its_capacity_area_hours_and_place(demo: AsyncConnectionPool) -> None:
    found = await call(REFERRAL, "directory_services", demo, READER, {"category": "SHELTER", "region": "00"})
    [shelter] = found["nodes"]
    doc = await call(REFERRAL, "hsds_service", demo, READER, {"id": shelter["id"]})
    [capacity] = doc["capacities"]
    assert (capacity["available"], capacity["maximum"], capacity["unit"]["name"]) == (40, 60, "bed")
    assert [a["name"] for a in doc["service_areas"]] == ["District de Bamako"]
    assert doc["schedules"][0]["byday"] == "MO,TU,WE,TH,FR,SA,SU"
    [place] = doc["service_at_locations"]
    assert place["location"]["addresses"][0]["city"] == "Bamako" and place["location"]["latitude"] == 12.6623
    assert doc["attributes"][0]["taxonomy_term"]["code"] == "SHELTER"
    assert doc["languages"] == [{"id": doc["languages"][0]["id"], "service_id": doc["id"], "name": "French",
                                 "code": "fr"}]


async def test_the_conformance_check_fails_on_a_missing_required_field_or_a_wrong_type(
        demo: AsyncConnectionPool) -> None:
    found = await call(REFERRAL, "directory_services", demo, READER, {"category": "SHELTER", "region": "00"})
    doc = await call(REFERRAL, "hsds_service", demo, READER, {"id": found["nodes"][0]["id"]})
    assert problems("service", {k: v for k, v in doc.items() if k != "status"}) == ["(root): 'status' is a required property"]
    broken = {**doc, "capacities": [{**doc["capacities"][0], "available": "40"}]}
    assert problems("service", broken) == ["capacities/0/available: '40' is not of type 'number'"]
    assert problems("service", {**doc, "id": "ame-shelter"}) == ["id: 'ame-shelter' is not a 'uuid'"]


async def test_a_gbv_service_is_absent_from_hsds_answers_for_a_token_without_sensitive_gbv(
        demo: AsyncConnectionPool) -> None:
    without = principal("unhcr", "directory:read")
    answer = await call(REFERRAL, "hsds_services", demo, without, {"per_page": 100})
    categories = {e["name"] for e in answer["contents"]}
    assert "Prise en charge des survivantes de VBG" not in categories
    full = await call(REFERRAL, "hsds_services", demo, READER, {"per_page": 100})
    assert "Prise en charge des survivantes de VBG" in {e["name"] for e in full["contents"]}
    assert answer["total_items"] < full["total_items"]
