"""Follow-up contacts end to end, on a platform of its own scanning every second
(SEGIN_FOLLOWUP_SCAN_SECONDS=1).

The clock is not moved: as for referral deadlines (test_deadlines.py), the test moves the case's
dates into the past in the follow-up service's tables ("a month passes": the arrival date and the
contacts logged move back by as many days, and the case is looked at again at the next scan).

DGME registers a returnee and hands the follow-up to UNICEF, which is told. A month on, the one-month
contact falls due: UNICEF is told once and logs a visit that reached the person; two months later the
three-month contact falls due, is told once, and is logged; then three attempts in a row fail and the
person is flagged unreachable, told once. No event and no notice carries the note. A due notice also
fires exactly once across a SIGKILL of the follow-up service in the middle of a scan.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival, eventually, start_platform, stop_platform

pytestmark = pytest.mark.e2e

NOTE = "Fatoumata dit que son frère l'aide à la boutique ; dettes envers le passeur"
NEXT_STEP = "Rappeler après la foire de Gao"
FOLLOWUP = """query($case: ID!) { followupCase(caseId: $case) { managerOrgId version failedInARow unreachable
  schedule { code state doneOn onTime } contacts { date mode reached nextStep note } } }"""
ASSIGN = """mutation($case: ID!) { assignCaseManagement(caseId: $case, organizationId: "unicef",
  reason: CHILD_PROTECTION_MANDATE) { managerOrgId } }"""
LOG = """mutation($case: ID!, $key: String!, $input: ContactInput!) { logContact(caseId: $case, input: $input,
  idempotencyKey: $key) { failedInARow unreachable schedule { code state } contacts { reached note } } }"""
LISTS = """{ followupsDue(first: 100, withinDays: 7) { nodes { caseId contactCode state } }
  unreachableCases(first: 100) { nodes { caseId failedInARow } } }"""


@pytest.fixture(scope="module")
def scanning() -> Iterator[tuple[Platform, Api]]:
    """A platform of its own (the last test kills its follow-up service), scanning every second."""
    p = start_platform("segin-contacts-", extra_env={"SEGIN_FOLLOWUP_SCAN_SECONDS": "1"})
    yield p, Api(p, {})
    stop_platform(p)


def rows(platform: Platform, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(platform.database_url) as conn:
        return conn.execute(query, params).fetchall()


def time_passes(platform: Platform, case_ids: list[str], days: int) -> None:
    """``days`` pass for these cases: their arrival and contacts move back, and the next scan looks again."""
    with psycopg.connect(platform.database_url) as conn:
        conn.execute("update followup.contacts set contact_date = contact_date - %s where case_id = any(%s::uuid[])",
                     (days, case_ids))
        conn.execute("update followup.cases set arrival_date = arrival_date - %s, next_check_on = '0001-01-01'"
                     " where case_id = any(%s::uuid[])", (days, case_ids))


def looked_at(platform: Platform, case_ids: list[str]) -> bool:
    """Every case has been through a scan since it was created or its dates moved."""
    return not rows(platform, "select 1 from followup.cases where case_id = any(%s::uuid[])"
                              " and next_check_on = '0001-01-01'", case_ids)


def notices(platform: Platform, case_ids: list[str]) -> dict[tuple[str, str], int]:
    found = rows(platform, "select org_id, kind, count(*) from notifications.notifications"
                           " where case_id = any(%s::uuid[]) and kind like 'followup.%%' group by org_id, kind",
                 case_ids)
    return {(org, kind): count for org, kind, count in found}


def register(api: Api, **consent: Any) -> str:
    today = datetime.now(UTC).date().isoformat()
    body = api.register("dgme", arrival(givenName=f"Fatoumata{uuid.uuid4().hex[:6]}", familyName="Coulibaly",
                                        sex="FEMALE", estimatedAge=24, arrivalDate=today, vulnerabilities=[],
                                        consent={"given": True, "recipientOrgIds": ["unicef"],
                                                 "purposes": ["REFERRAL", "FOLLOW_UP"], **consent}))
    case_id = body["data"]["registerArrival"]["id"]
    eventually(lambda: not api.gql("dgme", FOLLOWUP, {"case": case_id}).get("errors"), timeout=60)
    return case_id


def log(api: Api, case_id: str, reached: bool, note: str | None = NOTE) -> dict[str, Any]:
    body = api.gql("unicef", LOG, {"case": case_id, "key": str(uuid.uuid4()), "input": {
        "date": datetime.now(UTC).date().isoformat(), "mode": "VISIT" if reached else "PHONE", "reached": reached,
        "nextStep": NEXT_STEP, "note": note}})
    assert not body.get("errors"), body
    return body["data"]["logContact"]


def test_the_manager_is_told_of_each_contact_due_once_logs_them_and_an_unreachable_person_is_flagged(
        scanning: tuple[Platform, Api]) -> None:
    platform, api = scanning
    case_id = register(api)
    assert not api.gql("dgme", ASSIGN, {"case": case_id}).get("errors")
    eventually(lambda: notices(platform, [case_id]) == {("unicef", "followup.case_assigned"): 1}, timeout=60)
    eventually(lambda: looked_at(platform, [case_id]), timeout=60)
    assert notices(platform, [case_id]) == {("unicef", "followup.case_assigned"): 1}  # nothing due on arrival day

    # A month on: the one-month contact is due, UNICEF is told once and logs a visit that reached her.
    time_passes(platform, [case_id], 30)
    eventually(lambda: notices(platform, [case_id]).get(("unicef", "followup.contact_due")) == 1, timeout=60)
    due = api.gql("unicef", LISTS)["data"]["followupsDue"]["nodes"]
    assert {"caseId": case_id, "contactCode": "M1", "state": "DUE"} in due
    assert [s["state"] for s in log(api, case_id, True)["schedule"]] == ["DONE", "UPCOMING", "UPCOMING", "UPCOMING"]

    # Two months later: the three-month contact is due, told once; the one-month one stays done.
    time_passes(platform, [case_id], 61)
    eventually(lambda: notices(platform, [case_id]).get(("unicef", "followup.contact_due")) == 2, timeout=60)
    assert [s["state"] for s in log(api, case_id, True)["schedule"]] == ["DONE", "DONE", "UPCOMING", "UPCOMING"]

    # Three attempts in a row fail: she is flagged unreachable, and UNICEF is told once.
    for _ in range(3):
        seen = log(api, case_id, False, note=None)
    assert (seen["failedInARow"], seen["unreachable"]) == (3, True)
    assert {"caseId": case_id, "failedInARow": 3} in api.gql("unicef", LISTS)["data"]["unreachableCases"]["nodes"]
    expected = {("unicef", "followup.case_assigned"): 1, ("unicef", "followup.contact_due"): 2,
                ("unicef", "followup.case_unreachable"): 1, ("unicef", "followup.plan_overdue"): 1}
    eventually(lambda: notices(platform, [case_id]) == expected, timeout=60)

    # What UNICEF and DGME (the owner) read; an uninvolved organisation cannot tell the case exists.
    seen = api.gql("unicef", FOLLOWUP, {"case": case_id})["data"]["followupCase"]
    assert [(c["reached"], c["note"]) for c in seen["contacts"]] == [(False, None)] * 3 + [(True, NOTE)] * 2
    assert [(s["code"], s["state"], s["onTime"]) for s in seen["schedule"]][:2] == [("M1", "DONE", True),
                                                                                   ("M3", "DONE", True)]
    assert api.gql("dgme", FOLLOWUP, {"case": case_id})["data"]["followupCase"]["contacts"][-1]["note"] == NOTE
    assert api.gql("ame", FOLLOWUP, {"case": case_id})["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    titles = api.gql("unicef", "{ notifications(first: 100) { nodes { kind caseId title titleEn: title(lang: \"en\") } } }")
    mine = [n for n in titles["data"]["notifications"]["nodes"] if n["caseId"] == case_id]
    assert {n["kind"] for n in mine} == {k for _, k in expected}
    assert any(n["titleEn"].startswith("Follow-up contact due (M1") for n in mine)

    # No event, no notice carries the note or the next step; the contacts were announced.
    events = rows(platform, "select envelope from followup.outbox where envelope->>'subject' = %s", case_id)
    assert sum(1 for (e,) in events if e["type"] == "ml.segin.followup.contact_logged.v1") == 5
    published = json.dumps([e for (e,) in events]) + json.dumps(mine)
    assert NOTE not in published and NEXT_STEP not in published
    assert NOTE not in (platform.log_dir / "followup.log").read_text(encoding="utf-8", errors="replace")


N = 6


def test_a_due_contact_is_told_once_across_a_crash_of_the_follow_up_service(scanning: tuple[Platform, Api]) -> None:
    platform, api = scanning
    case_ids = [register(api) for _ in range(N + 1)]
    late, marker = case_ids[:N], case_ids[N]
    eventually(lambda: looked_at(platform, case_ids), timeout=60)

    platform.kill_process("followup")
    time_passes(platform, late, 30)
    platform.start_process("followup")  # scans at once on start
    eventually(lambda: rows(platform, "select count(*) from followup.contact_marks where case_id = any(%s::uuid[])",
                            late)[0][0] > 0, timeout=60, interval=0.02)
    platform.kill_process("followup")  # SIGKILL mid-scan or just after: no graceful shutdown
    platform.start_process("followup")

    marks = "select count(*) from followup.contact_marks where case_id = any(%s::uuid[]) and kind = 'DUE'"
    eventually(lambda: rows(platform, marks, late)[0][0] == N, timeout=60)
    eventually(lambda: notices(platform, late) == {("dgme", "followup.contact_due"): N}, timeout=60)
    # Later scans run (the marker, made due now, is told) and tell nothing more about the others.
    time_passes(platform, [marker], 30)
    eventually(lambda: notices(platform, [marker]) == {("dgme", "followup.contact_due"): 1}, timeout=60)
    assert notices(platform, late) == {("dgme", "followup.contact_due"): N}
    per_case = rows(platform, "select envelope->>'subject', count(*) from followup.outbox"
                              " where envelope->>'type' = 'ml.segin.followup.contact_due.v1'"
                              " and envelope->>'subject' = any(%s) group by 1", late)
    assert sorted(per_case) == sorted((c, 1) for c in late)
