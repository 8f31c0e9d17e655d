"""End to end: every new arrival gets the immediate reception package, and a need no directory
service fits is not dropped: it is an UNASSIGNED referral with its reason, listed in
``unassignedNeeds`` for the registering organisation and the coordinating body (dgme), both of
which are notified.

AME registers a man arriving at a border post (no known region: only national services can serve
him there) and going home to Gao. The demo directory decides which of his needs find a provider;
the test reads it to know which needs the owner serves itself, and needs at least one unmet.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

PACKAGE = {"RECEPTION", "FOOD", "SHELTER", "NON_FOOD_ITEMS", "ONWARD_TRANSPORT", "CASH_ALLOWANCE"}
REFERRALS = """query($id: ID!) { case(id: $id) { referrals { id status serviceCategory reasonCode ruleId rulesVersion
  origin unassignedReason serviceId toOrganisation { id } } } }"""
UNASSIGNED = """query($after: String) { unassignedNeeds(first: 100, after: $after) {
  nodes { id caseId status serviceCategory unassignedReason toOrganisation { id } } pageInfo { hasNextPage endCursor } } }"""
NOTIFICATIONS = """query($after: String) { notifications(first: 100, after: $after) {
  nodes { kind referralId title titleEn: title(lang: "en") } pageInfo { hasNextPage endCursor } } }"""


def pages(api: Api, org: str, query: str, field: str, until: set[str] | None = None) -> list[dict[str, Any]]:
    """Walk ``field``'s pages (newest first); stop early once every id/referralId in ``until`` was seen."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        body = api.gql(org, query, {"after": after})
        assert not body.get("errors"), body
        page = body["data"][field]
        nodes += page["nodes"]
        seen = {n.get("id") for n in nodes} | {n.get("referralId") for n in nodes}
        if not page["pageInfo"]["hasNextPage"] or (until is not None and until <= seen):
            return nodes
        after = page["pageInfo"]["endCursor"]
    return nodes


@pytest.fixture(scope="module")
def returnee(api: Api) -> dict[str, Any]:
    case_id = api.register("ame", arrival(givenName=f"Drissa{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=27,
                                          arrivalPoint="BORDER_POST", destinationRegion="07", vulnerabilities=[],
                                          consent={"given": True, "recipientOrgIds": ["iom"]})
                           )["data"]["registerArrival"]["id"]
    with psycopg.connect(api.platform.database_url) as conn:
        in_house = {r[0] for r in conn.execute(
            "select category from referral.services where organization_id = 'ame' and status = 'active'"
            " and regions = '{}'").fetchall()}
    expected = PACKAGE - in_house  # not yet home (arrival region unknown): shelter and onward transport too
    referrals = eventually(lambda: [r for r in api.gql("ame", REFERRALS, {"id": case_id})["data"]["case"]["referrals"]
                                    if r["serviceCategory"] in PACKAGE] or None)
    return {"case_id": case_id, "referrals": referrals, "expected": expected}


def test_a_new_arrival_gets_the_immediate_reception_package(returnee: dict[str, Any]) -> None:
    referrals = returnee["referrals"]
    assert {r["serviceCategory"] for r in referrals} == returnee["expected"]
    assert len(referrals) == len(returnee["expected"])  # one per need
    for r in referrals:
        assert r["ruleId"] == r["reasonCode"] and r["ruleId"].startswith("IMMEDIATE_")
        assert (r["origin"], r["rulesVersion"]) == ("RULE", "2026-12-01.1")
        if r["status"] == "UNASSIGNED":
            assert r["toOrganisation"] is None and r["serviceId"] is None and r["unassignedReason"]
        else:
            assert r["toOrganisation"] and r["serviceId"] and r["unassignedReason"] is None


def test_an_unmet_need_is_listed_for_the_registering_organisation_and_the_coordinator(
        api: Api, returnee: dict[str, Any]) -> None:
    unmet = {r["id"]: r for r in returnee["referrals"] if r["status"] == "UNASSIGNED"}
    assert unmet, "the demo directory serves every need at a border post: nothing unmet to show"
    for org in ("ame", "dgme"):
        listed = {n["id"]: n for n in pages(api, org, UNASSIGNED, "unassignedNeeds", set(unmet))
                  if n["caseId"] == returnee["case_id"]}
        assert set(listed) == set(unmet), org
        for need_id, need in listed.items():
            assert (need["status"], need["serviceCategory"], need["unassignedReason"]) == (
                "UNASSIGNED", unmet[need_id]["serviceCategory"], unmet[need_id]["unassignedReason"])
    # Nobody else sees them.
    for org in ("unicef", "iom"):
        assert not [n for n in pages(api, org, UNASSIGNED, "unassignedNeeds") if n["caseId"] == returnee["case_id"]]


def test_the_registering_organisation_and_the_coordinator_are_notified_of_each_unmet_need(
        api: Api, returnee: dict[str, Any]) -> None:
    unmet = {r["id"] for r in returnee["referrals"] if r["status"] == "UNASSIGNED"}
    assert unmet
    def told(org: str) -> list[dict[str, Any]] | None:
        found = [n for n in pages(api, org, NOTIFICATIONS, "notifications", unmet) if n["referralId"] in unmet]
        return found if {n["referralId"] for n in found} == unmet else None

    for org in ("ame", "dgme"):
        notices = eventually(lambda org=org: told(org))
        assert len(notices) == len(unmet), notices  # one each, not duplicated
        assert {n["kind"] for n in notices} == {"referral.unassigned"}
        assert all(n["title"].startswith("Besoin sans prestataire") and n["titleEn"].startswith("Unmet need")
                   for n in notices)
    assert not [n for n in pages(api, "unicef", NOTIFICATIONS, "notifications") if n["referralId"] in unmet]
