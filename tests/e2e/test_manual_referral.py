"""A case worker's referral, end to end, as the README's worked example shows it.

AME (an NGO) registers a man returned from Algeria who consented to sharing with IOM for referral;
an AME case worker refers him to IOM's business start-up service with a note. IOM accepts, then
completes with an outcome; AME sees the outcome. A second man gave no consent yet: the referral
waits (AWAITING_CONSENT) and goes live, and IOM is told, once AME records his consent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

REFER = """mutation Refer($input: ReferCaseInput!) {
  referCase(input: $input) { id status legalBasis origin note priority dueAt reasonCode toOrganisation { id } } }"""
INCOMING = """query($status: ReferralStatus) { incomingReferrals(first: 100, status: $status) {
  nodes { id caseId status note reasonCode priority overdue } } }"""
OUTGOING = """{ outgoingReferrals(first: 100) { nodes { id caseId status origin note madeBy acceptedAt outcomeCode
  outcomeDelivered outcomeDate } } }"""
ACCEPT = "mutation($id: ID!) { acceptReferral(id: $id) { id status acceptedAt } }"
COMPLETE = """mutation($id: ID!, $outcome: ReferralOutcomeInput) { completeReferral(id: $id, outcome: $outcome) {
  id status outcomeCode outcomeDelivered outcomeDate } }"""
CONSENT = """mutation($case: ID!, $consent: ConsentInput!) { recordConsent(caseId: $case, consent: $consent) {
  caseId } }"""
NOTIFICATIONS = "{ notifications(first: 100) { nodes { kind caseId referralId } } }"
COUNTS = "{ overdueCounts { orgId incomingNotAccepted acceptedWithoutOutcome outgoingOverdue byOrganisation { orgId } } }"
NOTE = "Souhaite ouvrir un atelier de mécanique moto à Kayes ; a travaillé 4 ans dans un garage à Alger."


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    return body["data"]


def service_id(platform: Platform, org: str, category: str) -> str:
    """The directory service's id (a case worker finds it in the directory)."""
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select id::text from referral.services where organization_id = %s and category = %s",
                           (org, category)).fetchone()
    assert row, (org, category)
    return row[0]


def man(consent: dict[str, Any]) -> dict[str, Any]:
    return arrival(givenName=f"Moussa{uuid.uuid4().hex[:6]}", familyName="Keïta", sex="MALE", estimatedAge=29,
                   countryReturnedFrom="DZ", destinationRegion="01", vulnerabilities=[], consent=consent)


def registered(api: Api, platform: Platform, consent: dict[str, Any]) -> str:
    """AME's new case, once the referral service has heard of it (from intake's event): until then a
    referral to it is NOT_FOUND, as for a case that does not exist."""
    case_id = data(api.register("ame", man(consent)))["registerArrival"]["id"]
    with psycopg.connect(platform.database_url) as conn:
        eventually(lambda: conn.execute("select 1 from referral.cases where case_id = %s", (case_id,)).fetchone())
    return case_id


def refer(api: Api, case_id: str, service: str, **extra: Any) -> dict[str, Any]:
    return api.gql("ame", REFER, {"input": {"caseId": case_id, "serviceId": service, "reasonCode": "LIVELIHOOD_SUPPORT",
                                            "priority": "NORMAL", "note": NOTE, "idempotencyKey": str(uuid.uuid4()),
                                            **extra}})


def test_a_case_worker_refers_iom_accepts_and_completes_and_ame_sees_the_outcome(api: Api, platform: Platform
                                                                                  ) -> None:
    case_id = registered(api, platform, {"given": True, "recipientOrgIds": ["iom"]})
    start_up = service_id(platform, "iom", "BUSINESS_START_UP")
    made = data(refer(api, case_id, start_up))["referCase"]
    assert (made["status"], made["legalBasis"], made["origin"], made["note"], made["toOrganisation"]) == (
        "PENDING", "CONSENT", "MANUAL", NOTE, {"id": "iom"})
    assert datetime.fromisoformat(made["dueAt"]) > datetime.now(UTC) + timedelta(days=6)

    # IOM is told, sees the referral with the note, and may now read the case.
    eventually(lambda: [n for n in data(api.gql("iom", NOTIFICATIONS))["notifications"]["nodes"]
                        if n["referralId"] == made["id"] and n["kind"] == "referral.received"])
    [incoming] = [r for r in data(api.gql("iom", INCOMING, {"status": "PENDING"}))["incomingReferrals"]["nodes"]
                  if r["id"] == made["id"]]
    assert (incoming["note"], incoming["reasonCode"], incoming["overdue"]) == (NOTE, "LIVELIHOOD_SUPPORT", False)
    eventually(lambda: api.gql("iom", "query($c: ID!) { case(id: $c) { id } }", {"c": case_id})["data"])

    accepted = data(api.gql("iom", ACCEPT, {"id": made["id"]}))["acceptReferral"]
    assert accepted["status"] == "ACCEPTED" and accepted["acceptedAt"]
    today = datetime.now(UTC).date().isoformat()
    done = data(api.gql("iom", COMPLETE, {"id": made["id"], "outcome": {
        "serviceDelivered": True, "deliveredOn": today, "outcomeCode": "START_UP_KIT_PROVIDED"}}))["completeReferral"]
    assert (done["status"], done["outcomeCode"], done["outcomeDelivered"], done["outcomeDate"]) == (
        "DONE", "START_UP_KIT_PROVIDED", True, today)

    [seen] = [r for r in data(api.gql("ame", OUTGOING))["outgoingReferrals"]["nodes"] if r["id"] == made["id"]]
    assert (seen["status"], seen["outcomeCode"], seen["outcomeDelivered"], seen["outcomeDate"], seen["note"]) == (
        "DONE", "START_UP_KIT_PROVIDED", True, today, NOTE)
    assert seen["madeBy"] and seen["acceptedAt"] == accepted["acceptedAt"]
    # A case that does not exist (or is not AME's to read) answers NOT_FOUND.
    assert [e["extensions"]["code"] for e in refer(api, str(uuid.uuid4()), start_up)["errors"]] == ["NOT_FOUND"]


def test_a_manual_referral_without_consent_waits_then_goes_live_when_consent_is_recorded(
        api: Api, platform: Platform) -> None:
    case_id = registered(api, platform, {"given": False})
    start_up = service_id(platform, "iom", "BUSINESS_START_UP")
    waiting = data(refer(api, case_id, start_up))["referCase"]
    assert (waiting["status"], waiting["legalBasis"]) == ("AWAITING_CONSENT", None)
    duplicate = refer(api, case_id, start_up)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in duplicate["errors"]] == [
        ("DUPLICATE", "input.serviceId")]
    assert waiting["id"] not in {r["id"] for r in data(api.gql("iom", INCOMING))["incomingReferrals"]["nodes"]}

    data(api.gql("ame", CONSENT, {"case": case_id, "consent": {"given": True, "recipientOrgIds": ["iom"],
                                                               "purposes": ["REFERRAL"]}}))
    live = eventually(lambda: [r for r in data(api.gql("iom", INCOMING))["incomingReferrals"]["nodes"]
                               if r["id"] == waiting["id"]])
    assert (live[0]["status"], live[0]["note"]) == ("PENDING", NOTE)
    eventually(lambda: [n for n in data(api.gql("iom", NOTIFICATIONS))["notifications"]["nodes"]
                        if n["referralId"] == waiting["id"] and n["kind"] == "referral.received"])
    [mine] = [r for r in data(api.gql("ame", OUTGOING))["outgoingReferrals"]["nodes"] if r["id"] == waiting["id"]]
    assert mine["status"] == "PENDING"


def test_overdue_counts_for_an_organisation_and_for_the_coordinating_body(api: Api) -> None:
    ame = data(api.gql("ame", COUNTS))["overdueCounts"]
    assert ame["orgId"] == "ame" and ame["byOrganisation"] is None
    assert min(ame["incomingNotAccepted"], ame["acceptedWithoutOutcome"], ame["outgoingOverdue"]) >= 0
    assert data(api.gql("dgme", COUNTS))["overdueCounts"]["byOrganisation"] is not None  # SEGIN_COORDINATOR_ORG


@pytest.mark.parametrize("change,field", [
    ({"reasonCode": "pour un atelier"}, "input.reasonCode"),
    ({"note": "x" * 2001}, "input.note"),
    ({"dueInHours": 0}, "input.dueInHours"),
    ({"dueAt": "2020-01-01T00:00:00Z"}, "input.dueAt"),  # decided by the service, with its clock
])
def test_bad_referral_input_names_the_field_and_refers_nobody(api: Api, platform: Platform, change: dict[str, Any],
                                                              field: str) -> None:
    case_id = registered(api, platform, {"given": True, "recipientOrgIds": ["iom"]})
    body = refer(api, case_id, service_id(platform, "iom", "BUSINESS_START_UP"), **change)
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [("BAD_USER_INPUT", field)]
    with psycopg.connect(platform.database_url) as conn:
        (count,) = conn.execute("select count(*) from referral.referrals where case_id = %s and origin = 'MANUAL'",
                                (case_id,)).fetchone()
    assert count == 0  # the reception package's referrals (origin RULE) are not this test's
