"""kernel/tokens.py: RFC 9068 access-token verification with an in-memory key loader."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from kernel.errors import Forbidden, Unauthenticated
from kernel.tokens import Principal, TokenVerifier, bearer

ISSUER = "https://gateway.segin.test"
AUDIENCE = "segin-api"

KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
STRANGER_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})  # same kid, different key


class Loader:
    """Counts calls; serves whatever key set the test puts in ``keys``."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.fail = False

    async def __call__(self) -> KeySet:
        self.calls += 1
        if self.fail:
            raise OSError("key endpoint down")
        return KeySet.import_key_set({"keys": [k.as_dict(private=False) for k in self.keys]})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "org": "org-ngo",
        "client_id": "client-web",
        "scope": "cases:read cases:write",
        "jti": "jti-1",
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def token(key: Any = KEY, header: dict[str, Any] | None = None, **claim_changes: Any) -> str:
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    head.update(header or {})
    return jwt.encode({k: v for k, v in head.items() if v is not ...}, claims(**claim_changes), key)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def verifier(loader: Loader | None = None, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(loader or Loader(KEY), ISSUER, AUDIENCE, **kwargs)


async def test_valid_token_gives_the_principal() -> None:
    raw = token()
    principal = await verifier().verify(raw)
    assert principal == Principal(
        subject="user-42",
        org_id="org-ngo",
        client_id="client-web",
        scopes=frozenset({"cases:read", "cases:write"}),
        jti="jti-1",
        token=raw,
    )
    assert raw not in repr(principal)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
async def test_both_spellings_of_the_access_token_type_are_accepted(typ: str) -> None:
    assert (await verifier().verify(token(header={"typ": typ}))).org_id == "org-ngo"


async def test_audience_list_containing_ours_is_accepted() -> None:
    principal = await verifier().verify(token(aud=["another-api", AUDIENCE]))
    assert principal.subject == "user-42"


async def test_token_without_scope_has_no_scopes() -> None:
    principal = await verifier().verify(token(scope=..., client_id=...))
    assert principal.scopes == frozenset()
    assert principal.client_id == ""


async def test_expiry_within_leeway_is_tolerated() -> None:
    await verifier(leeway=30).verify(token(exp=int(time.time()) - 5))


async def test_key_rotation_is_picked_up_after_refresh_after() -> None:
    loader = Loader(KEY)
    check = verifier(loader, refresh_after=0.05)
    await check.verify(token())
    loader.keys = [KEY, OTHER_KEY]
    await asyncio.sleep(0.1)
    principal = await check.verify(token(OTHER_KEY))
    assert principal.org_id == "org-ngo"
    assert loader.calls == 2


async def test_keys_are_cached() -> None:
    loader = Loader(KEY)
    check = verifier(loader)
    for _ in range(5):
        await check.verify(token())
    assert loader.calls == 1


# --- refusals ---------------------------------------------------------------------------------------


def _alg_none() -> str:
    head = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "key-1"}).encode())
    return f"{head}.{b64(json.dumps(claims()).encode())}."


def _hs256() -> str:
    return jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": "key-1"}, claims(), OctKey.generate_key(256))


def _rs256_label_with_hmac_of_public_key() -> str:
    """Algorithm confusion: claim RS256 but sign with HMAC keyed by the public key."""
    head = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "key-1"}).encode())
    body = b64(json.dumps(claims()).encode())
    public_pem = KEY.as_pem(private=False)
    signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def _tampered() -> str:
    head, _body, signature = token().split(".")
    return f"{head}.{b64(json.dumps(claims(org='org-other')).encode())}.{signature}"


BAD_TOKENS = {
    "expired": lambda: token(exp=int(time.time()) - 120),
    "not yet valid": lambda: token(nbf=int(time.time()) + 600),
    "wrong audience": lambda: token(aud="another-api"),
    "wrong issuer": lambda: token(iss="https://evil.example"),
    "missing org": lambda: token(org=...),
    "missing sub": lambda: token(sub=...),
    "missing jti": lambda: token(jti=...),
    "missing exp": lambda: token(exp=...),
    "alg none": _alg_none,
    "HS256": _hs256,
    "RS256 label, HMAC signature": _rs256_label_with_hmac_of_public_key,
    "wrong typ": lambda: token(header={"typ": "JWT"}),
    "missing typ": lambda: token(header={"typ": ...}),
    "unknown kid": lambda: token(OTHER_KEY),
    "known kid, other key": lambda: token(STRANGER_KEY),
    "tampered claims": _tampered,
    "garbage": lambda: "not.a.token",
    "two parts": lambda: "abc.def",
    "empty": lambda: "",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated(case: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await verifier().verify(BAD_TOKENS[case]())
    assert caught.value.code == "UNAUTHENTICATED"


async def test_missing_token_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        await verifier().verify(None)


async def test_unknown_kids_do_not_hammer_the_key_endpoint() -> None:
    loader = Loader(KEY)
    check = verifier(loader, refresh_after=30.0)
    await check.verify(token())
    assert loader.calls == 1
    for i in range(10):
        forged = token(RSAKey.generate_key(2048, parameters={"kid": f"forged-{i}"})) if i < 2 else token(OTHER_KEY)
        with pytest.raises(Unauthenticated):
            await check.verify(forged)
    assert loader.calls == 1


async def test_concurrent_unknown_kids_trigger_at_most_one_load() -> None:
    loader = Loader(KEY)
    check = verifier(loader, refresh_after=30.0)
    results = await asyncio.gather(*(check.verify(token(OTHER_KEY)) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert loader.calls == 1


async def test_unknown_kid_reloads_once_refresh_after_has_passed() -> None:
    loader = Loader(KEY)
    check = verifier(loader, refresh_after=0.05)
    with pytest.raises(Unauthenticated):
        await check.verify(token(OTHER_KEY))
    with pytest.raises(Unauthenticated):
        await check.verify(token(OTHER_KEY))
    assert loader.calls == 1
    await asyncio.sleep(0.1)
    with pytest.raises(Unauthenticated):
        await check.verify(token(OTHER_KEY))
    assert loader.calls == 2


async def test_keys_unavailable_at_first_is_unauthenticated() -> None:
    loader = Loader(KEY)
    loader.fail = True
    with pytest.raises(Unauthenticated, match="not available"):
        await verifier(loader).verify(token())


async def test_failed_refresh_keeps_the_cached_keys() -> None:
    loader = Loader(KEY)
    check = verifier(loader, refresh_after=0.0)
    await check.verify(token())
    loader.fail = True
    await asyncio.sleep(0.01)
    with pytest.raises(Unauthenticated):
        await check.verify(token(OTHER_KEY))  # triggers a failing refresh
    assert (await check.verify(token())).org_id == "org-ngo"


# --- Principal.require and bearer ----------------------------------------------------------------


def test_require_passes_with_the_scope() -> None:
    principal = Principal("s", "o", "c", frozenset({"cases:read"}), "j", "t")
    principal.require("cases:read")


def test_require_without_the_scope_is_forbidden_insufficient_scope() -> None:
    principal = Principal("s", "o", "c", frozenset({"cases:read"}), "j", "t")
    with pytest.raises(Forbidden) as caught:
        principal.require("cases:write")
    assert caught.value.code == "INSUFFICIENT_SCOPE"
    assert "cases:write" in caught.value.message
    assert caught.value.to_dict()["code"] == "INSUFFICIENT_SCOPE"


def test_require_does_not_match_scope_prefixes() -> None:
    principal = Principal("s", "o", "c", frozenset({"cases"}), "j", "t")
    with pytest.raises(Forbidden):
        principal.require("cases:read")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER abc", "abc"), ("Basic abc", None),
     ("Bearer ", None), (None, None), ("", None)],
)
def test_bearer(header: str | None, expected: str | None) -> None:
    assert bearer(header) == expected
