"""A trace started by the caller follows the request into the services, and their logs carry it."""

from __future__ import annotations

import json
import secrets

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVAL_MUTATION, Api, arrival, eventually


def log_records(platform: Platform, service: str) -> list[dict]:
    lines = (platform.log_dir / f"{service}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_traceparent_reaches_intake_referral_and_notifications(platform: Platform, api: Api) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = api.post(ARRIVAL_MUTATION, {"input": arrival(), "key": secrets.token_hex(8)},
                        token=api.token("dgme"), headers={"traceparent": traceparent})
    assert response.status_code == 200 and response.json()["data"], response.text

    def traced(service: str, message: str) -> bool:
        return any(r.get("trace_id") == trace_id and r["message"] == message for r in log_records(platform, service))

    eventually(lambda: traced("intake", "request handled"))
    # The event carries the trace through the outbox and JetStream to the consumers.
    eventually(lambda: traced("referral", "event handled"))
    eventually(lambda: traced("notifications", "event handled"))
    eventually(lambda: traced("followup", "event handled"))


def test_logs_never_contain_the_names_registered(platform: Platform, api: Api) -> None:
    given, family = "Zeinabou" + secrets.token_hex(3), "Maïga" + secrets.token_hex(3)
    body = api.register("dgme", arrival(givenName=given, familyName=family))
    assert body["data"], body
    eventually(lambda: any(r["message"] == "event handled" for r in log_records(platform, "notifications")))
    eventually(lambda: any(r["message"] == "event handled" for r in log_records(platform, "followup")))
    for service in ("gateway", "intake", "referral", "notifications", "followup"):
        text = (platform.log_dir / f"{service}.log").read_text()
        assert given not in text and family not in text, f"{service} logged personal data"
