"""What a service's requests carry is worth nothing elsewhere.

The review's finding: with a service's NATS credentials, subscribe to ``svc.<service>.>`` (no
queue group) and read the copy of every request; it carried the caller's API token, which then
read a trafficking victim's case at ``POST /graphql``. Now the gateway sends each service an
internal token for it alone (``gateway/service_tokens.py``): refused at the public API, by
introspection and by the other services, and stopped by revoking the API token or its client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats
import pytest

from devstack.platform import Platform
from kernel.tokens import INTERNAL_TOKEN_TYPE
from tests.e2e.conftest import Api, arrival, eventually
from tests.e2e.helpers_tokens import ask_service, token_parts
from tests.e2e.test_oauth_lifecycle import admin, client_token, confidential_client, introspect, revoke

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id givenName trafficking } }"
# One query per service that makes the gateway call it (as the reviewer's did for notifications).
CALLS: dict[str, Callable[[str], tuple[str, dict[str, Any]]]] = {
    "notifications": lambda case_id: ("{ notifications(first: 1) { nodes { id } } }", {}),
    "intake": lambda case_id: (CASE, {"id": case_id}),
    "referral": lambda case_id: ("{ incomingReferrals(first: 1) { nodes { id } } }", {}),
}
# A harmless request to each service, as anyone holding operator (or gateway) credentials could send.
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "intake": ("svc.intake.get_case", {"case_id": str(uuid.uuid4())}),
    "referral": ("svc.referral.incoming", {"first": 1}),
    "notifications": ("svc.notifications.list", {"first": 1}),
    "followup": ("svc.followup.plans_missing", {"first": 1}),
}


def graphql(platform: Platform, token: str, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(platform.graphql_url, json={"query": query, "variables": variables or {}},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def sniff(platform: Platform, service: str, trigger: Callable[[], Any]) -> str:
    """The bearer token of the first request to ``service`` seen while ``trigger`` runs, read with
    the service's own NATS credentials and no queue group (a copy; the service still answers)."""

    async def go() -> str:
        nc = await nats.connect(**platform.nats_options(service), name=f"segin-{service}")
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def copy(msg: Any) -> None:
            seen.put_nowait((msg.headers or {}).get("Authorization", ""))

        try:
            await nc.subscribe(f"svc.{service}.>", cb=copy)
            await nc.flush()
            await asyncio.to_thread(trigger)
            authorization = await asyncio.wait_for(seen.get(), 10)
        finally:
            await nc.close()
        assert authorization.startswith("Bearer "), authorization
        return authorization[7:]

    return asyncio.run(go())


def service_reply(platform: Platform, service: str, token: str) -> dict[str, Any]:
    subject, payload = PROBES[service]
    return asyncio.run(ask_service(platform, subject, payload, token))


def code(reply: dict[str, Any]) -> str:
    return reply.get("error", {}).get("code", "OK")


@pytest.fixture(scope="module")
def victim(api: Api) -> str:
    """A trafficking victim's case, registered by DGME (whose token holds every sensitive scope)."""
    body = api.register("dgme", arrival(givenName=f"Victim{uuid.uuid4().hex[:6]}", sex="FEMALE", estimatedAge=24,
                                        vulnerabilities=["TRAFFICKING_VICTIM"],
                                        consent={"given": True, "recipientOrgIds": ["iom"]}))
    assert not body.get("errors"), body
    return str(body["data"]["registerArrival"]["id"])


@pytest.mark.parametrize("service", ["notifications", "intake", "referral"])
def test_a_token_read_from_a_services_requests_is_refused_by_the_public_api(
        platform: Platform, api: Api, victim: str, service: str) -> None:
    dgme = api.token("dgme")
    query, variables = CALLS[service](victim)
    control = graphql(platform, dgme, CASE, {"id": victim}).json()
    assert control["data"]["case"]["trafficking"] == ["TRAFFICKING_VICTIM"], control  # what is at stake

    sniffed = sniff(platform, service, lambda: graphql(platform, dgme, query, variables))
    refused = graphql(platform, sniffed, CASE, {"id": victim})
    assert refused.status_code == 401, refused.text
    assert not refused.json().get("data")
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert introspect(platform, sniffed, platform.client_credentials("dgme")).json() == {"active": False}
    assert sniffed != dgme


def test_a_token_read_from_a_services_requests_works_at_that_service_only(platform: Platform, api: Api) -> None:
    dgme = api.token("dgme")
    sniffed = sniff(platform, "notifications", lambda: graphql(platform, dgme, CALLS["notifications"]("")[0]))
    header, claims, _ = token_parts(sniffed)
    assert header["typ"] == INTERNAL_TOKEN_TYPE and claims["aud"] == "segin-svc:notifications"
    assert claims["exp"] <= time.time() + 61
    assert claims["jti"] == token_parts(dgme)[1]["jti"]  # revoking the API token reaches it
    # At the service it was made for, it stands for DGME for at most a minute: that service already
    # sees those requests. Nowhere else:
    assert code(service_reply(platform, "notifications", sniffed)) == "OK"
    for other in ("intake", "referral"):
        assert code(service_reply(platform, other, sniffed)) == "UNAUTHENTICATED", other


@pytest.mark.parametrize("service", ["intake", "referral", "notifications", "followup"])
def test_an_api_token_sent_straight_to_a_service_is_refused(platform: Platform, api: Api, service: str) -> None:
    reply = service_reply(platform, service, api.token("dgme"))
    assert code(reply) == "UNAUTHENTICATED", reply
    assert "data" not in reply


def test_revoking_the_api_token_stops_its_internal_tokens_at_the_service(platform: Platform) -> None:
    token = platform.token("dgme")
    sniffed = sniff(platform, "notifications", lambda: graphql(platform, token, CALLS["notifications"]("")[0]))
    assert code(service_reply(platform, "notifications", sniffed)) == "OK"
    assert revoke(platform, token, platform.client_credentials("dgme")).status_code == 200
    eventually(lambda: code(service_reply(platform, "notifications", sniffed)) == "UNAUTHENTICATED", timeout=10)


def test_revoking_the_client_stops_its_internal_tokens_at_the_service(platform: Platform) -> None:
    auth = confidential_client(platform, scopes="cases:read notifications:read")
    token = client_token(platform, auth)
    sniffed = sniff(platform, "notifications", lambda: graphql(platform, token, CALLS["notifications"]("")[0]))
    assert code(service_reply(platform, "notifications", sniffed)) == "OK"
    admin(platform, "revoke-client", auth[0])
    eventually(lambda: code(service_reply(platform, "notifications", sniffed)) == "UNAUTHENTICATED", timeout=10)
