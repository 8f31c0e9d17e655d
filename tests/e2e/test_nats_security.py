"""The platform's NATS is not an open bus, end to end: the processes started as ``make run`` starts
them, with ``NATS_URL`` listing a dead server next to the live one (as for a cluster)."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import nats
import psycopg
import pytest

from contracts.channels import REFERRAL_CREATED
from kernel.deadletters import list_dead_letters
from kernel.events import new_event
from devstack.localstack import free_port
from devstack.platform import Platform
from tests.conftest import traversable_tmpdir
from tests.e2e.conftest import Api, arrival, eventually, stop_platform
from tests.e2e.test_worked_example import NOTIFICATIONS

pytestmark = pytest.mark.e2e
FORGERS = ("/segin/intake", "https://attacker.example/segin/referral")


@pytest.fixture(scope="module")
def listed() -> Iterator[Platform]:
    """A platform whose every process gets ``NATS_URL=nats://<dead>,nats://<live>``."""
    platform = Platform(traversable_tmpdir("segin-e2e-nats-"))
    assert platform.nats is not None
    platform.extra_env["NATS_URL"] = f"nats://127.0.0.1:{free_port()},{platform.nats.url}"
    try:
        platform.start()
    except Exception:
        stop_platform(platform)
        raise
    yield platform
    stop_platform(platform)


def test_every_process_works_when_nats_url_lists_several_servers(listed: Platform) -> None:
    api = Api(listed, {})
    case_id = api.register("dgme", arrival())["data"]["registerArrival"]["id"]

    def unicef_notified() -> bool:  # intake → referral → notifications: events flow both ways
        nodes = api.gql("unicef", NOTIFICATIONS, {"first": 50})["data"]["notifications"]["nodes"]
        return any(n["caseId"] == case_id and n["kind"] == "referral.received" for n in nodes)

    eventually(unicef_notified)


def test_nats_refuses_clients_without_credentials_and_keeps_them_private(listed: Platform) -> None:
    async def anonymous() -> None:
        await nats.connect(servers=[listed.nats_url], allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=2)

    with pytest.raises(Exception, match="(?i)authorization violation"):
        asyncio.run(anonymous())
    assert listed.nats is not None
    assert stat.S_IMODE(listed.nats.credentials_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((listed.nats.store_dir / "nats.conf").stat().st_mode) == 0o600
    # Logs hold addresses, client and case ids: readable by their owner only, like the secrets.
    assert stat.S_IMODE(listed.log_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in [*listed.log_dir.iterdir(), listed.secrets_file]} == {0o600}


def _access_grants(platform: Platform, case_id: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(platform.database_url) as conn:
        rows = conn.execute("select referral_id::text, org_id, status from intake.access_grants where case_id = %s"
                            " order by 1", (case_id,)).fetchall()
    return [tuple(r) for r in rows]


def _forged_referral(case_id: str, source: str) -> tuple[str, bytes]:
    payload = REFERRAL_CREATED.payload.model_validate({
        "referral_id": str(uuid.uuid4()), "case_id": case_id, "from_org_id": "dgme", "to_org_id": "unhcr",
        "service_category": "CHILD_PROTECTION", "priority": "URGENT", "legal_basis": "CONSENT",
        "status": "PENDING", "due_at": datetime.now(UTC) + timedelta(days=1), "reason_code": "forged"})
    event = new_event(REFERRAL_CREATED.event_type, source, payload, subject=case_id)
    return event.id, json.dumps(event.to_json()).encode()


def test_a_forged_referral_event_is_dead_lettered_and_opens_nothing(listed: Platform) -> None:
    api = Api(listed, {})
    case_id = api.register("dgme", arrival())["data"]["registerArrival"]["id"]
    eventually(lambda: _access_grants(listed, case_id))  # the genuine referral to UNICEF is projected
    before = _access_grants(listed, case_id)

    async def forge_and_wait() -> dict[str, set[str]]:
        nc = await nats.connect(**listed.nats_options())  # even the operator cannot speak for referral
        js = nc.jetstream()
        try:
            ids = set()
            for source in FORGERS:
                event_id, data = _forged_referral(case_id, source)
                await js.publish(REFERRAL_CREATED.subject, data, headers={"Nats-Msg-Id": event_id})
                ids.add(event_id)
            parked: dict[str, set[str]] = {}
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline:
                for consumer in ("intake-referrals", "notifications-referral-events"):
                    letters = await list_dead_letters(js, consumer)
                    parked[consumer] = {d.event_id for d in letters
                                        if d.event_id in ids and "untrusted source" in d.error}
                if all(found == ids for found in parked.values()):
                    break
                await asyncio.sleep(0.2)
            return parked
        finally:
            await nc.close()

    parked = asyncio.run(forge_and_wait())
    assert all(len(found) == len(FORGERS) for found in parked.values()), parked
    assert _access_grants(listed, case_id) == before
    assert all(org != "unhcr" for _ref, org, _status in before)  # no genuine referral to UNHCR here


def test_no_process_was_refused_anything_it_does(listed: Platform) -> None:
    """Run last in this module: every flow above (arrivals, referrals, notifications, revocation
    watchers, dead letters) went through without a single permission refusal in the server's log."""
    assert listed.nats is not None
    refusals = [line for line in listed.nats.log_path.read_text(errors="replace").splitlines()
                if "Publish Violation" in line or "Subscription Violation" in line]
    assert refusals == []
