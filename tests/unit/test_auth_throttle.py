"""Throttling guesses without lock-outs a third party could trigger; whose address a request has."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.requests import Request

from gateway.addresses import ForwardingHeadersWarning, source_of, trusted_proxies
from gateway.auth.server import ClientAuthenticationFailed
from gateway.auth.throttle import FailureThrottle, GuessGuard, client_fields, pseudonym


def guard(per_source: int = 100) -> GuessGuard:
    return GuessGuard(FailureThrottle(per_source, 300.0), limit=3, window=300.0, alert=6, base_delay=10.0)


def test_a_source_guessing_one_account_is_slowed_but_the_account_stays_open_to_others() -> None:
    g = guard()
    for i in range(3):
        assert g.retry_after("client-a", "10.0.0.9", now=100.0 + i) is None
        g.failed("client-a", "10.0.0.9", now=100.0 + i)
    assert g.retry_after("client-a", "10.0.0.9", now=103.0) == 9
    assert g.retry_after("client-a", "10.0.0.1", now=103.0) is None  # the owner, elsewhere
    assert g.retry_after("client-b", "10.0.0.9", now=103.0) is None  # other accounts, from the guesser


def test_a_guess_spread_over_sources_stops_each_source_that_failed_but_not_fresh_ones() -> None:
    g = guard()
    for n in range(3):  # 2 failures each: under the per-pair limit of 3
        for i in range(2):
            g.failed("client-a", f"10.0.0.{n}", now=100.0 + i)
    assert g.retry_after("client-a", "10.0.0.0", now=102.0) == 299  # alert: until the window has passed
    assert g.retry_after("client-a", "10.0.0.200", now=102.0) is None
    assert g.retry_after("client-a", "10.0.0.0", now=402.0) is None  # the failures left the window


def test_success_forgives_that_source_only() -> None:
    g = guard()
    for i in range(3):
        g.failed("client-a", "10.0.0.9", now=100.0 + i)
    g.succeeded("client-a", "10.0.0.9")
    assert g.retry_after("client-a", "10.0.0.9", now=103.0) is None


def test_every_failure_counts_against_the_source_whatever_the_account() -> None:
    g = guard(per_source=4)
    for i in range(4):
        g.failed(f"client-{i}" if i % 2 else None, "10.0.0.9", now=100.0)
    assert g.retry_after("client-new", "10.0.0.9", now=100.0)
    assert g.retry_after(None, "10.0.0.9", now=100.0)


def test_a_spent_address_budget_does_not_refuse_an_account_known_from_that_address() -> None:
    g = guard(per_source=4)
    for i in range(4):
        g.failed(f"invented-{i}", "10.0.0.9", now=100.0)  # a spray of invented ids spends the budget
    assert g.retry_after("client-a", "10.0.0.9", now=101.0)  # unknown here: refused like the sprayer
    assert g.retry_after("client-a", "10.0.0.9", now=101.0, known=True) is None
    assert g.retry_after(None, "10.0.0.9", now=101.0, known=True)  # no account named: nothing is known


def test_a_known_account_keeps_its_own_limit_at_that_address() -> None:
    g = guard(per_source=4)
    for i in range(3):
        g.failed("client-a", "10.0.0.9", now=100.0 + i)  # someone at the address guesses client-a itself
    assert g.retry_after("client-a", "10.0.0.9", now=103.0, known=True) == 9


def test_a_client_id_is_logged_only_when_it_names_a_registered_client() -> None:
    assert client_fields(b"k", "dgme-demo", registered=True) == {"client_id": "dgme-demo"}
    pasted = "s3cr3t-pasted-in-the-wrong-field"
    assert client_fields(b"k", pasted, registered=False) == {"client_id_hash": pseudonym(b"k", pasted)}
    assert pasted not in str(client_fields(b"k", pasted, registered=False))
    assert client_fields(b"k", "", registered=False) == {}


def _call(middleware: ForwardingHeadersWarning, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "headers": headers, "client": ("192.0.2.50", 1234)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        pass

    asyncio.run(middleware(scope, receive, send))


def test_forwarding_headers_with_no_proxy_configured_are_reported_once_without_addresses(
        caplog: pytest.LogCaptureFixture) -> None:
    reached: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(1)

    middleware = ForwardingHeadersWarning(app)
    with caplog.at_level(logging.WARNING, logger="gateway.addresses"):
        _call(middleware, [(b"host", b"segin")])
        assert not caplog.records  # no forwarding header: nothing to say
        for n in range(3):
            _call(middleware, [(b"x-forwarded-for", f"203.0.113.{n}".encode())])
    assert len(reached) == 4  # every request goes on
    assert [r.getMessage() for r in caplog.records if "SEGIN_FORWARDED_ALLOW_IPS" in r.getMessage()] == [
        caplog.records[0].getMessage()] and len(caplog.records) == 1
    assert "203.0.113" not in caplog.text and "192.0.2.50" not in caplog.text


def test_trusted_proxies_are_addresses_or_networks_only() -> None:
    assert trusted_proxies([]) == []
    assert trusted_proxies(["10.1.2.3", " 10.0.0.0/8 ", "", "::1"]) == ["10.1.2.3/32", "10.0.0.0/8", "::1/128"]
    for bad in ("*", "proxy.example.org", "10.0.0.300"):
        with pytest.raises(ValueError, match="SEGIN_FORWARDED_ALLOW_IPS"):
            trusted_proxies([bad])


def _request(host: str | None) -> Request:
    return Request({"type": "http", "headers": [(b"x-forwarded-for", b"203.0.113.9")],
                    "client": (host, 1234) if host else None})


@pytest.mark.parametrize(("host", "source"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one subscriber's /64 is one source
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    (None, "unknown"),
])
def test_the_source_is_the_peer_and_ignores_forwarding_headers(host: str | None, source: str) -> None:
    assert source_of(_request(host)) == source


def test_failed_client_authentication_has_one_answer() -> None:
    error = ClientAuthenticationFailed()
    assert error.status_code == 401
    assert dict(error.get_body()) == {"error": "invalid_client", "error_description": "Client authentication failed."}
    challenges = [v for k, v in error.get_headers() if k == "WWW-Authenticate"]
    assert challenges == ['Basic realm="segin", error="invalid_client",'
                          ' error_description="Client authentication failed."']
