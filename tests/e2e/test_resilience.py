"""Nothing lost, nothing duplicated: NATS restarts and process crashes in the middle of a flight.

Clients behave as a field device on a bad network would: each arrival keeps its idempotency
key and is retried until the platform answers. At the end every case, referral and
notification must exist exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVAL_MUTATION, arrival, eventually

pytestmark = pytest.mark.e2e


def flight(n: int) -> list[dict[str, Any]]:
    """Alternate children (→ unicef) and adults with medical needs going to Gao (→ csref-gao)."""
    people = []
    for i in range(n):
        if i % 2 == 0:
            people.append(arrival(givenName=f"Enfant{i}", vulnerabilities=["UNACCOMPANIED_CHILD"],
                                  consent={"given": True, "recipientOrgIds": ["unicef"]}))
        else:
            people.append(arrival(givenName=f"Adulte{i}", estimatedAge=30, sex="MALE",
                                  vulnerabilities=["MEDICAL_NEEDS"],
                                  consent={"given": True, "recipientOrgIds": ["csref-gao"]}))
    return people


class Attempts:
    """How many registration attempts clients have finished, answered or not: a disruption lasts
    until the flight went on during it, however slow the machine, rather than a fixed time."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for_more(self, more: int, timeout: float = 120) -> None:
        with self._changed:
            target = self.count + more
            assert self._changed.wait_for(lambda: self.count >= target, timeout), "the flight stalled"


def register_until_done(platform: Platform, token: str, person: dict[str, Any], key: str,
                        deadline: float, attempts: Attempts | None = None) -> str:
    """Retry with the same idempotency key until the platform answers with a case id."""
    while time.monotonic() < deadline:
        try:
            response = httpx.post(platform.graphql_url, json={"query": ARRIVAL_MUTATION,
                                                              "variables": {"input": person, "key": key}},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=15)
            body = response.json() if response.status_code == 200 else {}
            if body.get("data") and body["data"].get("registerArrival"):
                return body["data"]["registerArrival"]["id"]
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
            assert codes <= {"UNAVAILABLE", None}, body  # only "retry later" is acceptable here
        except httpx.HTTPError:
            pass
        finally:
            if attempts is not None:
                attempts.add()
        time.sleep(0.2)  # a client's pause between retries, not a wait for the platform
    raise AssertionError("arrival not registered before the deadline")


def counts(platform: Platform) -> dict[str, Any]:
    """What a flight left behind. Every arrival also gets the reception package (some referrals live,
    some awaiting consent, some unmet needs): the protection referrals are counted exactly, and the
    rest must each have been announced once, with no duplicate anywhere."""
    with psycopg.connect(platform.database_url) as conn:
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        return {
            "cases": one("select count(*) from intake.cases"),
            "protection": one("select count(*) from referral.referrals"
                              " where service_category in ('CHILD_PROTECTION', 'HEALTH_CARE')"),
            "referral_duplicates": one("select count(*) - count(distinct (case_id, service_category))"
                                       " from referral.referrals"),
            "cases_without_referrals": one("select count(*) from intake.cases c where not exists"
                                           " (select 1 from referral.referrals r where r.case_id = c.id)"),
            "referrals_without_notice": one("select count(*) from referral.referrals r where not exists"
                                            " (select 1 from notifications.notifications n"
                                            "  where n.referral_id = r.id)"),
            "notice_duplicates": one("select count(*) - count(distinct (referral_id, org_id, kind))"
                                     " from notifications.notifications"),
            "unicef": one("select count(*) from notifications.notifications where org_id = 'unicef'"
                          " and kind = 'referral.received'"),
            "csref": one("select count(*) from notifications.notifications where org_id = 'csref-gao'"
                         " and kind = 'referral.received'"),
            "unpublished": one("select (select count(*) from intake.outbox where published_at is null)"
                               " + (select count(*) from referral.outbox where published_at is null)"),
            # Every case is followed up once: managed by its owner, with one first hand-over row.
            "followed": one("select count(*) from followup.cases"),
            "followup_starts": one("select count(*) from followup.assignments where reason_code = 'REGISTERED'"),
        }


def run_flight_with_disruption(platform: Platform, n: int, disrupt: Any) -> list[str]:
    """Register ``n`` arrivals from 4 clients; call ``disrupt(flight_went_on)`` once a quarter of
    them are in (``flight_went_on()`` returns once the other clients made a few more attempts)."""
    token = platform.token("dgme")
    people = flight(n)
    keys = [str(uuid.uuid4()) for _ in people]
    done = 0
    lock = threading.Lock()
    disrupted = threading.Event()
    deadline = time.monotonic() + 180
    attempts = Attempts()

    def one(i: int) -> str:
        nonlocal done
        case_id = register_until_done(platform, token, people[i], keys[i], deadline, attempts)
        with lock:
            done += 1
            fire = done >= n // 4 and not disrupted.is_set()
            if fire:
                disrupted.set()
        if fire:
            disrupt(lambda: attempts.wait_for_more(3))
        return case_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        case_ids = list(pool.map(one, range(n)))
    assert disrupted.is_set()
    return case_ids


def assert_exactly_once(platform: Platform, case_ids: list[str], n: int) -> None:
    assert len(set(case_ids)) == n, "each arrival must be one case"
    expected = {"cases": n, "protection": n, "referral_duplicates": 0, "cases_without_referrals": 0,
                "referrals_without_notice": 0, "notice_duplicates": 0, "unicef": (n + 1) // 2, "csref": n // 2,
                "unpublished": 0, "followed": n, "followup_starts": n}
    final = eventually(lambda: (c := counts(platform)) == expected and c, timeout=90)
    assert final == expected


def test_nats_restart_mid_flight_loses_and_duplicates_nothing(own_platform: Platform) -> None:
    n = 40
    nats = own_platform.nats
    assert nats is not None

    def restart_nats(flight_went_on: Any) -> None:
        nats.stop()
        flight_went_on()  # a real outage: requests fail meanwhile, clients keep retrying
        nats.start()

    case_ids = run_flight_with_disruption(own_platform, n, restart_nats)
    assert_exactly_once(own_platform, case_ids, n)


def test_nats_killed_mid_flight_loses_and_duplicates_nothing(own_platform: Platform) -> None:
    n = 30
    nats = own_platform.nats
    assert nats is not None

    def crash_nats(flight_went_on: Any) -> None:
        nats.kill()
        flight_went_on()
        nats.start()

    case_ids = run_flight_with_disruption(own_platform, n, crash_nats)
    assert_exactly_once(own_platform, case_ids, n)


@pytest.mark.parametrize("victim", ["referral", "notifications", "intake", "followup"])
def test_service_killed_mid_flight_loses_and_duplicates_nothing(own_platform: Platform, victim: str) -> None:
    n = 30

    def crash_and_restart(flight_went_on: Any) -> None:
        own_platform.kill_process(victim)  # SIGKILL: no graceful shutdown, work in flight is cut
        flight_went_on()
        own_platform.start_process(victim)

    case_ids = run_flight_with_disruption(own_platform, n, crash_and_restart)
    assert_exactly_once(own_platform, case_ids, n)


def test_a_revocation_made_while_nats_is_down_reaches_every_service(own_platform: Platform) -> None:
    """Revoked during an outage: the gateway keeps the revocation in its database and publishes it
    to the services' deny-list once NATS is back."""
    from tests.e2e.test_oauth_lifecycle import revoke, service_code

    nats = own_platform.nats
    assert nats is not None
    token = own_platform.token("dgme")
    assert service_code(own_platform, token) == "NOT_FOUND"  # accepted: got past authentication
    nats.stop()
    try:
        response = revoke(own_platform, token, own_platform.client_credentials("dgme"),
                          token_type_hint="access_token")
        assert response.status_code == 200, response.text
    finally:
        nats.start()

    def refused_by_intake() -> bool:
        try:
            return service_code(own_platform, token) == "UNAUTHENTICATED"
        except Exception:  # services still reconnecting to NATS
            return False

    eventually(refused_by_intake, timeout=60)
