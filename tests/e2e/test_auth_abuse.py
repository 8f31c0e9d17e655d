"""Abusing authentication against the running platform: lock-outs by third parties, forged addresses,
spent refresh tokens, and answers that tell which client ids and usernames exist.

An attacker is a caller from another loopback address (127.0.0.x, bound as the source address), so
the suite's own requests from 127.0.0.1 play the legitimate client or person.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import eventually, start_platform, stop_platform
from tests.e2e.test_oauth_lifecycle import (
    confidential_client,
    gateway_status,
    introspect,
    logged_pseudonym,
    revoke,
)
from tests.e2e.test_oauth_login import (
    LOCKED_FR,
    WRONG_FR,
    Person,
    PublicClient,
    authorize_params,
    graphql_me,
    person,
    pkce,
    post_credentials,
    public_client,
    query_of,
    refresh,
    tokens_for,
)

pytestmark = pytest.mark.e2e

ALERT = re.compile(r'<p id="login-error" role="alert" class="error">([^<]*)</p>')


def caller(platform: Platform, address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose requests come from ``address`` (any 127.0.0.0/8 address reaches the gateway)."""
    return httpx.Client(base_url=platform.base_url, follow_redirects=False, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def get_token(c: httpx.Client, auth: tuple[str, str] | None = None, **form: str) -> httpx.Response:
    return c.post("/oauth/token", data={"grant_type": "client_credentials", **form}, auth=auth)


def attempt(platform: Platform, client: PublicClient, username: str, password: str,
            address: str = "127.0.0.1") -> httpx.Response:
    """One sign-in through the page, from ``address``."""
    _, challenge = pkce()
    with caller(platform, address) as b:
        page = b.get("/oauth/authorize", params=authorize_params(client, challenge))
        assert page.status_code == 200, page.text
        return post_credentials(b, page, username, password)


def alert_of(page: httpx.Response) -> tuple[int, str | None]:
    """What a sign-in answer says: its status and its error message (the rest echoes the request)."""
    found = ALERT.search(page.text)
    return page.status_code, found.group(1) if found else None


# --- client authentication: no lock-out by a third party (finding 5) ----------------------------


def test_wrong_secrets_from_a_third_party_do_not_stop_the_client_getting_tokens(platform: Platform) -> None:
    auth = confidential_client(platform)
    with caller(platform, "127.0.0.31") as attacker:
        answers = [get_token(attacker, (auth[0], f"guess-{i}")).status_code for i in range(8)]
        assert answers[:5] == [401] * 5 and answers[5:] == [429] * 3, answers  # the guesser is slowed down
        assert get_token(attacker, auth).status_code == 429  # even its right guess waits: guessing stays slow
    with caller(platform) as real:
        assert get_token(real, auth).status_code == 200


def test_revocation_and_introspection_attempts_by_a_third_party_do_not_lock_the_client_out(
        platform: Platform) -> None:
    auth = confidential_client(platform)
    token = get_token(caller(platform), auth).json()["access_token"]
    with caller(platform, "127.0.0.32") as attacker:
        for _ in range(6):  # only the client id: what anyone can send
            attacker.post("/oauth/revoke", data={"token": "whatever", "client_id": auth[0]})
        for i in range(6):
            attacker.post("/oauth/introspect", data={"token": token}, auth=(auth[0], f"guess-{i}"))
        assert attacker.post("/oauth/introspect", data={"token": token}, auth=auth).status_code == 429
    with caller(platform) as real:
        assert get_token(real, auth).status_code == 200
        assert real.post("/oauth/introspect", data={"token": token}, auth=auth).json()["active"] is True
        assert real.post("/oauth/revoke", data={"token": token}, auth=auth).status_code == 200
    assert introspect(platform, token, auth).json() == {"active": False}


# --- client ids cannot be told apart (finding 9) -------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize("method", ["basic", "post", "client_id_only"])
def test_unknown_and_known_client_ids_get_the_same_answer(platform: Platform, endpoint: str, method: str) -> None:
    known, _ = confidential_client(platform)
    unknown = f"sys-{uuid.uuid4().hex[:8]}"

    def answer(client_id: str) -> httpx.Response:
        form = {"grant_type": "client_credentials", "token": "some-token"}
        auth = None
        if method == "basic":
            auth = (client_id, "wrong-secret")
        elif method == "post":
            form.update(client_id=client_id, client_secret="wrong-secret")
        else:
            form.update(client_id=client_id)
        with caller(platform, "127.0.0.33") as c:
            return c.post(endpoint, data=form, auth=auth)

    a, b = answer(known), answer(unknown)
    assert a.status_code == b.status_code == 401, (a.text, b.text)
    assert a.json() == b.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}
    assert a.headers["www-authenticate"] == b.headers["www-authenticate"]
    assert a.headers["www-authenticate"].startswith("Basic ")


# --- people: no lock-out by a third party, same answers for unknown usernames (findings 5, 9) ------


def test_wrong_passwords_from_a_third_party_do_not_lock_the_person_out(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    answers = [alert_of(attempt(platform, client, who.username, "wrong password", "127.0.0.41")) for _ in range(6)]
    assert all(WRONG_FR in (text or "") for _, text in answers[:4]), answers
    assert all(LOCKED_FR in (text or "") for _, text in answers[4:]), answers
    # The guesser stays stopped, even with the right password ...
    assert LOCKED_FR in attempt(platform, client, who.username, who.password, "127.0.0.41").text
    # ... while the person signs in from their own address.
    assert attempt(platform, client, who.username, who.password).status_code == 302


def test_a_guess_spread_over_many_addresses_is_slowed_per_address_and_the_person_still_signs_in(
        platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    sources = [f"127.0.0.{n}" for n in range(60, 65)]
    answers = [alert_of(attempt(platform, client, who.username, "wrong password", source))[1] or ""
               for source in sources for _ in range(4)]  # 4 each: no address reaches its own limit of 5
    assert all(WRONG_FR in text for text in answers[:19]), answers
    assert LOCKED_FR in answers[19]  # the 20th failure for the account: a guess spread over addresses
    # Every address that failed now waits, even with the right password.
    assert LOCKED_FR in attempt(platform, client, who.username, who.password, sources[0]).text
    assert attempt(platform, client, who.username, who.password).status_code == 302


def test_unknown_known_and_locked_usernames_get_the_same_answers(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    ghost = f"ghost{uuid.uuid4().hex[:8]}.dgme"
    for step in range(7):
        known = alert_of(attempt(platform, client, who.username, "wrong password", "127.0.0.51"))
        unknown = alert_of(attempt(platform, client, ghost, "wrong password", "127.0.0.51"))
        assert known == unknown, (step, known, unknown)
    assert LOCKED_FR in (known[1] or "")
    # After the lock-out, an over-long password (no argon2 work) must not tell them apart either.
    long_password = secrets.token_urlsafe(1500)
    known = alert_of(attempt(platform, client, who.username, long_password, "127.0.0.51"))
    unknown = alert_of(attempt(platform, client, ghost, long_password, "127.0.0.51"))
    assert known == unknown and LOCKED_FR in (known[1] or ""), (known, unknown)
    # When the lock-out ends (15 minutes, simulated by ageing the failures), both are counted afresh.
    with psycopg.connect(platform.database_url) as conn:
        conn.execute("update gateway.sign_in_failures set last_failed_at = last_failed_at - interval '16 min',"
                     " locked_until = locked_until - interval '16 min'")
    known = alert_of(attempt(platform, client, who.username, "wrong password", "127.0.0.51"))
    unknown = alert_of(attempt(platform, client, ghost, "wrong password", "127.0.0.51"))
    assert known == unknown and WRONG_FR in (known[1] or ""), (known, unknown)


# --- refresh tokens: a refused request does not spend the token (finding 8) -----------------------


def test_a_refused_refresh_does_not_spend_the_refresh_token(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    body = tokens_for(platform, client, who, scope="openid cases:read")
    widened = httpx.post(f"{platform.base_url}/oauth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client.client_id,
        "scope": "cases:read cases:write"})
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope", widened.text
    retry = refresh(platform, client, body["refresh_token"])  # the client corrects itself
    assert retry.status_code == 200, retry.text
    assert graphql_me(platform, retry.json()["access_token"]).status_code == 200
    assert graphql_me(platform, body["access_token"]).status_code == 200  # the session was not revoked


# --- forwarding headers (finding 6): a platform of its own, with a small budget per address --------

PROXY = "127.0.0.5"


@pytest.fixture(scope="module")
def proxied_platform() -> Iterator[Platform]:
    """3 failed authentications per address in 5 minutes; only 127.0.0.5 is a trusted proxy."""
    p = start_platform("segin-e2e-proxy-", extra_env={"SEGIN_AUTH_FAILURES_PER_IP": "3",
                                                      "SEGIN_FORWARDED_ALLOW_IPS": PROXY})
    yield p
    stop_platform(p)


def test_a_caller_cannot_choose_its_address_with_x_forwarded_for(proxied_platform: Platform) -> None:
    """127.0.0.1 is not a configured proxy (uvicorn's default trusted it): its headers are ignored."""
    with caller(proxied_platform) as c:
        statuses = [c.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(f"guess-{uuid.uuid4().hex[:6]}", "wrong"),
                           headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429], statuses


def test_a_configured_proxy_is_believed_about_who_it_forwards(proxied_platform: Platform) -> None:
    with caller(proxied_platform, PROXY) as proxy:
        def from_(address: str) -> int:
            return proxy.post("/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(f"guess-{uuid.uuid4().hex[:6]}", "wrong"),
                              headers={"X-Forwarded-For": address}).status_code

        assert [from_("198.51.100.7") for _ in range(4)] == [401, 401, 401, 429]
        assert from_("198.51.100.8") == 401  # another caller behind the same proxy is not throttled


# --- a spray from a shared address does not stop those known there (review finding 5) -----------


def invented(c: httpx.Client) -> int:
    """One failure with a client id nobody registered: what a sprayer sends."""
    return get_token(c, (f"nobody-{uuid.uuid4().hex[:8]}", "bad")).status_code


def tokens_from(platform: Platform, client: PublicClient, who: Person, address: str) -> dict[str, Any]:
    """The whole sign-in from ``address``: the page, then the code exchanged by the app at that address."""
    verifier, challenge = pkce()
    params = authorize_params(client, challenge)
    with caller(platform, address) as b:
        page = b.get("/oauth/authorize", params=params)
        answer = post_credentials(b, page, who.username, who.password)
        assert answer.status_code == 302, answer.text
        code = query_of(answer.headers["location"])["code"]
        token = b.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": params["redirect_uri"], "client_id": client.client_id,
                                             "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return dict(token.json())


def test_a_spray_of_invented_client_ids_does_not_stop_a_client_that_works_from_that_address(
        proxied_platform: Platform) -> None:
    auth, stranger = confidential_client(proxied_platform), confidential_client(proxied_platform)
    with caller(proxied_platform, "127.0.0.71") as office:
        assert get_token(office, auth).status_code == 200  # the client's usual address
        assert [invented(office) for _ in range(4)] == [401, 401, 401, 429]  # budget of 3: the spray is slowed
        assert get_token(office, auth).status_code == 200  # known here: the address's budget is not its to pay
        assert invented(office) == 429  # the spray stays slowed
        assert get_token(office, stranger).status_code == 429  # never seen from here: waits like the sprayer
    with caller(proxied_platform, "127.0.0.72") as elsewhere:
        assert get_token(elsewhere, stranger).status_code == 200


def test_a_spray_from_a_shared_address_does_not_stop_a_person_who_works_from_there(
        proxied_platform: Platform) -> None:
    client, who, newcomer = public_client(proxied_platform), person(proxied_platform), person(proxied_platform)
    office = "127.0.0.73"
    first = tokens_from(proxied_platform, client, who, office)  # signed in from the office before
    with caller(proxied_platform, office) as c:
        assert [invented(c) for _ in range(4)] == [401, 401, 401, 429]
    ghost = f"ghost{uuid.uuid4().hex[:8]}.dgme"
    assert attempt(proxied_platform, client, ghost, "wrong password", office).status_code == 429  # usernames too
    again = tokens_from(proxied_platform, client, who, office)  # signs in, and the app gets its tokens
    assert graphql_me(proxied_platform, again["access_token"]).status_code == 200
    with caller(proxied_platform, office) as c:
        refreshed = c.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": first["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert invented(c) == 429
    assert attempt(proxied_platform, client, newcomer.username, newcomer.password, office).status_code == 429


# --- what the logs and the token endpoints tell (review findings 6a, 6e) -------------------------


def test_a_client_id_that_names_no_client_is_logged_as_a_pseudonym(platform: Platform) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"  # e.g. a secret pasted into the client id field
    known, _ = confidential_client(platform)
    with caller(platform, "127.0.0.35") as c:
        assert c.post("/oauth/revoke", data={"token": "t", "client_id": canary}).status_code == 401
        assert [get_token(c, (canary, "bad")).status_code for _ in range(6)][-1] == 429  # failed, then throttled
        assert get_token(c, (known, "bad")).status_code == 401
    log_file = platform.log_dir / "gateway.log"
    hashed = logged_pseudonym(platform, canary)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log_file.read_text().splitlines() if hashed in line or known in line]

    found = eventually(lambda: (ls := lines()) and {(ln["event"], ln["endpoint"]) for ln in ls} >= {
        ("auth.failure", "token"), ("auth.throttled", "token"), ("auth.failure", "revoke")} and ls)
    assert canary.lower() not in log_file.read_text().lower()
    assert {ln.get("client_id") for ln in found if hashed in json.dumps(ln)} == {None}
    assert any(ln.get("client_id") == known for ln in found)  # a registered client is named: operators need it


def test_revoking_a_token_that_is_not_yours_answers_as_for_a_garbage_token(platform: Platform) -> None:
    unicef_token, dgme = platform.token("unicef"), platform.client_credentials("dgme")
    not_yours, garbage = revoke(platform, unicef_token, dgme), revoke(platform, "not-a-token", dgme)
    forged = revoke(platform, unicef_token[:-4] + "AAAA", dgme)  # a token-shaped guess
    assert [(r.status_code, r.json()) for r in (not_yours, forged)] == [(garbage.status_code, garbage.json())] * 2
    assert garbage.status_code == 200 and garbage.json() == {}
    assert gateway_status(platform, unicef_token) == 200  # and nothing was revoked


def test_revoking_a_refresh_token_of_another_app_answers_as_for_a_garbage_token(platform: Platform) -> None:
    mine, theirs = public_client(platform), public_client(platform)
    body = tokens_for(platform, theirs, person(platform))

    def revoke_as_mine(token: str) -> tuple[int, Any]:
        response = revoke(platform, token, None, client_id=mine.client_id, token_type_hint="refresh_token")
        return response.status_code, response.json()

    assert revoke_as_mine(body["refresh_token"]) == revoke_as_mine(secrets.token_urlsafe(48)) == (200, {})
    assert refresh(platform, theirs, body["refresh_token"]).status_code == 200  # still theirs, still live


def test_introspecting_a_token_of_another_organisation_answers_as_for_a_garbage_token(platform: Platform) -> None:
    unicef_token, dgme = platform.token("unicef"), platform.client_credentials("dgme")
    answers = [introspect(platform, t, dgme) for t in (unicef_token, "not-a-token", unicef_token[:-4] + "AAAA")]
    assert {(r.status_code, json.dumps(r.json())) for r in answers} == {(200, '{"active": false}')}


def test_forwarding_headers_with_no_proxy_configured_are_reported_in_the_log(platform: Platform) -> None:
    """An operator behind a proxy they did not name learns it from the log (once per process)."""
    with caller(platform) as c:
        assert c.get("/healthz", headers={"X-Forwarded-For": "203.0.113.77"}).status_code == 200
    log_file = platform.log_dir / "gateway.log"
    eventually(lambda: '"proxy.headers_ignored"' in log_file.read_text())
    assert "203.0.113.77" not in log_file.read_text()
