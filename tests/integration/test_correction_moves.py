"""A correction moves a person's needs without ever doubling or losing one (decision record 0025), each test
from the adversarial review of the first version: a replayed arrival, a rejection not yet re-routed, the
organisations a need went to already, a merged registration. Handlers against the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, CASE_CORRECTED, CASES_MERGED
from contracts.events import ArrivalRegisteredV1
from services.referral import handlers as referral
from services.referral import merges, routing
from services.referral import store as referral_store
from tests.integration.services import deliver
from tests.integration.test_case_corrections import TRAFFICKING, arrival, corrected, merged

LIVE = ("PENDING", "AWAITING_CONSENT", "ACCEPTED", "UNASSIGNED")


async def rows(pool: AsyncConnectionPool, case_id: str, category: str = "COUNTER_TRAFFICKING") -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return [r for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
                if r["service_category"] == category]


async def directory(pool: AsyncConnectionPool, *services: tuple[str, list[str]]) -> None:
    async with pool.connection() as conn, conn.transaction():
        for org, regions in services:
            await referral_store.upsert_directory_service(conn, org, org, "NGO", "COUNTER_TRAFFICKING", regions)


def registered(case_id: str, *orgs: str) -> ArrivalRegisteredV1:
    return arrival(case_id, TRAFFICKING).model_copy(update={"consent_recipient_org_ids": list(orgs)})


async def reroute(pool: AsyncConnectionPool, referral_id: Any) -> dict[str, Any]:
    async with pool.connection() as conn, conn.transaction():
        row = await referral_store.get_for_update(conn, referral_id)
        return await routing.reroute_referral(conn, row, datetime.now(UTC), "service:referral")


async def test_a_replayed_arrival_never_refers_a_re_routed_need_again(
        referral_pool: AsyncConnectionPool) -> None:
    """A redelivered arrival (a dead letter replayed after its inbox row was pruned) routes nothing for a case
    known already; and the index keeps one live referral per need whatever the origin."""
    await directory(referral_pool, ("ct-a", ["07"]), ("ct-b", ["07"]))
    case_id = str(uuid.uuid4())
    event = registered(case_id, "ct-a", "ct-b")
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, event, case_id)
    [first] = await rows(referral_pool, case_id)
    await reroute(referral_pool, first["id"])  # the deadline scan or the owner moves it on to ct-b
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, event, case_id)  # replayed
    live = [(r["origin"], r["to_org_id"], r["status"]) for r in await rows(referral_pool, case_id)
            if r["status"] in LIVE]
    assert len(live) == 1, live


async def test_a_replayed_arrival_never_refers_again_a_flag_a_correction_took_back(
        referral_pool: AsyncConnectionPool) -> None:
    """The registration's facts are stale once corrected: replayed, they must not share the case again."""
    await directory(referral_pool, ("ct-a", ["07"]))
    case_id = str(uuid.uuid4())
    event = registered(case_id, "ct-a")
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, event, case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, []), case_id)
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, event, case_id)  # replayed
    live = [(r["to_org_id"], r["status"]) for r in await rows(referral_pool, case_id) if r["status"] in LIVE]
    assert live == [], live


async def test_a_rejected_referral_not_yet_re_routed_moves_with_the_person(referral_pool: AsyncConnectionPool
                                                                             ) -> None:
    """Gao's provider rejected and nobody re-routed yet; the person goes to Kayes: Kayes's provider gets the
    need, and the rejection points to it, so it is not re-routed later to the region left."""
    await directory(referral_pool, ("ct-gao", ["07"]), ("ct-gao2", ["07"]), ("ct-kayes", ["01"]))
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED,
                  registered(case_id, "ct-gao", "ct-gao2", "ct-kayes"), case_id)
    [first] = await rows(referral_pool, case_id)
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.referrals set status = 'REJECTED', status_reason = 'NO_CAPACITY'"
                           " where id = %s", (first["id"],))
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    after = {r["id"]: r for r in await rows(referral_pool, case_id)}
    [live] = [r for r in after.values() if r["status"] in LIVE]
    assert (live["to_org_id"], live["need_region"]) == ("ct-kayes", "01")
    assert after[first["id"]]["rerouted_to"] == live["id"] and not routing.reroutable(after[first["id"]])
    assert live["rerouted_from"] == first["id"]  # re-routed later, it is not sent back to ct-gao
    async with referral_pool.connection() as conn:
        assert await referral_store.tried_orgs(conn, live["id"]) == {"ct-gao", "ct-kayes"}


async def test_a_moved_need_is_not_sent_back_to_a_provider_that_said_no(
        referral_pool: AsyncConnectionPool) -> None:
    """ct-a (Gao and Kayes) rejected; re-routed to ct-gao (Gao only); the person goes to Kayes: ct-gao's
    referral is withdrawn, and the need is not sent back to ct-a."""
    await directory(referral_pool, ("ct-a", ["07", "01"]), ("ct-gao", ["07"]))
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED,
                  registered(case_id, "ct-a", "ct-gao"), case_id)
    [first] = await rows(referral_pool, case_id)
    assert first["to_org_id"] == "ct-a"
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.referrals set status = 'REJECTED', status_reason = 'NOT_ELIGIBLE'"
                           " where id = %s", (first["id"],))
    assert (await reroute(referral_pool, first["id"]))["to_org_id"] == "ct-gao"
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    live = [(r["to_org_id"], r["status"]) for r in await rows(referral_pool, case_id) if r["status"] in LIVE]
    assert live == [(None, "UNASSIGNED")], "ct-a said no already; nobody else serves Kayes"


async def test_a_merged_registrations_referral_moves_with_the_person(
        referral_pool: AsyncConnectionPool) -> None:
    """Registered twice, merged; the survivor is corrected to Kayes: the merged registration's Gao referral
    is withdrawn too, and Kayes's provider is referred once."""
    await directory(referral_pool, ("ct-gao", ["07"]), ("ct-kayes", ["01"]))
    first, later, merge_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED,
                  registered(first, "ct-gao", "ct-kayes"), first)
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED,
                  arrival(later).model_copy(update={"consent_recipient_org_ids": ["ct-gao", "ct-kayes"]}), later)
    await deliver(referral_pool, merges.on_cases_merged, CASES_MERGED, merged(later, first, merge_id), later)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(later, 2, TRAFFICKING, region="01"), later)
    live = [(r["to_org_id"], r["status"]) for c in (first, later) for r in await rows(referral_pool, c)
            if r["status"] in LIVE]
    assert live == [("ct-kayes", "PENDING")], live
