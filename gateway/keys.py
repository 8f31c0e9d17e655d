"""Token signing keys: generated at first start, kept in the gateway's schema, never in the repository.

Rotation (``python -m gateway.admin rotate-keys``) adds a newer key; tokens are signed with the
newest key. An older key stays published in the JWKS until every token it may have signed has
expired (``RETIRE_AFTER`` after a newer key appeared), then it is retired and dropped from the JWKS.
A running gateway reloads the keys every few seconds, so it starts signing with a key rotated in by
the CLI or by another replica without a restart.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from gateway.store import keys as store
from gateway.store.connections import SyncConnection
from kernel.denylist import ACCESS_TOKEN_LIFETIME, LEEWAY

RELOAD_EVERY = 5.0  # seconds between a gateway's reloads of the keys
# A replaced key may still sign for RELOAD_EVERY (until each replica reloads); its tokens then live
# ACCESS_TOKEN_LIFETIME, and verifiers tolerate LEEWAY: publish it that long, plus a margin.
RETIRE_AFTER = ACCESS_TOKEN_LIFETIME + LEEWAY + int(RELOAD_EVERY) + 55


class SigningKeys:
    """The current signing key, and the public set of every key not yet retired."""

    def __init__(self, current: RSAKey, public: KeySet) -> None:
        self.current, self.public = current, public
        self.kids = [str(k.kid) for k in public.keys]  # oldest first, as published

    def jwks(self) -> dict[str, Any]:
        return self.public.as_dict(private=False)


class KeyRing:
    """The gateway's live ``SigningKeys``, swapped whole on reload (safe across threads)."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys
        self._lock = threading.Lock()

    @property
    def current(self) -> RSAKey:
        return self._keys.current

    @property
    def public(self) -> KeySet:
        return self._keys.public

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    def reload(self, conn: SyncConnection) -> bool:
        """Retire expired keys and load the others; True when the signing key changed."""
        with self._lock:
            retire_expired(conn)
            keys = load(conn, self._keys)
            changed = keys.current.kid != self._keys.current.kid
            self._keys = keys
            return changed


def _new_key() -> RSAKey:
    key = RSAKey.generate_key(2048, private=True)
    kid = hashlib.sha256(key.as_pem(private=False)).hexdigest()[:16]
    return RSAKey.import_key(key.as_dict(private=True), {"kid": kid, "use": "sig", "alg": "RS256"})


def _insert(conn: SyncConnection, key: RSAKey) -> None:
    store.insert_key(conn, str(key.kid), key.as_dict(private=True))


def load(conn: SyncConnection, known: SigningKeys | None = None) -> SigningKeys:
    """Every published key; the newest signs. Raises LookupError when there is none. Returns ``known``
    itself when the published keys are the same ones: importing an RSA private key checks it, tens of
    milliseconds of CPU taken from requests at every reload."""
    jwks = store.published_keys(conn)
    if not jwks:
        raise LookupError("no signing key")
    if known is not None and [jwk["kid"] for jwk in jwks] == known.kids:
        return known
    keys = [RSAKey.import_key(jwk) for jwk in jwks]
    public = KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in keys])
    return SigningKeys(current=keys[-1], public=public)


def load_or_create(conn: SyncConnection) -> SigningKeys:
    """The keys, creating the first one if needed (serialised between replicas starting together)."""
    with conn.transaction():
        store.serialise_keys(conn)
        try:
            return load(conn)
        except LookupError:
            _insert(conn, _new_key())
    return load(conn)


def rotate(conn: SyncConnection) -> str:
    """Add a new signing key (it signs from the gateways' next reload); returns its kid."""
    key = _new_key()
    with conn.transaction():
        store.serialise_keys(conn)
        _insert(conn, key)
        retire_expired(conn)
    return str(key.kid)


def retire_expired(conn: SyncConnection) -> list[str]:
    """Retire every key replaced by a newer one more than ``RETIRE_AFTER`` seconds ago."""
    return store.retire_replaced(conn, RETIRE_AFTER)
