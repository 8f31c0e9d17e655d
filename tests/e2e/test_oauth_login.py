"""People sign in: authorization code + PKCE, the sign-in page, lock-out, refresh rotation, OpenID Connect.

Driven over real HTTP against the real processes, as a browser and a public client would.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from contracts.scopes import ROLE_SCOPES
from devstack.platform import DEMO_DATA, ROOT, Platform
from tests.e2e.conftest import eventually, start_platform, stop_platform

pytestmark = pytest.mark.e2e

ME = "{ me { subject clientId organisation { id } scopes } }"


# --- helpers (also used by test_oauth_lifecycle.py) -------------------------------------------------


def admin(platform: Platform, *args: str, stdin: str | None = None) -> str:
    """``python -m gateway.admin …`` with the platform's environment; returns its standard output."""
    result = subprocess.run([sys.executable, "-m", "gateway.admin", *args], env=platform.env(), cwd=ROOT,
                            input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class PublicClient:
    client_id: str
    redirect_uris: list[str]

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]


def public_client(platform: Platform, org: str = "dgme", *, shared: bool = False,
                  scopes: str = "openid cases:read cases:write referrals:read notifications:read directory:read "
                                "statistics:read") -> PublicClient:
    """A new public client (no secret, PKCE) with two exact loopback redirect URIs."""
    client_id = f"app-{uuid.uuid4().hex[:8]}"
    uris = [f"http://127.0.0.1:9/{client_id}/callback", f"http://127.0.0.1:9/{client_id}/other"]
    args = ["create-client", client_id, "--org", org, "--scopes", scopes, "--public"]
    for uri in uris:
        args += ["--redirect-uri", uri]
    admin(platform, *args, *(["--shared"] if shared else []))
    return PublicClient(client_id, uris)


@dataclass
class Person:
    username: str
    password: str
    person_id: str
    org: str


def person(platform: Platform, org: str = "dgme", role: str = "case_worker") -> Person:
    username = f"p{uuid.uuid4().hex[:10]}.{org}"
    created = json.loads(admin(platform, "create-person", username, "--org", org, "--role", role,
                               "--name", "Mariam Test"))
    return Person(username, created["password"], created["person_id"], org)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize_params(client: PublicClient, challenge: str, **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
              "scope": "openid cases:read", "state": secrets.token_urlsafe(12), "code_challenge": challenge,
              "code_challenge_method": "S256", "nonce": secrets.token_urlsafe(12)}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def browser(platform: Platform) -> httpx.Client:
    return httpx.Client(base_url=platform.base_url, follow_redirects=False, timeout=30)


def login_state(page: httpx.Response) -> str:
    found = re.search(r'name="login_state" value="([^"]+)"', page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def post_credentials(b: httpx.Client, page: httpx.Response, username: str, password: str) -> httpx.Response:
    return b.post("/oauth/authorize", data={"login_state": login_state(page), "username": username,
                                            "password": password})


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class SignIn:
    code: str
    verifier: str
    params: dict[str, str]


def sign_in(platform: Platform, client: PublicClient, who: Person, **extra: str) -> SignIn:
    """Browser part of the flow: authorization request, sign-in form, redirect back with a code."""
    verifier, challenge = pkce()
    params = authorize_params(client, challenge, **extra)
    with browser(platform) as b:
        page = b.get("/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        answer = post_credentials(b, page, who.username, who.password)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(params["redirect_uri"] + "?"), location
    back = query_of(location)
    assert back["state"] == params["state"]
    return SignIn(back["code"], verifier, params)


def exchange(platform: Platform, client: PublicClient, done: SignIn, **changes: str | None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": done.code, "redirect_uri": done.params["redirect_uri"],
            "client_id": client.client_id, "code_verifier": done.verifier}
    form.update(changes)
    return httpx.post(f"{platform.base_url}/oauth/token", data={k: v for k, v in form.items() if v is not None},
                      timeout=30)


def tokens_for(platform: Platform, client: PublicClient, who: Person, **extra: str) -> dict[str, Any]:
    response = exchange(platform, client, sign_in(platform, client, who, **extra))
    assert response.status_code == 200, response.text
    return response.json()


def refresh(platform: Platform, client: PublicClient, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{platform.base_url}/oauth/token", timeout=30,
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                            "client_id": client.client_id})


def graphql_me(platform: Platform, access_token: str) -> httpx.Response:
    return httpx.post(platform.graphql_url, json={"query": ME}, timeout=30,
                      headers={"Authorization": f"Bearer {access_token}"})


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


# --- the flow ------------------------------------------------------------------------------------


def test_authorization_code_with_pkce_gives_a_working_token_for_the_person(platform: Platform) -> None:
    client, who = public_client(platform), person(platform, "dgme")
    verifier, challenge = pkce()
    params = authorize_params(client, challenge, scope="openid cases:read referrals:read")
    with browser(platform) as b:
        page = b.get("/oauth/authorize", params=params)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="fr">' in page.text and "Nom d’utilisateur" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        answer = post_credentials(b, page, who.username, who.password)
    assert answer.status_code == 302, answer.text
    back = query_of(answer.headers["location"])
    assert back["state"] == params["state"] and back["code"]
    assert back["iss"] == platform.base_url  # RFC 9207

    issued = exchange(platform, client, SignIn(back["code"], verifier, params))
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"].lower() == "bearer" and body["refresh_token"] and body["id_token"]
    assert issued.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == who.person_id and claims["org"] == "dgme" and claims["client_id"] == client.client_id
    assert claims["org_type"] == "STATE"  # consent may name a type of organisation: services need it

    me = graphql_me(platform, body["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["data"]["me"] == {"subject": who.person_id, "clientId": client.client_id,
                                       "organisation": {"id": "dgme"},
                                       "scopes": ["cases:read", "openid", "referrals:read"]}


def test_plain_or_missing_pkce_is_refused_back_to_the_client(platform: Platform) -> None:
    client = public_client(platform)
    _, challenge = pkce()
    for changes in ({"code_challenge_method": "plain"},
                    {"code_challenge_method": None},
                    {"code_challenge": None, "code_challenge_method": None}):
        params = authorize_params(client, challenge, **changes)  # type: ignore[arg-type]
        with browser(platform) as b:
            answer = b.get("/oauth/authorize", params=params)
        assert answer.status_code == 302, (changes, answer.text)
        back = query_of(answer.headers["location"])
        assert back["error"] == "invalid_request", back
        assert back["state"] == params["state"] and "code" not in back


def test_wrong_or_missing_code_verifier_is_refused(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    wrong = exchange(platform, client, sign_in(platform, client, who), code_verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
    missing = exchange(platform, client, sign_in(platform, client, who), code_verifier=None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request", missing.text
    assert "access_token" not in wrong.json() and "access_token" not in missing.json()


def test_a_code_works_once_and_its_reuse_revokes_what_it_gave(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    done = sign_in(platform, client, who)
    first = exchange(platform, client, done)
    assert first.status_code == 200, first.text
    again = exchange(platform, client, done)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    # RFC 6749 §4.1.2: tokens issued from a replayed code are revoked.
    assert refresh(platform, client, first.json()["refresh_token"]).json()["error"] == "invalid_grant"
    eventually(lambda: graphql_me(platform, first.json()["access_token"]).status_code == 401, timeout=10)


def test_redirect_uri_must_match_exactly(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    _, challenge = pkce()
    for uri in (client.redirect_uri + "/x", client.redirect_uri.replace("127.0.0.1", "localhost"),
                "https://attacker.example/callback"):
        with browser(platform) as b:
            answer = b.get("/oauth/authorize", params=authorize_params(client, challenge, redirect_uri=uri))
        assert answer.status_code == 400, answer.text  # never redirected to an unregistered URI
        assert "location" not in answer.headers
    done = sign_in(platform, client, who)
    other = exchange(platform, client, done, redirect_uri=client.redirect_uris[1])  # registered, but not the one used
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant", other.text


def test_a_code_is_bound_to_its_client(platform: Platform) -> None:
    client, thief, who = public_client(platform), public_client(platform), person(platform)
    done = sign_in(platform, client, who)
    stolen = exchange(platform, thief, done, redirect_uri=done.params["redirect_uri"], client_id=thief.client_id)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text


# --- the sign-in page ----------------------------------------------------------------------------


def _attempt(platform: Platform, client: PublicClient, username: str, password: str,
             ui_locales: str | None = None) -> httpx.Response:
    _, challenge = pkce()
    with browser(platform) as b:
        page = b.get("/oauth/authorize", params=authorize_params(client, challenge, ui_locales=ui_locales))
        assert page.status_code == 200, page.text
        return post_credentials(b, page, username, password)


LOCKED_FR = "ce compte est verrouillé pendant 15 minutes"
LOCKED_EN = "this account is locked for 15 minutes"
WRONG_FR = "Nom d’utilisateur ou mot de passe incorrect."


def test_five_failures_lock_the_account_for_fifteen_minutes(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    for attempt in range(1, 5):
        answer = _attempt(platform, client, who.username, "wrong password")
        assert answer.status_code == 200 and WRONG_FR in answer.text, attempt
        assert 'role="alert"' in answer.text and "code=" not in answer.headers.get("location", "")
    fifth = _attempt(platform, client, who.username, "wrong password")
    assert LOCKED_FR in fifth.text, fifth.text
    right_but_locked = _attempt(platform, client, who.username, who.password)
    assert right_but_locked.status_code == 200 and LOCKED_FR in right_but_locked.text
    assert "location" not in right_but_locked.headers
    english = _attempt(platform, client, who.username, who.password, ui_locales="en")
    assert '<html lang="en">' in english.text and LOCKED_EN in english.text
    admin(platform, "unlock-person", who.username)
    assert _attempt(platform, client, who.username, who.password).status_code == 302


def test_unknown_usernames_get_the_same_answers_as_real_ones(platform: Platform) -> None:
    client = public_client(platform)
    ghost = f"ghost{uuid.uuid4().hex[:8]}.dgme"
    answers = [_attempt(platform, client, ghost, "wrong password") for _ in range(6)]
    assert all(WRONG_FR in a.text for a in answers[:4])
    assert all(LOCKED_FR in a.text for a in answers[4:])


def test_language_of_the_page(platform: Platform) -> None:
    client = public_client(platform)
    _, challenge = pkce()
    with browser(platform) as b:
        english = b.get("/oauth/authorize", params=authorize_params(client, challenge),
                        headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
        french = b.get("/oauth/authorize", params=authorize_params(client, challenge, ui_locales="fr"),
                       headers={"Accept-Language": "en"})
        default = b.get("/oauth/authorize", params=authorize_params(client, challenge),
                        headers={"Accept-Language": "de"})
    assert '<html lang="en">' in english.text and "Username" in english.text and "Sign in" in english.text
    assert '<html lang="fr">' in french.text and "Se connecter" in french.text
    assert '<html lang="fr">' in default.text
    for page in (english, french, default):  # accessible form: labelled fields, autocomplete hints
        assert '<label for="username">' in page.text and '<label for="password">' in page.text
        assert 'autocomplete="current-password"' in page.text


def test_the_form_cannot_be_forged_or_replayed_from_another_browser(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    _, challenge = pkce()
    with browser(platform) as b:
        page = b.get("/oauth/authorize", params=authorize_params(client, challenge))
    state = login_state(page)
    with browser(platform) as other:  # no login cookie: a cross-site post, or a form lifted from elsewhere
        answer = other.post("/oauth/authorize", data={"login_state": state, "username": who.username,
                                                      "password": who.password})
    assert answer.status_code == 400 and "a expiré" in answer.text
    with browser(platform) as b:
        page = b.get("/oauth/authorize", params=authorize_params(client, challenge))
        encoded, mac = login_state(page).split(".")
        forged_params = [["client_id", client.client_id], ["redirect_uri", "https://attacker.example/cb"]]
        forged = base64.urlsafe_b64encode(json.dumps({"p": forged_params, "t": 0, "c": "", "l": "fr"}).encode())
        answer = b.post("/oauth/authorize", data={"login_state": f"{forged.decode().rstrip('=')}.{mac}",
                                                  "username": who.username, "password": who.password})
    assert answer.status_code == 400 and "location" not in answer.headers


def test_unknown_client_or_missing_redirect_is_shown_not_redirected(platform: Platform) -> None:
    _, challenge = pkce()
    with browser(platform) as b:
        unknown = b.get("/oauth/authorize", params={"response_type": "code", "client_id": "nobody",
                                                    "redirect_uri": "https://attacker.example/cb",
                                                    "code_challenge": challenge, "code_challenge_method": "S256"})
    assert unknown.status_code == 400 and "location" not in unknown.headers
    assert "n’est pas valide" in unknown.text


def test_a_person_signs_in_only_through_their_organisations_or_a_shared_client(platform: Platform) -> None:
    dgme_app, shared_app, unicef_person = public_client(platform, "dgme"), public_client(platform, shared=True), \
        person(platform, "unicef")
    answer = _attempt(platform, dgme_app, unicef_person.username, unicef_person.password)
    assert answer.status_code == 403 and "ne peut pas se connecter à cette application" in answer.text
    token = tokens_for(platform, shared_app, unicef_person)["access_token"]
    assert claims_of(token)["org"] == "unicef"


# --- scopes --------------------------------------------------------------------------------------


def test_scope_is_narrowed_by_role(platform: Platform) -> None:
    client, org_admin = public_client(platform), person(platform, "dgme", "org_admin")
    body = tokens_for(platform, client, org_admin, scope="cases:read cases:write referrals:read notifications:read")
    assert set(body["scope"].split()) == {"referrals:read", "notifications:read"}
    me = graphql_me(platform, body["access_token"]).json()["data"]["me"]
    assert set(me["scopes"]) == {"referrals:read", "notifications:read"}


def test_scope_is_narrowed_by_the_organisation_ceiling(platform: Platform) -> None:
    client, worker = public_client(platform, shared=True), person(platform, "unicef", "case_worker")
    body = tokens_for(platform, client, worker, scope="cases:read cases:write referrals:read")
    assert set(body["scope"].split()) == {"cases:read", "referrals:read"}  # UNICEF's ceiling has no cases:write
    assert claims_of(body["access_token"])["org"] == "unicef"


def test_scope_is_narrowed_by_the_client(platform: Platform) -> None:
    client = public_client(platform, scopes="openid cases:read")
    body = tokens_for(platform, client, person(platform), scope="openid cases:read cases:write")
    assert set(body["scope"].split()) == {"openid", "cases:read"}


def test_unknown_scope_is_refused(platform: Platform) -> None:
    client = public_client(platform)
    _, challenge = pkce()
    with browser(platform) as b:
        answer = b.get("/oauth/authorize", params=authorize_params(client, challenge, scope="openid admin:all"))
    assert answer.status_code == 302 and query_of(answer.headers["location"])["error"] == "invalid_scope"


# --- refresh tokens ------------------------------------------------------------------------------


def test_refresh_tokens_rotate_and_a_replay_revokes_the_family(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    first = tokens_for(platform, client, who)
    second = refresh(platform, client, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert claims_of(second_body["access_token"])["sub"] == who.person_id
    third = refresh(platform, client, second_body["refresh_token"])
    assert third.status_code == 200, third.text

    replay = refresh(platform, client, first["refresh_token"])  # the first one again: stolen?
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    # The whole family is revoked: the latest refresh token, and the live access tokens.
    latest = refresh(platform, client, third.json()["refresh_token"])
    assert latest.status_code == 400 and latest.json()["error"] == "invalid_grant", latest.text
    for access_token in (first["access_token"], second_body["access_token"], third.json()["access_token"]):
        eventually(lambda t=access_token: graphql_me(platform, t).status_code == 401, timeout=10)


def test_a_refresh_token_is_bound_to_its_client(platform: Platform) -> None:
    client, other, who = public_client(platform), public_client(platform), person(platform)
    body = tokens_for(platform, client, who)
    assert refresh(platform, other, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_can_narrow_but_not_widen(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    body = tokens_for(platform, client, who, scope="openid cases:read referrals:read")
    narrowed = httpx.post(f"{platform.base_url}/oauth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": client.client_id,
        "scope": "cases:read"})
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "cases:read", narrowed.text
    widened = httpx.post(f"{platform.base_url}/oauth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": narrowed.json()["refresh_token"],
        "client_id": client.client_id, "scope": "cases:read cases:write"})
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope", widened.text


# --- OpenID Connect ------------------------------------------------------------------------------


def test_id_token_is_signed_for_the_client_and_echoes_the_nonce(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    nonce = secrets.token_urlsafe(16)
    body = tokens_for(platform, client, who, nonce=nonce, scope="openid cases:read")
    config = httpx.get(f"{platform.base_url}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(httpx.get(config["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    claims = decoded.claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": platform.base_url},
                          aud={"essential": True, "value": client.client_id},
                          exp={"essential": True}, iat={"essential": True}).validate(claims)
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"]
    assert claims["nonce"] == nonce
    assert claims["sub"] == who.person_id and claims["org"] == "dgme" and claims["name"] == "Mariam Test"
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def test_no_id_token_without_openid(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    body = tokens_for(platform, client, who, scope="cases:read")
    assert "id_token" not in body and body["scope"] == "cases:read"


def test_a_nonce_cannot_be_replayed(platform: Platform) -> None:
    client, who = public_client(platform), person(platform)
    nonce = secrets.token_urlsafe(16)
    tokens_for(platform, client, who, nonce=nonce)
    _, challenge = pkce()
    with browser(platform) as b:
        again = b.get("/oauth/authorize", params=authorize_params(client, challenge, nonce=nonce))
    assert again.status_code == 302 and query_of(again.headers["location"])["error"] == "invalid_request"


def test_discovery_documents(platform: Platform) -> None:
    base = platform.base_url
    oauth = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    oidc = httpx.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    for meta in (oauth, oidc):
        assert meta["issuer"] == base
        assert meta["authorization_endpoint"] == f"{base}/oauth/authorize"
        assert meta["introspection_endpoint"] == f"{base}/oauth/introspect"
        assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])
        assert meta["response_types_supported"] == ["code"]
        assert meta["authorization_response_iss_parameter_supported"] is True
    assert oidc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert oidc["subject_types_supported"] == ["public"]
    assert "openid" in oidc["scopes_supported"]
    url = f"{oidc['authorization_endpoint']}?{urlencode({'response_type': 'code', 'client_id': 'x'})}"
    assert httpx.get(url, timeout=10).status_code == 400  # the advertised endpoint is the real one


def test_demo_seed_has_people_and_keeps_the_client_file_readable(platform: Platform) -> None:
    data = json.loads(platform.secrets_file.read_text())
    assert data["dgme"]["client_id"] == "dgme-demo" and data["dgme"]["client_secret"]
    demo = data["dgme"]["people"]["awa.dgme"]
    assert demo["role"] == "case_worker" and demo["password"]
    stewards = [org for org in data if data[org]["people"].get("steward", {}).get("role") == "platform_steward"]
    assert len(stewards) == 1
    assert all(data[org]["people"] for org in data)
    web = PublicClient("segin-web", ["http://127.0.0.1:8765/callback"])
    body = tokens_for(platform, web, Person("ibrahim.unicef", data["unicef"]["people"]["ibrahim.unicef"]["password"],
                                            "", "unicef"))
    assert claims_of(body["access_token"])["org"] == "unicef"
    # The steward signs in through the same app and gets what the role and their organisation allow.
    (steward_org,) = stewards
    asked = "openid audit:read statistics:read directory:read cases:read"
    steward = Person("steward", data[steward_org]["people"]["steward"]["password"], "", steward_org)
    granted = tokens_for(platform, web, steward, scope=asked)["scope"]
    ceiling = {s for o in json.loads(DEMO_DATA.read_text())["organisations"] if o["id"] == steward_org
               for s in o["scopes"]} | {"openid"}
    assert set(granted.split()) == set(asked.split()) & ROLE_SCOPES["platform_steward"] & ceiling


@pytest.fixture(scope="module")
def strict_platform() -> Iterator[Platform]:
    """A platform allowing only 3 failed authentications per address in 5 minutes."""
    p = start_platform("segin-e2e-strict-", extra_env={"SEGIN_AUTH_FAILURES_PER_IP": "3"})
    yield p
    stop_platform(p)


def test_sign_in_and_token_failures_share_one_budget_per_address(strict_platform: Platform) -> None:
    """Guessing passwords on the page and secrets at the token endpoint draws on the same budget."""
    platform = strict_platform
    client, who = public_client(platform), person(platform)
    for _ in range(2):
        bad = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(f"guess-{uuid.uuid4().hex[:6]}", "wrong"), timeout=30)
        assert bad.status_code == 401
    assert _attempt(platform, client, who.username, "wrong password").status_code == 200  # the form again
    throttled = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(f"guess-{uuid.uuid4().hex[:6]}", "wrong"), timeout=30)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    page = _attempt(platform, client, who.username, who.password)
    assert page.status_code == 429  # even the right password waits: the address is throttled
