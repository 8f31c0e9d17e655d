"""The authorization server's pure pieces: deny list, throttle, sign-in form state, language, scopes, URIs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.admin import check_redirect_uri
from gateway.auth.pages import FORM_LIFETIME, LoginState, choose_language
from gateway.auth.models import Client, _narrow
from gateway.auth.people import Person
from gateway.auth.throttle import FailureThrottle, pseudonym
from kernel.denylist import LEEWAY, RETENTION, DenyList, client_entry, jti_entry
from kernel.errors import Unauthenticated
from kernel.tokens import TokenVerifier

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


# --- deny list and verifier ----------------------------------------------------------------------


def test_deny_list_refuses_a_revoked_jti_until_it_would_have_expired() -> None:
    denied = DenyList()
    exp = time.time() + 600
    denied.apply(*jti_entry("jti-1", exp))
    assert denied.refusal({"jti": "jti-1", "client_id": "c", "iat": time.time()})
    assert denied.refusal({"jti": "jti-2", "client_id": "c", "iat": time.time()}) is None
    denied.prune(now=exp + LEEWAY + 1)
    assert denied.refusal({"jti": "jti-1", "client_id": "c", "iat": time.time()}) is None


def test_deny_list_refuses_a_revoked_clients_tokens_issued_before_the_revocation() -> None:
    denied = DenyList()
    revoked_at = time.time()
    denied.apply(*client_entry("dgme-demo", revoked_at))
    assert denied.refusal({"jti": "a", "client_id": "dgme-demo", "iat": int(revoked_at) - 10})
    assert denied.refusal({"jti": "b", "client_id": "dgme-demo", "iat": revoked_at + 5}) is None  # re-enabled later
    assert denied.refusal({"jti": "c", "client_id": "other", "iat": int(revoked_at) - 10}) is None
    denied.prune(now=revoked_at + RETENTION + 1)
    assert denied.refusal({"jti": "a", "client_id": "dgme-demo", "iat": int(revoked_at) - 10}) is None


@pytest.mark.parametrize("key, value", [("jti.%%%", b'{"exp": 1}'), ("jti.YQ", b"not json"),
                                        ("client.YQ", b'{"exp": 1}'), ("other.YQ", b"{}"), ("jti.YQ", b"[]")])
def test_malformed_deny_list_entries_are_ignored(key: str, value: bytes) -> None:
    denied = DenyList()
    denied.apply(key, value)
    assert denied.refusal({"jti": "a", "client_id": "a", "iat": 0}) is None


def test_deny_list_keys_are_valid_kv_keys_for_any_identifier() -> None:
    key, _ = client_entry("odd client/id with spaces*>", 1.0)
    assert key.startswith("client.") and all(c.isalnum() or c in "-_=." for c in key)


def _token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "https://gw", "aud": "segin-api", "sub": "s", "org": "o", "client_id": "c", "jti": "j",
            "iat": now, "exp": now + 300, **claims}
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, body, KEY)


async def _keys() -> KeySet:
    return KeySet([RSAKey.import_key(KEY.as_dict(private=False))])


async def test_verifier_refuses_revoked_tokens() -> None:
    denied = DenyList()
    verifier = TokenVerifier(_keys, "https://gw", "segin-api", denylist=denied)
    assert (await verifier.verify(_token(jti="live"))).jti == "live"
    denied.deny_jti("gone", time.time() + 300)
    with pytest.raises(Unauthenticated, match="revoked"):
        await verifier.verify(_token(jti="gone"))
    denied.deny_client("c", time.time() + 1)
    with pytest.raises(Unauthenticated, match="revoked"):
        await verifier.verify(_token(jti="live"))


async def test_check_is_the_same_verification_synchronously() -> None:
    verifier = TokenVerifier(_keys, "https://gw", "segin-api")
    keys = await _keys()
    assert verifier.check(_token(), keys)["sub"] == "s"
    for bad in (_token(aud="other"), _token(exp=int(time.time()) - 600), "a.b.c", "e30.e30.e30"):
        with pytest.raises(Unauthenticated):
            verifier.check(bad, keys)


# --- throttle ------------------------------------------------------------------------------------


def test_throttle_refuses_after_the_limit_with_a_growing_delay() -> None:
    throttle = FailureThrottle(3, window=300, base_delay=10, max_delay=40)
    for i in range(3):
        assert throttle.retry_after("k", now=100.0 + i) is None
        throttle.failed("k", now=100.0 + i)
    assert throttle.retry_after("k", now=103.0) == 9  # 10 s after the last failure
    assert throttle.retry_after("k", now=113.0) is None
    throttle.failed("k", now=113.0)
    assert throttle.retry_after("k", now=113.0) == 20  # doubled
    throttle.failed("k", now=140.0)
    throttle.failed("k", now=141.0)
    assert throttle.retry_after("k", now=141.0) == 40  # capped
    assert throttle.retry_after("other", now=141.0) is None


def test_throttle_forgets_failures_outside_the_window_and_after_success() -> None:
    throttle = FailureThrottle(2, window=60, base_delay=10)
    throttle.failed("k", now=0.0)
    throttle.failed("k", now=1.0)
    assert throttle.retry_after("k", now=2.0)
    assert throttle.retry_after("k", now=70.0) is None
    throttle.failed("j", now=0.0)
    throttle.succeeded("j")
    throttle.failed("j", now=1.0)
    assert throttle.retry_after("j", now=1.0) is None


def test_throttle_memory_is_bounded() -> None:
    throttle = FailureThrottle(1, max_keys=10)
    for i in range(100):
        throttle.failed(f"k{i}", now=0.0)
    assert len(throttle._failures) == 10


def test_pseudonyms_are_stable_keyed_and_case_insensitive() -> None:
    assert pseudonym(b"s", "Awa.DGME") == pseudonym(b"s", "awa.dgme ") != pseudonym(b"t", "awa.dgme")
    assert "awa" not in pseudonym(b"s", "awa.dgme")


# --- sign-in form state --------------------------------------------------------------------------


PARAMS = [("client_id", "app"), ("redirect_uri", "http://127.0.0.1:9/cb"), ("state", "xyz")]


def test_login_state_round_trip() -> None:
    state = LoginState(b"secret")
    assert state.open(state.sign(PARAMS, "cookie", "en"), "cookie") == (PARAMS, "en")


def test_login_state_is_bound_to_the_cookie_and_the_secret() -> None:
    token = LoginState(b"secret").sign(PARAMS, "cookie", "fr")
    assert LoginState(b"secret").open(token, "another cookie") is None
    assert LoginState(b"secret").open(token, None) is None
    assert LoginState(b"other secret").open(token, "cookie") is None


def test_login_state_cannot_be_altered_or_used_late() -> None:
    state = LoginState(b"secret")
    token = state.sign(PARAMS, "cookie", "fr", now=1000.0)
    body, mac = token.split(".")
    assert state.open(body[:-2] + "AA." + mac, "cookie", now=1000.0) is None
    assert state.open(token, "cookie", now=1000.0 + FORM_LIFETIME + 1) is None
    assert state.open("garbage", "cookie") is None


@pytest.mark.parametrize(("ui_locales", "accept", "expected"), [
    (None, None, "fr"), ("en", "fr", "en"), ("de en-GB", None, "en"), (None, "en-US,en;q=0.9", "en"),
    (None, "de,en;q=0.5,fr;q=0.8", "fr"), (None, "en;q=0", "fr"), (None, "de", "fr"), ("fr-ML", "en", "fr"),
])
def test_language_choice(ui_locales: str | None, accept: str | None, expected: str) -> None:
    assert choose_language(ui_locales, accept) == expected


# --- scopes and clients --------------------------------------------------------------------------


def _person(role: str, ceiling: set[str]) -> Person:
    return Person("p1", "org", "u", "U", role, frozenset(ceiling))


def _client(scopes: set[str]) -> Client:
    return Client("app", "org", None, frozenset(scopes), auth_method="none")


def test_person_scope_is_request_role_ceiling_and_client() -> None:
    everything = {"openid", "cases:read", "cases:write", "referrals:read", "audit:read", "statistics:read"}
    worker = _person("case_worker", {"cases:read", "referrals:read"})
    assert _narrow("openid cases:read cases:write audit:read", worker, _client(everything)) == "openid cases:read"
    admin = _person("org_admin", {"cases:read", "referrals:read"})
    assert _narrow("cases:read referrals:read", admin, _client(everything)) == "referrals:read"
    assert _narrow("openid cases:read", worker, _client({"cases:read"})) == "cases:read"
    assert _narrow("", worker, _client(everything)) == ""
    assert _person("unknown-role", everything).allowed_scopes() == frozenset()


def test_public_clients_authenticate_with_none_only() -> None:
    public = _client({"cases:read"})
    assert public.check_endpoint_auth_method("none", "token")
    assert not public.check_endpoint_auth_method("client_secret_basic", "token")
    assert not public.check_client_secret("anything")
    confidential = Client("sys", "org", "hash", frozenset())
    assert not confidential.check_endpoint_auth_method("none", "token")


@pytest.mark.parametrize("uri", ["https://app.example/cb", "http://127.0.0.1:8765/cb", "http://[::1]/cb",
                                 "http://localhost:3000/cb", "ml.segin.app:/callback"])
def test_acceptable_redirect_uris(uri: str) -> None:
    check_redirect_uri(uri)


@pytest.mark.parametrize("uri", ["http://app.example/cb", "https://app.example/cb#frag", "/relative",
                                 "javascript:alert(1)", "http://10.0.0.1/cb"])
def test_refused_redirect_uris(uri: str) -> None:
    with pytest.raises(SystemExit):
        check_redirect_uri(uri)
