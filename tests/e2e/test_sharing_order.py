"""Sharing changes in order, end to end: a late sharing_changed (its first delivery failed and was
retried after a later change went through) never restores withdrawn coverage (decision record 0020).

From the security review of follow-up (review2), finding "a late sharing_changed event restores
withdrawn coverage".
"""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import psycopg
import pytest

from contracts.channels import SHARING_CHANGED
from tests.e2e.conftest import Api, arrival, eventually
from tests.e2e.test_followup import FOLLOWUP, SAVE, followup
from tests.e2e.test_review_followup_attacks import GOALS, WITHDRAW, handed, hidden_from

pytestmark = pytest.mark.e2e

CONSENT = """mutation($case: ID!, $consent: ConsentInput!) { recordConsent(caseId: $case, consent: $consent) {
  sharing { id recipientOrgIds purposes withdrawnAt } } }"""


def _sharing_events(api: Api, case_id: str) -> list[dict]:
    with psycopg.connect(api.platform.database_url) as conn:
        rows = conn.execute("select envelope from intake.outbox where envelope->>'subject' = %s"
                            " and envelope->>'type' = %s order by created_at",
                            (case_id, SHARING_CHANGED.event_type)).fetchall()
    return [r[0] for r in rows]


def _followup_recipients(api: Api, case_id: str) -> list[str]:
    with psycopg.connect(api.platform.database_url) as conn:
        [(recipients,)] = conn.execute("select followup_recipients from followup.cases where case_id = %s",
                                       (case_id,)).fetchall()
    return [r["org_id"] for r in recipients]


def test_a_late_sharing_changed_does_not_restore_withdrawn_follow_up_coverage(api: Api) -> None:
    """The follow-up service keeps the coverage of whichever sharing_changed it handled last, with no
    order: an earlier event handled after a later one (its first delivery failed and was retried
    with a delay, while the next message of the batch went through: kernel.bus naks and moves on)
    restores the consent that was withdrawn, and the previous manager reads the plan again.

    Simulated faithfully: the earlier event's inbox row is removed (as its failed first attempt left
    none) and the very same envelope is delivered again on its subject."""
    body = api.register("dgme", arrival(givenName=f"Tard{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=30,
                                        vulnerabilities=[],
                                        consent={"given": True, "recipientOrgIds": ["unicef"], "purposes": ["REFERRAL"]}))
    case_id = body["data"]["registerArrival"]["id"]
    eventually(lambda: not api.gql("dgme", FOLLOWUP, {"case": case_id}).get("errors"))
    recorded = api.gql("dgme", CONSENT, {"case": case_id, "consent": {
        "given": True, "recipientOrgIds": ["iom"], "purposes": ["FOLLOW_UP"]}})
    consent_id = next(s["id"] for s in recorded["data"]["recordConsent"]["sharing"] if s["recipientOrgIds"] == ["iom"])
    eventually(lambda: _followup_recipients(api, case_id) == ["iom"])
    handed(api, case_id, "dgme", "iom")
    api.gql("iom", SAVE, {"case": case_id, "version": followup(api, "iom", case_id)["version"], "goals": GOALS,
                          "key": f"review-{uuid.uuid4()}"})
    assert api.gql("dgme", WITHDRAW, {"case": case_id, "consent": consent_id})["data"]["withdrawConsent"]
    eventually(lambda: hidden_from(api, "iom", case_id))

    [earlier, _later] = _sharing_events(api, case_id)
    with psycopg.connect(api.platform.database_url) as conn:
        conn.execute("delete from followup.inbox where consumer = 'followup-intake' and event_id = %s",
                     (earlier["id"],))

    async def deliver_late() -> None:
        nc = await nats.connect(**api.platform.nats_options())
        try:
            js = nc.jetstream()
            await js.publish(SHARING_CHANGED.subject, json.dumps(earlier).encode(),
                             headers={"Nats-Msg-Id": f"{earlier['id']}-late"})
            for _ in range(150):
                info = await js.consumer_info("INTAKE_EVENTS", "followup-intake")
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    asyncio.run(deliver_late())
    body = api.gql("iom", FOLLOWUP, {"case": case_id})
    assert hidden_from(api, "iom", case_id), f"consent withdrawn, yet IOM reads the follow-up again: {body}"
