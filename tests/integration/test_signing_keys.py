"""The gateway's signing keys against the real PostgreSQL: a reload with nothing new keeps the keys it holds
(importing an RSA private key checks it, tens of milliseconds of CPU taken from requests every 5 s), and a
key rotated in by another replica or the CLI is picked up at the next reload."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.localstack import PostgresServer
from gateway import keys as signing
from gateway.app import MIGRATIONS, SCHEMA
from kernel.db import migrate
from tests.integration.conftest import _fresh_database


@pytest.fixture
async def gateway_url(postgres: PostgresServer) -> str:
    url = await _fresh_database(postgres)
    await migrate(url, SCHEMA, MIGRATIONS)
    return url


@pytest.fixture
def conn(gateway_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(gateway_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


def test_a_reload_with_the_same_keys_keeps_them_and_a_rotated_key_signs_from_the_next(
        conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = signing.KeyRing(signing.load_or_create(conn))
    held = ring._keys
    imported: list[str] = []
    real_import = signing.RSAKey.import_key
    monkeypatch.setattr(signing.RSAKey, "import_key",
                        staticmethod(lambda data, *a: imported.append(str(data.get("kid"))) or real_import(data, *a)))

    assert ring.reload(conn) is False
    assert ring._keys is held and imported == [], "nothing new: no key imported again"

    new_kid = signing.rotate(conn)
    assert ring.reload(conn) is True
    assert str(ring.current.kid) == new_kid and ring._keys.kids == [str(held.current.kid), new_kid]
    assert new_kid in imported
