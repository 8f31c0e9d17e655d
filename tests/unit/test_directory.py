"""The directory's pure rules: what a save may say (by field), who may see and maintain which
service, what a save changes, and how a service reads in HSDS 3 (checked against the official schema)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.commands import SaveDirectoryService
from contracts.reference import ServiceCategory
from contracts.replies import DirectoryServiceView
from kernel.errors import field_problems
from kernel.tokens import Principal
from services.referral import directory, hsds
from tests.hsds_schemas import page_problems, problems

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def caller(org: str, *scopes: str) -> Principal:
    return Principal(subject=f"user:{org}", org_id=org, client_id="c", scopes=frozenset(scopes), jti="j", token="")


def command(**overrides: Any) -> SaveDirectoryService:
    return SaveDirectoryService.model_validate({"name_fr": "Centre de transit de Gao", "category": "SHELTER",
                                                "regions": ["07"], **overrides})


def first_problem(**overrides: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        command(**overrides)
    problem = field_problems(caught.value)[0]
    return problem.field, problem.message


def test_each_bad_value_is_named_by_its_field() -> None:
    assert first_problem(regions=["07", "42"]) == ("regions.1", "unknown region code; expected one of 00, 01, 02, "
                                                   "03, 04, 05, 06, 07, 08, 09, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19")
    assert first_problem(minimum_age=60, maximum_age=18) == ("maximum_age", "maximum age must be at least the minimum age")
    assert first_problem(minimum_age=-1)[0] == "minimum_age"
    assert first_problem(locations=[{"latitude": 91, "longitude": 0}])[0] == "locations.0.latitude"
    assert first_problem(locations=[{"longitude": -7.9}]) == ("locations.0.longitude",
                                                               "give latitude and longitude together, or neither")
    assert first_problem(capacity={"available": 70, "maximum": 60})[0] == "capacity.maximum"
    assert first_problem(capacity={"available": -1})[0] == "capacity.available"
    assert first_problem(hours=[{"days": ["MO", "MO"], "opens_at": "08:00", "closes_at": "12:00"}])[0] == "hours.0.days"
    assert first_problem(hours=[{"days": ["MO"], "opens_at": "8h", "closes_at": "12:00"}])[0] == "hours.0.opens_at"
    assert first_problem(url="javascript:alert(1)")[0] == "url"
    assert first_problem(name_fr=" \u200b ")[0] == "name_fr"
    assert first_problem(expected_duration_days=0)[0] == "expected_duration_days"
    assert first_problem(status="closed")[0] == "status"
    assert first_problem(extra="x")[0] == "extra"


def test_lists_are_kept_once_and_in_order() -> None:
    saved = command(regions=["10", "07", "07"], vulnerabilities=["PREGNANT", "GBV_SURVIVOR"],
                    hours=[{"days": ["FR", "MO"], "opens_at": "08:00", "closes_at": "17:00"}])
    assert saved.regions == ["07", "10"] and [v.value for v in saved.vulnerabilities] == ["GBV_SURVIVOR", "PREGNANT"]
    assert [d.value for d in saved.hours[0].days] == ["MO", "FR"]


def stored(**overrides: Any) -> dict[str, Any]:
    """A service row as the store returns it, made from a command."""
    values = directory.values_of(command(**overrides))
    return {**values, "id": uuid.uuid4(), "organization_id": "croix-rouge", "organization_name": "Croix-Rouge malienne",
            "organization_type": "NGO", "expected_duration": timedelta(days=values["expected_duration"])
            if values["expected_duration"] else None, "capacity_updated_at": NOW if values["capacity_available"]
            is not None else None, "capacity_updated_by": "user:croix-rouge", "version": 3, "created_at": NOW,
            "updated_at": NOW, "updated_by": "user:croix-rouge", "approved": True}


def test_a_save_that_says_what_is_stored_changes_nothing() -> None:
    row = stored(expected_duration_days=5, capacity={"available": 12, "maximum": 30}, regions=["10", "07"])
    assert directory.stored_values(row) == directory.values_of(
        command(expected_duration_days=5, capacity={"available": 12, "maximum": 30}, regions=["07", "10"]))
    assert directory.stored_values(row) != directory.values_of(command(expected_duration_days=6,
                                                                       capacity={"available": 12, "maximum": 30}))
    assert not directory.capacity_changed(row, directory.values_of(command(capacity={"available": 12, "maximum": 30})))
    assert directory.capacity_changed(row, directory.values_of(command(capacity={"available": 11, "maximum": 30})))


def test_who_may_maintain_and_who_may_see_a_service() -> None:
    gbv = stored(category="GBV_RESPONSE")
    assert directory.may_maintain(caller("croix-rouge", "directory:write"), "croix-rouge")
    assert not directory.may_maintain(caller("ame", "directory:write"), "croix-rouge")
    assert directory.may_maintain(caller("segin-steward", "directory:write", "directory:manage"), "croix-rouge")
    assert not directory.visible(gbv, caller("ame", "directory:read"))
    assert directory.visible(gbv, caller("ame", "directory:read", "sensitive:gbv"))
    assert directory.visible(gbv, caller("croix-rouge", "directory:read"))
    assert directory.visible(gbv, caller("segin-steward", "directory:read", "directory:manage"))
    assert directory.visible(stored(category="FOOD"), caller("ame", "directory:read"))
    pending = {**gbv, "approved": False}  # awaiting approval: its organisation and the steward only
    assert not directory.visible(pending, caller("ame", "directory:read", "sensitive:gbv"))
    assert directory.visible(pending, caller("croix-rouge", "directory:read"))
    assert directory.visible(pending, caller("segin-steward", "directory:read", "directory:manage"))


def test_describing_a_sensitive_service_needs_its_scope_and_who_it_serves_needs_the_stewards_approval() -> None:
    owner = caller("croix-rouge", "directory:write", "sensitive:gbv")
    steward = caller("segin-steward", "directory:write", "directory:manage")
    gbv, food = ServiceCategory.GBV_RESPONSE, ServiceCategory.FOOD
    refusal = directory.scope_refusal(caller("croix-rouge", "directory:write"), gbv)
    assert refusal is not None and (refusal.code, refusal.field) == ("INSUFFICIENT_SCOPE", "category")
    assert directory.scope_refusal(owner, gbv) is None and directory.scope_refusal(steward, gbv) is None
    assert directory.scope_refusal(caller("croix-rouge", "directory:write"), food) is None
    old = directory.stored_values(stored(category="GBV_RESPONSE"))
    assert directory.approved_after_save(owner, food, None, old, False)  # not sensitive: no approval needed
    assert not directory.approved_after_save(owner, gbv, None, old, False)  # a new sensitive service waits
    assert directory.approved_after_save(steward, gbv, None, old, False)  # unless the steward made it
    assert directory.approved_after_save(owner, gbv, old, old | {"phone": "+223 70 00 00 00"}, True)
    assert directory.approved_after_save(owner, gbv, old, old | {"status": "inactive"}, True)  # closing for now
    for change in ({"regions": ["01"]}, {"minimum_age": 5}, {"sexes": ["MALE"]},
                   {"vulnerabilities": ["ELDERLY"]}, {"maximum_age": 90}):
        assert not directory.approved_after_save(owner, gbv, old, old | change, True), change
    assert not directory.approved_after_save(owner, gbv, old, old | {"phone": "x"}, False)  # still waiting
    from_food = directory.stored_values(stored(category="FOOD"))
    assert not directory.approved_after_save(owner, gbv, from_food, old, True)  # turned sensitive: waits


def test_who_reported_capacity_is_shown_to_the_organisation_and_the_steward_only() -> None:
    row = stored(capacity={"available": 12, "maximum": 30})
    assert directory.service_view(row, [], caller("croix-rouge")).capacity.updated_by == "user:croix-rouge"
    assert directory.service_view(row, [], caller("segin-steward", "directory:manage")).capacity.updated_by
    assert directory.service_view(row, [], caller("ame")).capacity.updated_by is None


def test_the_change_event_carries_references_only() -> None:
    event = directory.changed_event(stored(capacity={"available": 12, "maximum": 30}, email="x@example.org"), "UPDATED")
    assert set(event.model_dump()) == {"service_id", "organization_id", "change", "category", "regions", "status",
                                       "capacity_available", "capacity_maximum", "version"}


def view(**overrides: Any) -> DirectoryServiceView:
    place = {"id": str(uuid.uuid4()), "position": 0, "name": "Centre de transit", "address_1": "Quartier Saneye",
             "city": "Gao", "region": "07", "latitude": 16.266, "longitude": -0.0535}
    row = stored(**{"hours": [{"days": ["MO", "TU"], "opens_at": "08:00", "closes_at": "17:00"}],
                    "capacity": {"available": 12, "maximum": 30}, "phone": "+223 21 82 00 00",
                    "minimum_age": 18, "sexes": ["FEMALE"], **overrides})
    return directory.service_view(row, [place], caller("croix-rouge"))


ORG = {"id": "croix-rouge", "name": "Croix-Rouge malienne", "org_type": "NGO", "description": None, "email": None,
       "website": None}


def test_a_service_in_hsds_has_its_capacity_area_hours_place_and_category() -> None:
    doc = hsds.service_doc(view(), ORG, full=True)
    assert problems("service", doc) == []
    assert doc["organization_id"] == hsds.organization_uuid("croix-rouge") == hsds.organization_uuid("croix-rouge")
    assert doc["eligibility_description"] == "Âge : 18 ans et plus; Sexe : FEMALE."
    assert doc["capacities"][0] | {"id": None, "unit": None} == {
        "id": None, "service_id": doc["id"], "available": 12, "maximum": 30, "updated": "2026-11-20T09:30:00.000Z",
        "unit": None}
    assert doc["service_areas"][0]["name"] == "Gao"
    assert (doc["schedules"][0]["byday"], doc["schedules"][0]["opens_at"]) == ("MO,TU", "08:00Z")
    address = doc["service_at_locations"][0]["location"]["addresses"][0]
    assert (address["city"], address["state_province"], address["country"]) == ("Gao", "Gao", "ML")
    assert doc["attributes"][0]["taxonomy_term"]["name"] == "Hébergement temporaire"
    national = hsds.service_doc(view(regions=[], capacity=None, phone=None, hours=[]), ORG, full=True)
    assert problems("service", national) == []
    assert [a["name"] for a in national["service_areas"]] == ["Mali"] and national["capacities"] == []
    assert national["phones"] == []


def test_every_category_has_hsds_labels() -> None:
    from contracts.reference import ServiceCategory
    assert set(hsds.CATEGORY_LABELS) == set(ServiceCategory)


def test_hsds_paging_fields() -> None:
    from contracts.commands import HsdsPageRequest
    page = hsds.page_of([hsds.organization_doc(ORG)], 11, HsdsPageRequest(page=3, per_page=5)).model_dump()
    assert page_problems(page, "organization") == []
    assert {k: page[k] for k in page if k != "contents"} == {
        "total_items": 11, "total_pages": 3, "page_number": 3, "size": 1, "first_page": False, "last_page": True,
        "empty": False}
    empty = hsds.page_of([], 0, HsdsPageRequest()).model_dump()
    assert (empty["empty"], empty["first_page"], empty["last_page"], empty["total_pages"]) == (True, True, True, 0)
