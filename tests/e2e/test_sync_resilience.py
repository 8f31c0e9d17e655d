"""A sync batch cut by a crash of intake and sent again: nothing lost, nothing registered twice."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVED_ON, eventually

pytestmark = pytest.mark.e2e

N = 100


def registered(platform: Platform, family: str) -> list[str]:
    with psycopg.connect(platform.database_url) as conn:
        rows = conn.execute("select id::text from intake.cases where family_name = %s", (family,)).fetchall()
    return [r[0] for r in rows]


def test_intake_killed_mid_batch_and_the_batch_retried_loses_and_duplicates_nothing(own_platform: Platform) -> None:
    family = f"Crash{uuid.uuid4().hex[:6]}"
    items = [{"client_id": str(uuid.uuid4()), "command": "REGISTER_ARRIVAL", "arrival": {
        "given_name": f"Personne{i}", "family_name": family, "sex": "FEMALE", "estimated_age": 20 + i % 40,
        "country_returned_from": "LY", "arrival_point": "BAMAKO_AIRPORT", "arrival_date": ARRIVED_ON,
        "destination_region": "00", "consent": {"given": False}}} for i in range(N)]
    url, token = f"{own_platform.base_url}/offline/sync", own_platform.token("dgme")
    first: dict[str, Any] = {}

    def send() -> None:
        try:
            first["response"] = httpx.post(url, json={"items": items}, headers={"Authorization": f"Bearer {token}"},
                                           timeout=60)
        except httpx.HTTPError as exc:
            first["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    eventually(lambda: registered(own_platform, family), timeout=60, interval=0.02)
    own_platform.kill_process("intake")  # SIGKILL in the middle of the batch (or just after it, on a fast day)
    at_kill = len(registered(own_platform, family))
    print(f"registered when intake was killed: {at_kill} of {N}")
    sender.join(timeout=90)
    own_platform.start_process("intake")
    own_platform.wait_ready()

    def retried() -> list[dict[str, Any]] | None:
        answer = httpx.post(url, json={"items": items}, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return answer.json()["results"] if answer.status_code == 200 else None

    results = eventually(retried, timeout=60, interval=0.5)
    assert [r["client_id"] for r in results] == [i["client_id"] for i in items]
    assert {r["status"] for r in results} <= {"APPLIED", "ALREADY_APPLIED"}
    assert sum(r["status"] == "ALREADY_APPLIED" for r in results) >= at_kill
    case_ids = registered(own_platform, family)
    assert len(case_ids) == N == len(set(case_ids)), "every person registered exactly once"
    assert sorted(r["case_id"] for r in results) == sorted(case_ids)
