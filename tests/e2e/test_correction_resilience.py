"""Corrections routed while referral is killed: a flag added by correction reaches its provider once per
person, whatever the crash cut (decision record 0025; the inbox and the outbox, decision record 0003)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVED_ON, eventually

pytestmark = pytest.mark.e2e

N = 60


def sync(platform: Platform, token: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = httpx.post(f"{platform.base_url}/offline/sync", json={"items": items},
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def referrals(platform: Platform, case_ids: list[str], category: str) -> list[str]:
    """The case of each referral of ``category`` made for these cases (one row each)."""
    with psycopg.connect(platform.database_url) as conn:
        rows = conn.execute("select case_id::text from referral.referrals where case_id = any(%s::uuid[])"
                            " and service_category = %s", (case_ids, category)).fetchall()
    return [r[0] for r in rows]


def announced(platform: Platform, case_ids: list[str], category: str) -> int:
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select count(*) from referral.outbox where envelope->>'type' like '%%referral_created%%'"
                           " and envelope->'data'->>'case_id' = any(%s) and envelope->'data'->>'service_category' = %s",
                           (case_ids, category)).fetchone()
    assert row is not None
    return int(row[0])


def test_referral_killed_while_corrections_are_routed_refers_each_person_once(own_platform: Platform) -> None:
    token, family = own_platform.token("dgme"), f"Corr{uuid.uuid4().hex[:6]}"
    registered = sync(own_platform, token, [{"client_id": str(uuid.uuid4()), "command": "REGISTER_ARRIVAL", "arrival": {
        "given_name": f"Personne{i}", "family_name": family, "sex": "FEMALE", "estimated_age": 20 + i,
        "country_returned_from": "LY", "arrival_point": "BAMAKO_AIRPORT", "arrival_date": ARRIVED_ON,
        "destination_region": "00", "consent": {"given": True, "recipient_org_ids": ["iom", "croix-rouge"]}}}
        for i in range(N)])
    case_ids = [r["case_id"] for r in registered]
    assert len(set(case_ids)) == N
    eventually(lambda: len(set(referrals(own_platform, case_ids, "FOOD"))) == N, timeout=90)  # routed at arrival

    corrected = sync(own_platform, token, [{"client_id": str(uuid.uuid4()), "command": "UPDATE_CASE",
                                            "case_id": case_id, "base_version": 1,
                                            "changes": {"vulnerabilities": ["TRAFFICKING_VICTIM"]}}
                                           for case_id in case_ids])
    assert {r["status"] for r in corrected} == {"APPLIED"}, corrected
    eventually(lambda: referrals(own_platform, case_ids, "COUNTER_TRAFFICKING"), timeout=60, interval=0.02)
    own_platform.kill_process("referral")  # SIGKILL while the corrections are being routed (or just after)
    at_kill = len(referrals(own_platform, case_ids, "COUNTER_TRAFFICKING"))
    print(f"corrections routed when referral was killed: {at_kill} of {N}")
    own_platform.start_process("referral")
    own_platform.wait_ready()

    routed = eventually(lambda: (r := referrals(own_platform, case_ids, "COUNTER_TRAFFICKING")) and len(r) >= N and r,
                        timeout=120)
    assert sorted(routed) == sorted(case_ids), "each person referred once, none left out"
    assert announced(own_platform, case_ids, "COUNTER_TRAFFICKING") == N, "each referral announced once"
