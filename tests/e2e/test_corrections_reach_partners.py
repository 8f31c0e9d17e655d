"""A correction reaches the partners (decision record 0025): screening completed after registration (an
offline capture corrected, ``updateCase``) sends the case to the provider the new flag calls for, once,
and the provider sees it in its incoming referrals. Through the public API, with every service running."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

UPDATE = ("mutation($case: ID!, $version: Int!, $input: CaseChangesInput!) { updateCase(caseId: $case, "
          "version: $version, input: $input) { id version vulnerabilities } }")
REFERRALS = "query($id: ID!) { case(id: $id) { referrals { serviceCategory status toOrganisation { id } } } }"
INCOMING = "{ incomingReferrals(first: 50) { nodes { caseId serviceCategory } } }"


def referrals(api: Api, case_id: str) -> list[tuple[str, str | None]]:
    rows = api.gql("dgme", REFERRALS, {"id": case_id})["data"]["case"]["referrals"]
    return sorted((r["serviceCategory"], (r["toOrganisation"] or {}).get("id")) for r in rows)


def test_a_trafficking_flag_added_by_correction_reaches_the_counter_trafficking_provider(api: Api) -> None:
    person: dict[str, Any] = arrival(givenName=f"Corrigee{uuid.uuid4().hex[:6]}", estimatedAge=28,
                                     vulnerabilities=[], destinationRegion="00",
                                     consent={"given": True, "recipientOrgIds": ["iom", "croix-rouge"]})
    case_id = api.register("dgme", person)["data"]["registerArrival"]["id"]
    routed = eventually(lambda: referrals(api, case_id))  # the reception package
    assert "COUNTER_TRAFFICKING" not in {c for c, _ in routed}

    done = api.gql("dgme", UPDATE, {"case": case_id, "version": 1, "input": {"vulnerabilities": ["TRAFFICKING_VICTIM"]}})
    assert done["data"]["updateCase"]["version"] == 2, done

    def referred_on() -> list[tuple[str, str | None]] | None:
        now = referrals(api, case_id)
        return now if ("COUNTER_TRAFFICKING", "iom") in now else None

    after = eventually(referred_on)
    assert sorted(set(after) - set(routed)) == [("COUNTER_TRAFFICKING", "iom")] and len(after) == len(routed) + 1
    incoming = api.gql("iom", INCOMING)["data"]["incomingReferrals"]["nodes"]  # newest first
    assert {"caseId": case_id, "serviceCategory": "COUNTER_TRAFFICKING"} in incoming
