"""People already known, end to end through the public API (issue 10, item 4; decision record 0022):
a known person registered again is offered as a match with reasons, merged and un-merged; an
organisation without access to the earlier case learns nothing of it; the steward is told."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

LOOKUP = """query($input: MatchPersonInput!) { matchCandidates(input: $input) {
  score reasons { code text } case { id givenName familyName } } }"""
CASE = """query($id: ID!) { case(id: $id) { id redirectedFrom mergedFrom
  matchCandidates { score reasons { code text } case { id } } } }"""
MERGE = """mutation($survivor: ID!, $merged: ID!) { mergeCases(survivorId: $survivor, mergedId: $merged,
  reason: "Même personne : même téléphone, même date de naissance") { id survivorId mergedId undoneAt } }"""
UNDO = "mutation($id: ID!) { undoMerge(mergeId: $id) { id undoneAt } }"
FOLLOWUP = "query($id: ID!) { followupCase(caseId: $id) { status closureReason } }"
NEWEST_NOTICES = "{ notifications(first: 100) { nodes { kind caseId titleEn: title(lang: \"en\") } } }"
REFERRAL_IDS = "query($id: ID!) { case(id: $id) { referrals { id } } }"
DUPLICATES = "{ possibleDuplicates(status: OPEN, first: 100) { nodes { id caseId otherCaseId caseOwnerOrgId " \
             "otherOwnerOrgId score reasons status } } }"


def someone() -> tuple[str, str]:
    """A family name no other test uses, with an accent, and a phone number of its own."""
    letters = "".join(random.choices(string.ascii_lowercase, k=8))
    return f"{letters[:3].capitalize()}ï{letters[3:]}", "+22376" + "".join(random.choices(string.digits, k=6))


def first_time(surname: str, phone: str, **overrides: Any) -> dict[str, Any]:
    return arrival(givenName="Mahamadou", familyName=surname, sex="MALE", estimatedAge=None,
                   dateOfBirth="1994-05-12", phoneNumbers=[phone], placeOfOrigin="Kita", destinationRegion="02",
                   vulnerabilities=[], **overrides)


def written_again(surname: str, phone: str) -> dict[str, Any]:
    """The same person at the next check-in: no accent, another transliteration, names swapped, an age."""
    return {"givenName": surname.replace("ï", "i"), "familyName": "Mohamed", "sex": "MALE", "estimatedAge": 32,
            "phoneNumbers": [phone[4:]], "destinationRegion": "02"}


def referral_ids(api: Api, case_id: str) -> set[str]:
    return {r["id"] for r in data(api.gql("dgme", REFERRAL_IDS, {"id": case_id}))["case"]["referrals"]}


def followup_state(api: Api, case_id: str) -> tuple[str, str | None]:
    case = data(api.gql("dgme", FOLLOWUP, {"id": case_id}))["followupCase"]
    return case["status"], case["closureReason"]


def told(api: Api, org: str, case_id: str) -> list[tuple[str, str]]:
    """(kind, English title) of the newest notifications ``org`` holds about the case, oldest first."""
    nodes = data(api.gql(org, NEWEST_NOTICES))["notifications"]["nodes"]
    return [(n["kind"], n["titleEn"]) for n in reversed(nodes) if n["caseId"] == case_id]


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    return body["data"]


def test_a_known_person_registered_again_is_offered_merged_and_unmerged(api: Api) -> None:
    surname, phone = someone()
    earlier = data(api.register("dgme", first_time(surname, phone)))["registerArrival"]["id"]

    # Before registering: the check-in screen asks.
    [candidate] = data(api.gql("dgme", LOOKUP, {"input": written_again(surname, phone)}))["matchCandidates"]
    assert candidate["case"]["id"] == earlier and candidate["score"] >= 0.7
    reasons = {r["code"]: r["text"] for r in candidate["reasons"]}
    assert reasons["NAME_VARIANT"] == "Mohamed ~ Mahamadou" and "NAME_ORDER_SWAPPED" in reasons
    assert {"AGE_CLOSE", "SAME_PHONE"} <= set(reasons)

    # Registered anyway (never merged automatically): the new case is offered its earlier one.
    again = {**written_again(surname, phone), "givenName": "Mohamed", "familyName": surname.replace("ï", "i")}
    later = data(api.register("dgme", arrival(**{**again, "vulnerabilities": []})))["registerArrival"]["id"]
    case = data(api.gql("dgme", CASE, {"id": later}))["case"]
    assert [c["case"]["id"] for c in case["matchCandidates"]] == [earlier]

    routed_later = eventually(lambda: referral_ids(api, later))  # its reception package, before the merge
    merge = data(api.gql("dgme", MERGE, {"survivor": earlier, "merged": later}))["mergeCases"]
    assert (merge["survivorId"], merge["mergedId"], merge["undoneAt"]) == (earlier, later, None)
    redirected = data(api.gql("dgme", CASE, {"id": later}))["case"]
    assert (redirected["id"], redirected["redirectedFrom"]) == (earlier, later)
    assert redirected["mergedFrom"] == [later] and redirected["matchCandidates"] == []
    again_merged = api.gql("dgme", MERGE, {"survivor": earlier, "merged": later})
    assert [e["extensions"]["code"] for e in again_merged["errors"]] == ["CONFLICT"]
    # The survivor's referrals include those made for the merged registration.
    survivor_now = referral_ids(api, earlier)
    eventually(lambda: survivor_now | routed_later <= referral_ids(api, earlier))
    # The same return registered twice: one follow-up, the survivor's (decision record 0026).
    eventually(lambda: followup_state(api, later) == ("CLOSED", "MERGED"))
    assert followup_state(api, earlier) == ("OPEN", None)
    merged_notice = ("followup.case_merged", "Follow-up closed: registration merged into another of the same return")
    eventually(lambda: merged_notice in told(api, "dgme", later))  # its manager did not close it

    undone = data(api.gql("dgme", UNDO, {"id": merge["id"]}))["undoMerge"]
    assert undone["undoneAt"] is not None
    restored = data(api.gql("dgme", CASE, {"id": later}))["case"]
    assert (restored["id"], restored["redirectedFrom"], restored["mergedFrom"]) == (later, None, [])
    eventually(lambda: followup_state(api, later) == ("OPEN", None))
    eventually(lambda: [k for k, _ in told(api, "dgme", later) if k.startswith("followup.")]
               == ["followup.case_merged", "followup.merge_undone"])
    twice = api.gql("dgme", UNDO, {"id": merge["id"]})
    assert [e["extensions"]["code"] for e in twice["errors"]] == ["CONFLICT"]
    itself = api.gql("dgme", MERGE, {"survivor": earlier, "merged": earlier})
    assert [e["extensions"]["code"] for e in itself["errors"]] == ["BAD_USER_INPUT"]


def test_an_organisation_without_access_learns_nothing_and_the_steward_reconciles(api: Api) -> None:
    surname, phone = someone()
    looked_up = {"input": written_again(surname, phone)}
    before = api.gql("ame", LOOKUP, looked_up)
    earlier = data(api.register("dgme", first_time(surname, phone)))["registerArrival"]["id"]
    after = api.gql("ame", LOOKUP, looked_up)
    assert before == after == {"data": {"matchCandidates": []}}

    # AME registers the person: its answer is a registration like any other, nothing about DGME's case.
    again = {**written_again(surname, phone), "givenName": "Mohamed", "familyName": surname.replace("ï", "i")}
    registered = api.register("ame", arrival(**{**again, "vulnerabilities": [], "consent": {"given": True}}))
    later = data(registered)["registerArrival"]["id"]
    assert earlier not in str(registered) and "dgme" not in str(registered)
    assert data(api.gql("ame", CASE, {"id": later}))["case"]["matchCandidates"] == []

    # The steward sees the possible duplicate: ids, organisations, score and reason codes, no identity.
    [row] = [r for r in data(api.gql("segin-steward", DUPLICATES))["possibleDuplicates"]["nodes"]
             if r["caseId"] == later]
    assert (row["otherCaseId"], row["caseOwnerOrgId"], row["otherOwnerOrgId"]) == (earlier, "ame", "dgme")
    assert "NAME_VARIANT" in row["reasons"] and surname.lower() not in str(row).lower()
    merged = data(api.gql("segin-steward", MERGE, {"survivor": earlier, "merged": later}))["mergeCases"]
    assert merged["survivorId"] == earlier
    # AME asking for its merged case meets the survivor's rules: no such case for it, as for any other.
    refused = api.gql("ame", CASE, {"id": later})
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["NOT_FOUND"] and surname not in str(refused)
    data(api.gql("segin-steward", UNDO, {"id": merged["id"]}))
    assert data(api.gql("ame", CASE, {"id": later}))["case"]["id"] == later


WALK_IN = """mutation($group: ID!, $key: String!, $input: CheckInInput!, $first: Int!) {
  checkIn(groupId: $group, idempotencyKey: $key, input: $input) { case { id ...Known } } }
fragment Known on Case { best: matchCandidates(first: 1) { score case { id } }
  all: matchCandidates(first: $first) { score reasons { code } case { id } } }"""


def test_a_check_in_is_answered_with_the_candidates_a_lookup_of_its_case_gives(api: Api) -> None:
    """The check-in answers its candidates from its own lookup (aliases, a fragment, a literal and a variable
    ``first``): the same as asking for the case's candidates afterwards."""
    from tests.e2e.test_manifest_checkin_e2e import GROUP

    surname, phone = someone()
    earlier = data(api.register("dgme", first_time(surname, phone)))["registerArrival"]["id"]
    also = data(api.register("dgme", {**first_time(surname, phone), "givenName": "Mohamed"}))["registerArrival"]["id"]
    group = data(api.gql("dgme", GROUP, {"key": str(random.random())}))["createArrivalGroup"]["id"]
    person = {**written_again(surname, phone), "consent": {"given": True, "recipientOrgIds": ["unicef"]}}
    case = data(api.gql("dgme", WALK_IN, {"group": group, "key": str(random.random()), "input": person,
                                          "first": 5}))["checkIn"]["case"]
    asked = data(api.gql("dgme", CASE, {"id": case["id"]}))["case"]["matchCandidates"]
    assert [(c["score"], c["case"]["id"]) for c in case["all"]] == [(c["score"], c["case"]["id"]) for c in asked]
    assert {earlier, also} <= {c["case"]["id"] for c in asked} and case["best"] == [
        {"score": asked[0]["score"], "case": {"id": asked[0]["case"]["id"]}}]
    assert [[r["code"] for r in c["reasons"]] for c in case["all"]] == [[r["code"] for r in c["reasons"]]
                                                                         for c in asked]
    # More than a lookup may answer: refused as the case's own matchCandidates refuses it.
    too_many = api.gql("dgme", WALK_IN, {"group": group, "key": str(random.random()), "input": person, "first": 21})
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", too_many
