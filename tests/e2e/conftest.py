"""End-to-end fixtures: the real processes, started exactly as ``make run`` starts them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.platform import Platform, discard, scratch

ARRIVAL_MUTATION = """
mutation Register($input: ArrivalInput!, $key: String!) {
  registerArrival(input: $input, idempotencyKey: $key) {
    id givenName familyName vulnerabilities destinationRegion { code name }
    sharing { id legalBasis given recipientOrgIds }
  }
}
"""


def start_platform(prefix: str, **kwargs: Any) -> Platform:
    platform = scratch(prefix, **kwargs)
    try:
        platform.start()
    except Exception:
        stop_platform(platform)
        raise
    return platform


def stop_platform(platform: Platform) -> None:
    discard(platform)


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    """One shared platform for tests that do not stop any of its parts."""
    p = start_platform("segin-e2e-")
    yield p
    stop_platform(p)


@pytest.fixture
def own_platform() -> Iterator[Platform]:
    """A platform of the test's own: for a test that stops or kills its parts."""
    p = start_platform("segin-own-")
    yield p
    stop_platform(p)


TOKEN_REUSE_SECONDS = 600  # well within ACCESS_TOKEN_LIFETIME (900 s)


@dataclass
class Api:
    """A GraphQL client for one platform; ``token`` tokens are cached per organisation, and fetched
    again before they expire (access tokens live 15 minutes; the suite may run longer)."""

    platform: Platform
    _tokens: dict[str, tuple[str, float]]

    def token(self, org: str) -> str:
        cached = self._tokens.get(org)
        if cached is None or time.monotonic() - cached[1] > TOKEN_REUSE_SECONDS:
            self._tokens[org] = cached = (self.platform.token(org), time.monotonic())
        return cached[0]

    def post(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        all_headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        return httpx.post(self.platform.graphql_url, json={"query": query, "variables": variables or {}},
                          headers=all_headers, timeout=30)

    def gql(self, org: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an operation as ``org``; returns the whole GraphQL response body."""
        response = self.post(query, variables, token=self.token(org))
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, org: str, arrival: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        return self.gql(org, ARRIVAL_MUTATION, {"input": arrival, "key": key or str(uuid.uuid4())})


@pytest.fixture(scope="session")
def api(platform: Platform) -> Api:
    return Api(platform, {})


# Arrivals are dated twelve days back whatever the day the suite runs: no follow-up contact is due
# yet (the first window opens three weeks after arrival) and no plan is late, so the follow-up
# scan, which runs on the real clock, has nothing to tell about the cases tests register.
ARRIVED_ON = (datetime.now(UTC).date() - timedelta(days=12)).isoformat()


def arrival(**overrides: Any) -> dict[str, Any]:
    """A valid arrival; tests override what they exercise."""
    base: dict[str, Any] = {
        "givenName": "Aminata",
        "familyName": "Coulibaly",
        "sex": "FEMALE",
        "estimatedAge": 16,
        "countryReturnedFrom": "LY",
        "arrivalPoint": "BAMAKO_AIRPORT",
        "arrivalDate": ARRIVED_ON,
        "destinationRegion": "07",
        "vulnerabilities": ["UNACCOMPANIED_CHILD"],
        "consent": {"given": True, "recipientOrgIds": ["unicef"]},
    }
    base.update(overrides)
    return base


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until ``check`` returns a truthy value (events are asynchronous); fail after ``timeout``."""

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
