"""Sharing changes in order (decision record 0020): intake numbers each case's sharing changes, and
follow-up and referral apply a change's coverage only if it is newer than the one they hold, so a
late ``sharing_changed`` (its first delivery failed and was retried while the next one went through)
never restores withdrawn consent. A change for a case not known yet is retried, never dropped.

Handlers against the real PostgreSQL (a fresh database per service), and one consumer through NATS.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

import kernel.bus
from contracts.channels import (
    ARRIVAL_REGISTERED,
    DEAD_LETTER_STREAM,
    SHARING_CHANGED,
    StreamSpec,
    dead_letter_subject,
)
from contracts.events import ArrivalRegisteredV1, SharingChangedV1, SharingCoverage, SharingRecipient
from contracts.reference import ArrivalPoint, LegalBasis, Purpose, Vulnerability
from devstack.localstack import NatsServer
from kernel.bus import ConsumerSpec, EventConsumer, RetryLater, by_type, connect, ensure_stream
from kernel.db import Connection
from kernel.events import CloudEvent, new_event
from services.followup import handlers as followup
from services.followup.app import APP as FOLLOWUP
from services.intake.app import APP as INTAKE_APP
from services.referral import handlers as referral
from services.referral import store as referral_store
from tests.integration.services import call, deliver, outbox, principal, register
from tests.integration.test_outbox_and_consumer import Running, eventually

OWNER, MANAGER, SHELTER = "dgme", "iom", "amsode"


def arrival(case_id: str, *, version: int = 1, recipients: list[str] | None = None) -> ArrivalRegisteredV1:
    """DGME's case, a trafficking victim; consent at registration covers ``recipients`` for referral and follow-up."""
    return ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.GAO, arrival_date=date(2026, 11, 1),
        destination_region="07", is_child=False, vulnerabilities=[Vulnerability.TRAFFICKING_VICTIM],
        consent_given=True, consent_recipient_org_ids=recipients or [], consent_purposes=[
            Purpose.REFERRAL, Purpose.FOLLOW_UP], sharing_version=version)


def change(case_id: str, version: int, *orgs: str, what: str = "CONSENT_RECORDED") -> SharingChangedV1:
    """A sharing change of ``version`` after which consent covers ``orgs`` for referral and follow-up."""
    recipients = [SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in orgs]
    return SharingChangedV1(case_id=case_id, owner_org_id=OWNER, change=what, sharing_version=version,
                            coverage=[SharingCoverage(purpose=p, recipients=recipients)
                                      for p in (Purpose.REFERRAL, Purpose.FOLLOW_UP)])


async def held(pool: AsyncConnectionPool, table: str, column: str, case_id: str) -> tuple[list[str], int]:
    """The organisations a service's copy of the coverage names, and its sharing version."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"select {column} as recipients, sharing_version from {table}"  # noqa: S608
                                 " where case_id = %s", (case_id,))
        row = await cur.fetchone()
    assert row is not None
    return sorted(r["org_id"] for r in row["recipients"]), row["sharing_version"]


async def followup_held(pool: AsyncConnectionPool, case_id: str) -> tuple[list[str], int]:
    return await held(pool, "followup.cases", "followup_recipients", case_id)


# --- intake: every sharing change raises the case's sharing version --------------------------------


async def test_intake_numbers_each_sharing_change_of_a_case(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, OWNER)
    owner = principal(OWNER, "consent:write")
    recorded = await call(INTAKE_APP, "record_consent", intake_pool, owner, {"case_id": case["id"], "consent": {
        "given": True, "recipient_org_ids": [MANAGER], "purposes": ["FOLLOW_UP"]}})
    consent_id = next(s["id"] for s in recorded["sharing"] if s["recipient_org_ids"] == [MANAGER])
    await call(INTAKE_APP, "withdraw_consent", intake_pool, owner, {"case_id": case["id"], "consent_id": consent_id})
    await call(INTAKE_APP, "record_legal_basis", intake_pool, owner, {
        "case_id": case["id"], "legal_basis": "VITAL_INTEREST", "purposes": ["REFERRAL"],
        "recipient_org_ids": [SHELTER], "justification": "Soins urgents a l'arrivee"})
    events = await outbox(intake_pool, "intake", case["id"])
    assert [(e["type"], e["data"]["sharing_version"]) for e in events] == [
        (ARRIVAL_REGISTERED.event_type, 1), (SHARING_CHANGED.event_type, 2), (SHARING_CHANGED.event_type, 3),
        (SHARING_CHANGED.event_type, 4)]
    # A refused change (no such consent) raises nothing: versions name changes made.
    with pytest.raises(Exception):  # noqa: B017 - NOT_FOUND, tested in test_intake_service.py
        await call(INTAKE_APP, "withdraw_consent", intake_pool, owner, {"case_id": case["id"],
                                                                         "consent_id": str(uuid.uuid4())})
    await call(INTAKE_APP, "record_consent", intake_pool, owner, {"case_id": case["id"], "consent": {
        "given": True, "recipient_org_ids": [SHELTER], "purposes": ["REFERRAL"]}})
    assert (await outbox(intake_pool, "intake", case["id"]))[-1]["data"]["sharing_version"] == 5


async def test_concurrent_changes_of_a_case_announce_versions_in_the_order_of_their_coverage(
        intake_pool: AsyncConnectionPool) -> None:
    """Two consents recorded at once: the later version's coverage holds both (the case is locked
    from the version's raise to commit), so applying the newest version never loses a consent."""
    case = await register(intake_pool, OWNER)
    owner = principal(OWNER, "consent:write")
    await asyncio.gather(*(call(INTAKE_APP, "record_consent", intake_pool, owner, {"case_id": case["id"], "consent": {
        "given": True, "recipient_org_ids": [org], "purposes": ["FOLLOW_UP"]}}) for org in (MANAGER, SHELTER)))
    changes = [e["data"] for e in await outbox(intake_pool, "intake", case["id"])
               if e["type"] == SHARING_CHANGED.event_type]
    newest = max(changes, key=lambda c: c["sharing_version"])
    assert sorted(c["sharing_version"] for c in changes) == [2, 3]
    follow_up = next(c["recipients"] for c in newest["coverage"] if c["purpose"] == "FOLLOW_UP")
    assert sorted(r["org_id"] for r in follow_up) == sorted([MANAGER, SHELTER])


# --- follow-up --------------------------------------------------------------------------------------


async def test_follow_up_ignores_a_change_older_than_the_one_it_applied(followup_pool: AsyncConnectionPool) -> None:
    case_id = str(uuid.uuid4())
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    assert await followup_held(followup_pool, case_id) == ([], 1)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, MANAGER), case_id)
    await call(FOLLOWUP, "assign", followup_pool, principal(OWNER, "followup:read followup:write"), {
        "case_id": case_id, "organization_id": MANAGER, "organization_type": "INTERNATIONAL",
        "reason": "SPECIALISED_SUPPORT"})
    withdrawn = change(case_id, 3, what="CONSENT_WITHDRAWN")
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, withdrawn, case_id)
    # Version 2 again, late (or redelivered): ignored; the manager stays without a basis.
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, MANAGER), case_id)
    assert await followup_held(followup_pool, case_id) == ([], 3)
    with pytest.raises(Exception) as refused:  # noqa: B017 - a SeginError, as for an absent case
        await call(FOLLOWUP, "get_case", followup_pool, principal(MANAGER, "followup:read"), {"case_id": case_id})
    assert getattr(refused.value, "code", None) == "NOT_FOUND"
    # The same version again changes nothing either; a newer one applies.
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, change(case_id, 3, MANAGER), case_id)
    assert await followup_held(followup_pool, case_id) == ([], 3)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, change(case_id, 4, MANAGER), case_id)
    assert await followup_held(followup_pool, case_id) == ([MANAGER], 4)


async def test_follow_up_retries_a_change_for_a_case_it_does_not_know_yet(followup_pool: AsyncConnectionPool) -> None:
    """Dropped, the change would be lost and the registration's consent would stand when the case came."""
    case_id = str(uuid.uuid4())
    withdrawn = change(case_id, 2, what="CONSENT_WITHDRAWN")
    with pytest.raises(RetryLater):
        await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, withdrawn, case_id)
    async with followup_pool.connection() as conn:
        assert await (await conn.execute("select from followup.cases where case_id = %s", (case_id,))).fetchone() is None
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED,
                  arrival(case_id, recipients=[MANAGER]), case_id)
    assert await followup_held(followup_pool, case_id) == ([MANAGER], 1)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, withdrawn, case_id)  # the retry
    assert await followup_held(followup_pool, case_id) == ([], 2)


async def test_a_late_arrival_never_overwrites_a_newer_coverage(followup_pool: AsyncConnectionPool) -> None:
    """Impossible once a change for an unknown case is retried, but guarded: the registration's
    consent (version 1) delivered again after version 2 changes nothing."""
    case_id = str(uuid.uuid4())
    registered = arrival(case_id, recipients=[MANAGER])
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, registered, case_id)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED,
                  change(case_id, 2, what="CONSENT_WITHDRAWN"), case_id)
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, registered, case_id)
    assert await followup_held(followup_pool, case_id) == ([], 2)


async def test_events_from_before_versions_apply_as_they_come_until_a_versioned_one(
        followup_pool: AsyncConnectionPool) -> None:
    """Events already in the streams carry no version (0): applied in the order they arrive, as
    before, while the case holds no versioned coverage; once it does, they are older and ignored."""
    case_id = str(uuid.uuid4())
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id, version=0),
                  case_id)
    unversioned = [change(case_id, 0, MANAGER), change(case_id, 0, SHELTER)]
    for event in unversioned:
        await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, event, case_id)
    assert await followup_held(followup_pool, case_id) == ([SHELTER], 0)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, change(case_id, 5), case_id)
    await deliver(followup_pool, followup.on_sharing_changed, SHARING_CHANGED, unversioned[0], case_id)
    assert await followup_held(followup_pool, case_id) == ([], 5)
    # An event without the field reads as version 0.
    old = change(case_id, 0).model_dump(mode="json")
    del old["sharing_version"]
    assert SharingChangedV1.model_validate(old).sharing_version == 0


# --- referral ---------------------------------------------------------------------------------------


@pytest.fixture
async def shelter(referral_pool: AsyncConnectionPool) -> None:
    async with referral_pool.connection() as conn, conn.transaction():
        await referral_store.upsert_directory_service(conn, SHELTER, "Shelter", "NGO", "COUNTER_TRAFFICKING", [])


async def shelter_referral(pool: AsyncConnectionPool, case_id: str) -> tuple[str, str]:
    async with pool.connection() as conn:
        [row] = [r for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
                 if r["to_org_id"] == SHELTER]
    return str(row["id"]), row["status"]


async def test_referral_ignores_a_late_change_revoked_stays_revoked(referral_pool: AsyncConnectionPool,
                                                                     shelter: None) -> None:
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    referral_id, status = await shelter_referral(referral_pool, case_id)
    assert status == "AWAITING_CONSENT"
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, SHELTER), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "PENDING"
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED,
                  change(case_id, 3, what="CONSENT_WITHDRAWN"), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "REVOKED"
    announced = len(await outbox(referral_pool, "referral", referral_id))
    # Version 2 late: its consent is gone; the coverage stays empty, nothing moves, nothing is announced.
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, SHELTER), case_id)
    assert await held(referral_pool, "referral.cases", "referral_recipients", case_id) == ([], 3)
    assert (await shelter_referral(referral_pool, case_id))[1] == "REVOKED"
    assert len(await outbox(referral_pool, "referral", referral_id)) == announced


async def test_referral_ignores_a_late_change_a_waiting_referral_does_not_go_live(
        referral_pool: AsyncConnectionPool, shelter: None) -> None:
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    # Consent given (2) then withdrawn (3); 3 is delivered first, 2 late.
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED,
                  change(case_id, 3, what="CONSENT_WITHDRAWN"), case_id)
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, SHELTER), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "AWAITING_CONSENT"
    assert await held(referral_pool, "referral.cases", "referral_recipients", case_id) == ([], 3)


async def test_referral_retries_a_change_for_a_case_it_does_not_know_yet(referral_pool: AsyncConnectionPool,
                                                                         shelter: None) -> None:
    """Dropped, the referral would wait for a consent already given (routed on the registration's)."""
    case_id = str(uuid.uuid4())
    with pytest.raises(RetryLater):
        await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, SHELTER),
                      case_id)
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "AWAITING_CONSENT"
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED, change(case_id, 2, SHELTER), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "PENDING"


async def test_referral_still_revokes_for_a_case_routed_before_it_kept_cases(referral_pool: AsyncConnectionPool,
                                                                             shelter: None) -> None:
    """A case routed before referral kept its own copy of cases (migration 0004) has referrals but no
    row: a withdrawal must still revoke them, not wait for a registration that will not come again."""
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED,
                  arrival(case_id, recipients=[SHELTER]), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "PENDING"
    async with referral_pool.connection() as conn:
        await conn.execute("delete from referral.cases where case_id = %s", (case_id,))
    await deliver(referral_pool, referral.on_sharing_changed, SHARING_CHANGED,
                  change(case_id, 2, what="CONSENT_WITHDRAWN"), case_id)
    assert (await shelter_referral(referral_pool, case_id))[1] == "REVOKED"


# --- through NATS: the follow-up's consumer redelivers a change that came before its case ---------


@dataclass
class Bus:
    js: JetStreamContext
    stream: StreamSpec
    producer: str
    tag: str

    async def publish(self, channel: Any, payload: Any, case_id: str) -> None:
        """``payload`` as ``channel``'s event, on this test's own subject (its producer: the test)."""
        event = new_event(channel.event_type, f"/segin/{self.producer}", payload, case_id)
        await self.js.publish(f"evt.{self.producer}.{channel.subject.split('.', 2)[2]}",
                              json.dumps(event.to_json()).encode(), headers={"Nats-Msg-Id": event.id})


@pytest.fixture
async def bus(nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bus]:
    monkeypatch.setattr(kernel.bus, "retry_delay", lambda _delivered: 0.3)
    tag = uuid.uuid4().hex[:8]
    producer = f"t{tag}"
    nc = await connect(nats_server.url, f"test-{tag}", nats_server.auth())
    js = nc.jetstream()
    stream = StreamSpec(f"T_{tag.upper()}", [f"evt.{producer}.>"], "test stream")
    await ensure_stream(js, stream)
    await ensure_stream(js, DEAD_LETTER_STREAM)
    try:
        yield Bus(js, stream, producer, tag)
    finally:
        try:
            await js.delete_stream(stream.name)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
        await nc.close()


@dataclass
class Counting:
    """Follow-up's intake handlers, counting the sharing changes they are handed."""

    sharing_attempts: int = 0

    async def __call__(self, conn: Connection, event: CloudEvent) -> None:
        if event.type == SHARING_CHANGED.event_type:
            self.sharing_attempts += 1
        await by_type({ARRIVAL_REGISTERED.event_type: followup.on_arrival_registered,
                       SHARING_CHANGED.event_type: followup.on_sharing_changed})(conn, event)


def followup_consumer(bus: Bus, pool: AsyncConnectionPool, handler: Counting, max_deliver: int = 8) -> EventConsumer:
    return EventConsumer(bus.js, pool, "followup", ConsumerSpec(f"followup_{bus.tag}", bus.stream.name,
                                                                f"evt.{bus.producer}.>", handler, max_deliver))


async def settled(bus: Bus, durable: str) -> bool:
    try:
        info = await bus.js.consumer_info(bus.stream.name, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_change_before_its_case_is_redelivered_then_applied(bus: Bus,
                                                                   followup_pool: AsyncConnectionPool) -> None:
    case_id = str(uuid.uuid4())
    handler = Counting()
    consumer = followup_consumer(bus, followup_pool, handler)
    await bus.publish(SHARING_CHANGED, change(case_id, 2, what="CONSENT_WITHDRAWN"), case_id)
    async with Running(consumer):
        await eventually(lambda: _at_least(handler, 2), "the change tried twice")
        await bus.publish(ARRIVAL_REGISTERED, arrival(case_id, recipients=[MANAGER]), case_id)
        await eventually(lambda: settled(bus, consumer.spec.durable), "both events acknowledged")
    assert await followup_held(followup_pool, case_id) == ([], 2)  # the withdrawal, not the registration's consent
    async with followup_pool.connection() as conn:
        cur = await conn.execute("select count(*) as n from followup.inbox where consumer = %s",
                                 (consumer.spec.durable,))
        assert (await cur.fetchone())["n"] == 2
    with pytest.raises(NotFoundError):
        await bus.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(consumer.spec.durable))


async def test_a_change_for_a_case_that_never_comes_is_dead_lettered_after_the_last_attempt(
        bus: Bus, followup_pool: AsyncConnectionPool) -> None:
    case_id = str(uuid.uuid4())
    handler = Counting()
    consumer = followup_consumer(bus, followup_pool, handler, max_deliver=3)
    durable = consumer.spec.durable
    await bus.publish(SHARING_CHANGED, change(case_id, 2, MANAGER), case_id)

    async def parked() -> bool:
        try:
            await bus.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
            return True
        except NotFoundError:
            return False

    async with Running(consumer):
        await eventually(parked, "the change dead-lettered")
        await eventually(lambda: settled(bus, durable), "the original acknowledged")
    assert handler.sharing_attempts == 3
    letter = await bus.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
    assert (letter.headers or {})["Segin-Error"].startswith("RetryLater: sharing change 2 of case")


async def _at_least(handler: Counting, attempts: int) -> bool:
    return handler.sharing_attempts >= attempts
