"""Token signing keys: generated at first start, kept in the gateway's schema, never in the repository."""

from __future__ import annotations

import hashlib
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from psycopg.types.json import Jsonb

from kernel.db import Connection


class SigningKeys:
    """The current signing key, and the public set of every key not yet retired."""

    def __init__(self, current: RSAKey, public: KeySet) -> None:
        self.current, self.public = current, public

    def jwks(self) -> dict[str, Any]:
        return self.public.as_dict(private=False)


def _new_key() -> RSAKey:
    key = RSAKey.generate_key(2048, private=True)
    kid = hashlib.sha256(key.as_pem(private=False)).hexdigest()[:16]
    return RSAKey.import_key(key.as_dict(private=True), {"kid": kid, "use": "sig", "alg": "RS256"})


async def load_or_create(conn: Connection) -> SigningKeys:
    await conn.execute("select pg_advisory_xact_lock(hashtext('gateway.signing_keys'))")
    cur = await conn.execute("select private_jwk from gateway.signing_keys where retired_at is null order by created_at")
    rows = await cur.fetchall()
    if not rows:
        key = _new_key()
        await conn.execute(
            "insert into gateway.signing_keys (kid, private_jwk) values (%s, %s)",
            (key.kid, Jsonb(key.as_dict(private=True))),
        )
        rows = [{"private_jwk": key.as_dict(private=True)}]
    keys = [RSAKey.import_key(row["private_jwk"]) for row in rows]
    public = KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in keys])
    return SigningKeys(current=keys[-1], public=public)
