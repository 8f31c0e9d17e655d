"""The platform runs on the newest servers too: PostgreSQL and nats-server from the wheels.

The rest of the suite uses the system's servers when present (nats-server 2.9 on Debian 12);
on a machine without them, the wheels are the default and this test covers the same path.
"""

from __future__ import annotations

import asyncio

import nats
import psycopg
import pytest

from tests.e2e.conftest import Api, arrival, eventually, start_platform, stop_platform

pytestmark = pytest.mark.e2e

NOTIFICATIONS = "{ notifications(first: 10) { nodes { kind caseId } } }"


def test_worked_example_on_wheel_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGIN_USE_WHEELS", "1")
    platform = start_platform("segin-wheels-")
    try:
        with psycopg.connect(platform.database_url) as conn:
            version = conn.execute("show server_version_num").fetchone()[0]
        assert int(version) >= 180000

        async def nats_version() -> tuple[int, int]:
            nc = await nats.connect(**platform.nats_options())
            try:
                return nc.connected_server_version.major, nc.connected_server_version.minor
            finally:
                await nc.close()

        assert asyncio.run(nats_version()) >= (2, 10)

        api = Api(platform, {})
        body = api.register("dgme", arrival())
        case_id = body["data"]["registerArrival"]["id"]

        def unicef_notified() -> bool:
            nodes = api.gql("unicef", NOTIFICATIONS)["data"]["notifications"]["nodes"]
            return any(n["caseId"] == case_id and n["kind"] == "referral.received" for n in nodes)

        eventually(unicef_notified)
    finally:
        stop_platform(platform)
