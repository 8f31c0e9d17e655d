"""A referral past due escalates exactly once across a crash of the referral service.

The platform scans every second (SEGIN_DEADLINE_SCAN_SECONDS=1). The clock is not moved: the test
sets due times in the past (13 hours ago: past an urgent referral's 12-hour grace), starts the
referral service, kills it with SIGKILL as soon as the first mark is set (mid-scan or just after),
starts it again, and checks that every referral was reminded once and escalated once, each with
one notice, and that later scans fire nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival, eventually, start_platform, stop_platform
from tests.e2e.test_worked_example import notifications_for

pytestmark = pytest.mark.e2e
N = 8


@pytest.fixture
def scanning_platform() -> Iterator[Platform]:
    """A platform of its own (the test kills its referral service), scanning deadlines every second."""
    p = start_platform("segin-deadlines-", extra_env={"SEGIN_DEADLINE_SCAN_SECONDS": "1"})
    yield p
    stop_platform(p)


def rows(platform: Platform, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(platform.database_url) as conn:
        return conn.execute(query, params).fetchall()


def referral_of(platform: Platform, case_id: str) -> str | None:
    found = rows(platform, "select id::text from referral.referrals where case_id = %s and to_org_id = 'unicef'",
                 case_id)
    return found[0][0] if found else None


def make_overdue(platform: Platform, referral_ids: list[str]) -> None:
    with psycopg.connect(platform.database_url) as conn:
        conn.execute("update referral.referrals set due_at = now() - interval '13 hours' where id = any(%s::uuid[])",
                     (referral_ids,))


def marked(platform: Platform, referral_ids: list[str]) -> list[tuple[Any, ...]]:
    return rows(platform, "select reminded_at is not null, escalated_at is not null from referral.referrals"
                          " where id = any(%s::uuid[])", referral_ids)


def notices(platform: Platform, referral_ids: list[str]) -> dict[tuple[str, str], int]:
    """How many notices of each (organisation, kind) the deadlines of these referrals led to."""
    found = rows(platform, "select org_id, kind, count(*) from notifications.notifications"
                           " where referral_id = any(%s::uuid[])"
                           " and kind in ('referral.reminder', 'referral.escalated') group by org_id, kind",
                 referral_ids)
    return {(org, kind): count for org, kind, count in found}


def deadline_events(platform: Platform, referral_ids: list[str]) -> list[tuple[Any, ...]]:
    """(referral, kind, events) for every deadline event the referral service wrote for them."""
    return rows(platform, "select envelope->>'subject', envelope->'data'->>'kind', count(*) from referral.outbox"
                          " where envelope->>'type' = 'ml.segin.referral.referral_deadline.v1'"
                          " and envelope->>'subject' = any(%s) group by 1, 2 order by 1, 2", referral_ids)


def test_a_referral_past_due_escalates_exactly_once_across_a_crash_of_the_referral_service(
        scanning_platform: Platform) -> None:
    platform, api = scanning_platform, Api(scanning_platform, {})
    # Unaccompanied children, consent to UNICEF: one URGENT child-protection referral each, due in 24 hours.
    case_ids = [api.register("dgme", arrival(givenName=f"Enfant{i}"))["data"]["registerArrival"]["id"]
                for i in range(N + 1)]
    referral_ids = eventually(lambda: all(ids := [referral_of(platform, c) for c in case_ids]) and ids, timeout=60)
    late, marker = referral_ids[:N], referral_ids[N]
    assert marked(platform, referral_ids) == [(False, False)] * (N + 1)  # not due yet: nothing fired

    platform.kill_process("referral")
    make_overdue(platform, late)
    platform.start_process("referral")  # scans at once on start
    eventually(lambda: any(r or e for r, e in marked(platform, late)), timeout=60, interval=0.02)
    platform.kill_process("referral")  # SIGKILL mid-scan or just after: no graceful shutdown
    platform.start_process("referral")

    eventually(lambda: marked(platform, late) == [(True, True)] * N, timeout=60)
    expected = {("unicef", "referral.reminder"): N, ("dgme", "referral.escalated"): N}
    eventually(lambda: notices(platform, late) == expected, timeout=60)

    # Later scans run (the marker, made due now, fires) and fire nothing more for the others.
    make_overdue(platform, [marker])
    eventually(lambda: notices(platform, [marker]) == {("unicef", "referral.reminder"): 1,
                                                      ("dgme", "referral.escalated"): 1}, timeout=60)
    assert notices(platform, late) == expected
    assert deadline_events(platform, late) == sorted(
        (r, kind, 1) for r in late for kind in ("ESCALATED", "REMINDER"))
    # What people see: the recipient is reminded, the referrer (here also the coordinating body) told.
    reminders = [n for n in notifications_for(api, "unicef", case_ids[0]) if n["kind"] == "referral.reminder"]
    escalations = [n for n in notifications_for(api, "dgme", case_ids[0]) if n["kind"] == "referral.escalated"]
    assert [n["referralId"] for n in reminders] == [late[0]]
    assert [n["referralId"] for n in escalations] == [late[0]]
    assert "re-routed" in escalations[0]["titleEn"]
