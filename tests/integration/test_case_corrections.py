"""Corrections reach referral and follow-up (decision record 0025): intake announces ``case_corrected``
with the case's new version and routing facts; each service applies it only if newer than what it holds,
retries one for a case it does not know yet, and acts on what it adds — a flag screened after
registration is routed to its provider, and guards the case's follow-up notes.

Handlers against the real PostgreSQL (a fresh database per service)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, CASE_CORRECTED, CASES_MERGED, MERGE_UNDONE, REFERRAL_CREATED
from contracts.events import ArrivalRegisteredV1, CaseCorrectedV1, CasesMergedV1, MergeUndoneV1
from contracts.reference import ArrivalPoint, Purpose, Sex, Vulnerability
from kernel.bus import RetryLater
from services.followup import handlers as followup
from services.referral import handlers as referral
from services.referral import merges
from services.referral.app import APP as REFERRAL
from services.referral import store as referral_store
from tests.integration.services import call, deliver, principal

OWNER, SHELTER = "dgme", "amsode"
TRAFFICKING = [Vulnerability.TRAFFICKING_VICTIM]


def arrival(case_id: str, vulnerabilities: list[Vulnerability] | None = None) -> ArrivalRegisteredV1:
    """DGME's adult case arriving in Gao for Gao, consenting to the shelter for referral and follow-up."""
    return ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.GAO, arrival_date=date(2026, 11, 1),
        destination_region="07", is_child=False, vulnerabilities=vulnerabilities or [], consent_given=True,
        consent_recipient_org_ids=[SHELTER], consent_purposes=[Purpose.REFERRAL, Purpose.FOLLOW_UP],
        sex=Sex.FEMALE, age_years=30, sharing_version=1)


def corrected(case_id: str, version: int, vulnerabilities: list[Vulnerability], region: str = "07"
              ) -> CaseCorrectedV1:
    return CaseCorrectedV1(case_id=case_id, owner_org_id=OWNER, version=version, changed_fields=["vulnerabilities"],
                           destination_region=region, is_child=False, vulnerabilities=vulnerabilities,
                           sex=Sex.FEMALE, age_years=30)


# --- referral ---------------------------------------------------------------------------------------


@pytest.fixture
async def shelter(referral_pool: AsyncConnectionPool) -> None:
    async with referral_pool.connection() as conn, conn.transaction():
        await referral_store.upsert_directory_service(conn, SHELTER, "Shelter", "NGO", "COUNTER_TRAFFICKING", [])


async def categories(pool: AsyncConnectionPool, case_id: str) -> list[tuple[str, str | None]]:
    """(category, provider) of every referral of the case, in category order."""
    async with pool.connection() as conn:
        rows = await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
    return sorted((r["service_category"], r["to_org_id"]) for r in rows)


async def announced(pool: AsyncConnectionPool, case_id: str) -> list[dict[str, Any]]:
    """The events referral's outbox holds about the case's referrals, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute("select envelope from referral.outbox where envelope->'data'->>'case_id' = %s"
                                 " order by created_at, envelope->>'time'", (case_id,))
        return [row["envelope"] for row in await cur.fetchall()]


async def facts(pool: AsyncConnectionPool, case_id: str) -> tuple[list[str], str, int]:
    async with pool.connection() as conn:
        case = await referral_store.get_case(conn, case_id)
    assert case is not None
    return case["vulnerabilities"], case["destination_region"], case["case_version"]


async def test_a_flag_added_by_a_correction_is_routed_to_its_provider_once(referral_pool: AsyncConnectionPool,
                                                                            shelter: None) -> None:
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    before = await categories(referral_pool, case_id)
    assert ("COUNTER_TRAFFICKING", SHELTER) not in before
    told = len(await announced(referral_pool, case_id))

    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                  case_id)
    after = await categories(referral_pool, case_id)
    assert sorted(set(after) - set(before)) == [("COUNTER_TRAFFICKING", SHELTER)] and len(after) == len(before) + 1
    events = (await announced(referral_pool, case_id))[told:]
    assert [(e["type"], e["data"]["service_category"], e["data"]["to_org_id"], e["data"]["status"]) for e in events
            ] == [(REFERRAL_CREATED.event_type, "COUNTER_TRAFFICKING", SHELTER, "PENDING")]  # consent covers it
    assert await facts(referral_pool, case_id) == (["TRAFFICKING_VICTIM"], "07", 2)

    # The same correction again, or a later one keeping the flag: nothing more.
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                  case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 3, TRAFFICKING),
                  case_id)
    assert await categories(referral_pool, case_id) == after
    assert len(await announced(referral_pool, case_id)) == told + 1
    assert await facts(referral_pool, case_id) == (["TRAFFICKING_VICTIM"], "07", 3)

    # Going on to Kayes rather than staying in Gao: onward transport is needed now; nothing twice.
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 4, TRAFFICKING, region="01"), case_id)
    now = [c for c, _ in await categories(referral_pool, case_id)]
    assert "ONWARD_TRANSPORT" in set(now) - {c for c, _ in after} and len(now) == len(set(now))
    assert await facts(referral_pool, case_id) == (["TRAFFICKING_VICTIM"], "01", 4)


async def test_a_late_correction_never_overwrites_a_newer_one(referral_pool: AsyncConnectionPool,
                                                              shelter: None) -> None:
    """Version 3 took the flag back; version 2 (which added it) delivered late routes nothing."""
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    before = await categories(referral_pool, case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 3, []), case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                  case_id)
    assert await categories(referral_pool, case_id) == before
    assert await facts(referral_pool, case_id) == ([], "07", 3)


async def test_a_flag_already_referred_by_hand_is_not_referred_again(referral_pool: AsyncConnectionPool,
                                                                     shelter: None) -> None:
    """The owner referred the person to counter-trafficking before screening was corrected: the rule's
    referral would be a second one for the same need."""
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.referrals set service_category = 'COUNTER_TRAFFICKING', origin = 'MANUAL'"
                           " where id = (select id from referral.referrals where case_id = %s limit 1)", (case_id,))
    before = await categories(referral_pool, case_id)
    assert ("COUNTER_TRAFFICKING", SHELTER) not in before and "COUNTER_TRAFFICKING" in {c for c, _ in before}
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                  case_id)
    assert [c for c, _ in await categories(referral_pool, case_id)].count("COUNTER_TRAFFICKING") == 1


async def test_referral_retries_a_correction_for_a_case_it_does_not_know_yet(referral_pool: AsyncConnectionPool,
                                                                             shelter: None) -> None:
    case_id = str(uuid.uuid4())
    with pytest.raises(RetryLater):
        await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                      case_id)
    assert await categories(referral_pool, case_id) == []
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, TRAFFICKING),
                  case_id)  # the retry
    assert ("COUNTER_TRAFFICKING", SHELTER) in await categories(referral_pool, case_id)


# --- follow-up --------------------------------------------------------------------------------------


async def followup_held(pool: AsyncConnectionPool, case_id: str) -> tuple[str, list[str] | None, int]:
    async with pool.connection() as conn:
        cur = await conn.execute("select destination_region, sensitive_categories, case_version from followup.cases"
                                 " where case_id = %s", (case_id,))
        row = await cur.fetchone()
    assert row is not None
    return row["destination_region"], row["sensitive_categories"], row["case_version"]


async def test_follow_up_keeps_the_corrected_region_and_a_sensitive_flag_once_added(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = str(uuid.uuid4())
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    assert await followup_held(followup_pool, case_id) == ("07", [], 1)
    await deliver(followup_pool, followup.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    assert await followup_held(followup_pool, case_id) == ("01", ["trafficking"], 2)
    # Taken back later: notes written meanwhile may speak of it, so they stay guarded.
    await deliver(followup_pool, followup.on_case_corrected, CASE_CORRECTED, corrected(case_id, 3, [], region="02"),
                  case_id)
    assert await followup_held(followup_pool, case_id) == ("02", ["trafficking"], 3)
    # A late one changes nothing.
    await deliver(followup_pool, followup.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, [Vulnerability.GBV_SURVIVOR], region="05"), case_id)
    assert await followup_held(followup_pool, case_id) == ("02", ["trafficking"], 3)


async def test_follow_up_retries_a_correction_for_a_case_it_does_not_know_yet(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = str(uuid.uuid4())
    with pytest.raises(RetryLater):
        await deliver(followup_pool, followup.on_case_corrected, CASE_CORRECTED,
                      corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    await deliver(followup_pool, followup.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    await deliver(followup_pool, followup.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    assert await followup_held(followup_pool, case_id) == ("01", ["trafficking"], 2)


async def test_a_flag_ticked_by_mistake_and_taken_back_shares_nothing_for_long(referral_pool: AsyncConnectionPool
                                                                               ) -> None:
    """An adult without consent, mis-ticked SEPARATED_CHILD, then corrected two minutes later: the child-
    protection referral made on the child's vital interest is revoked before any provider accepted it,
    and announced (review finding); referrals the correction leaves needed stay."""
    async with referral_pool.connection() as conn, conn.transaction():
        await referral_store.upsert_directory_service(conn, "savechildren", "Child NGO", "NGO", "CHILD_PROTECTION",
                                                      [])
    case_id = str(uuid.uuid4())
    no_consent = arrival(case_id).model_copy(update={"consent_given": False, "consent_recipient_org_ids": [],
                                                    "consent_purposes": []})
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, no_consent, case_id)
    async with referral_pool.connection() as conn:
        before = {r["id"]: r["status"] for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))}
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, [Vulnerability.SEPARATED_CHILD]), case_id)
    async with referral_pool.connection() as conn:
        [child] = [r for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
                   if r["service_category"] == "CHILD_PROTECTION"]
    assert (child["to_org_id"], child["status"], child["legal_basis"]) == ("savechildren", "PENDING", "VITAL_INTEREST")
    told = len(await announced(referral_pool, case_id))

    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 3, []), case_id)
    async with referral_pool.connection() as conn:
        rows = {r["id"]: r for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))}
    assert (rows[child["id"]]["status"], rows[child["id"]]["status_reason"]) == ("REVOKED", "NEED_WITHDRAWN")
    assert {i: r["status"] for i, r in rows.items() if i != child["id"]} == before, "the others stay"
    [event] = (await announced(referral_pool, case_id))[told:]
    assert (event["data"]["referral_id"], event["data"]["new_status"], event["data"]["reason_code"]) == (
        str(child["id"]), "REVOKED", "NEED_WITHDRAWN")


async def test_a_need_withdrawn_and_needed_again_is_referred_again_once(referral_pool: AsyncConnectionPool,
                                                                       shelter: None) -> None:
    """Trafficking ticked at check-in, taken back (revoked, NEED_WITHDRAWN), confirmed by the screening an
    hour later: the shelter gets a new referral; a repeated delivery makes no third."""
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id, TRAFFICKING),
                  case_id)
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, []), case_id)
    again = await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                          corrected(case_id, 3, TRAFFICKING), case_id)
    async with referral_pool.connection() as conn, conn.transaction():
        await referral.on_case_corrected(conn, again)  # delivered again: older than nothing, changes nothing
    async with referral_pool.connection() as conn:
        shelter_rows = sorted(((r["status"], r["status_reason"] or "") for r in
                               await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
                               if r["service_category"] == "COUNTER_TRAFFICKING"), reverse=True)
    assert shelter_rows == [("REVOKED", "NEED_WITHDRAWN"), ("PENDING", "")]
    assert [e["data"]["service_category"] for e in await announced(referral_pool, case_id)
            if e["type"] == REFERRAL_CREATED.event_type].count("COUNTER_TRAFFICKING") == 2


async def test_a_need_whose_provider_no_longer_fits_the_corrected_case_goes_to_one_that_does(
        referral_pool: AsyncConnectionPool) -> None:
    """Registered for Gao, going on to Kayes in fact: the Gao-only counter-trafficking service's referral is
    withdrawn before it accepts (it would hold the case of someone who is not coming) and the need goes to
    Kayes's; an unmet need in Gao becomes Kayes's to meet. An accepted referral stays."""
    async with referral_pool.connection() as conn, conn.transaction():
        await referral_store.upsert_directory_service(conn, "ct-gao", "Gao", "NGO", "COUNTER_TRAFFICKING", ["07"])
        await referral_store.upsert_directory_service(conn, "ct-kayes", "Kayes", "NGO", "COUNTER_TRAFFICKING", ["01"])
        await referral_store.upsert_directory_service(conn, "gbv-kayes", "Kayes", "NGO", "GBV_RESPONSE", ["01"])
    flags = [Vulnerability.TRAFFICKING_VICTIM, Vulnerability.GBV_SURVIVOR]

    def registered(case_id: str) -> ArrivalRegisteredV1:
        return arrival(case_id, flags).model_copy(update={
            "consent_recipient_org_ids": ["ct-gao", "ct-kayes", "gbv-kayes"]})

    async def open_ones(case_id: str) -> dict[str, tuple[str | None, str]]:
        async with referral_pool.connection() as conn:
            rows = await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
        return {r["service_category"]: (r["to_org_id"], r["status"]) for r in rows
                if r["service_category"] in ("COUNTER_TRAFFICKING", "GBV_RESPONSE") and r["status"] != "REVOKED"}

    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, registered(case_id), case_id)
    assert await open_ones(case_id) == {"COUNTER_TRAFFICKING": ("ct-gao", "PENDING"),
                                        "GBV_RESPONSE": (None, "UNASSIGNED")}
    told = len(await announced(referral_pool, case_id))
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, flags, region="01"), case_id)
    assert await open_ones(case_id) == {"COUNTER_TRAFFICKING": ("ct-kayes", "PENDING"),
                                        "GBV_RESPONSE": ("gbv-kayes", "PENDING")}
    changes = [(e["data"].get("new_status") or e["data"].get("status"), e["data"]["service_category"],
                e["data"].get("to_org_id")) for e in (await announced(referral_pool, case_id))[told:]
               if e["data"]["service_category"] in ("COUNTER_TRAFFICKING", "GBV_RESPONSE")]
    assert sorted(changes, key=str) == sorted([  # the unmet need had nobody to tell
        ("REVOKED", "COUNTER_TRAFFICKING", "ct-gao"), ("PENDING", "COUNTER_TRAFFICKING", "ct-kayes"),
        ("PENDING", "GBV_RESPONSE", "gbv-kayes")], key=str)
    # Back to Gao after all: again, once each.
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 3, flags, region="07"), case_id)
    assert (await open_ones(case_id))["COUNTER_TRAFFICKING"] == ("ct-gao", "PENDING")

    accepted = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, registered(accepted), accepted)
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.referrals set status = 'ACCEPTED' where case_id = %s"
                           " and service_category = 'COUNTER_TRAFFICKING'", (accepted,))
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(accepted, 2, flags, region="01"), accepted)
    assert (await open_ones(accepted))["COUNTER_TRAFFICKING"] == ("ct-gao", "ACCEPTED"), "the owner decides"


async def test_a_referral_the_provider_accepted_stays_when_its_flag_is_taken_back(
        referral_pool: AsyncConnectionPool, shelter: None) -> None:
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id, TRAFFICKING),
                  case_id)
    async with referral_pool.connection() as conn:
        await conn.execute("update referral.referrals set status = 'ACCEPTED' where case_id = %s"
                           " and service_category = 'COUNTER_TRAFFICKING'", (case_id,))
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(case_id, 2, []), case_id)
    async with referral_pool.connection() as conn:
        [kept] = [r for r in await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
                  if r["service_category"] == "COUNTER_TRAFFICKING"]
    assert kept["status"] == "ACCEPTED", "the provider is working with the person: the owner decides"


async def test_a_correction_revokes_only_what_it_took_away(referral_pool: AsyncConnectionPool, shelter: None) -> None:
    """A rule's referral the rules in force would no longer make (the rules changed since routing) stays
    when a correction changes something else: it is not the correction's doing."""
    case_id = str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id, TRAFFICKING),
                  case_id)
    async with referral_pool.connection() as conn:  # routed under an older rule: GBV response for everyone
        await conn.execute("update referral.referrals set service_category = 'GBV_RESPONSE' where case_id = %s"
                           " and service_category = 'COUNTER_TRAFFICKING'", (case_id,))
    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED,
                  corrected(case_id, 2, TRAFFICKING, region="01"), case_id)
    async with referral_pool.connection() as conn:
        rows = await referral_store.referrals_of_case(conn, uuid.UUID(case_id))
    assert [r["status"] for r in rows if r["service_category"] == "GBV_RESPONSE"] == ["PENDING"]


# --- merges: one person, several registrations -------------------------------------------------------


def merged(survivor: str, merged_id: str, merge_id: str) -> CasesMergedV1:
    return CasesMergedV1(merge_id=merge_id, survivor_case_id=survivor, merged_case_id=merged_id,
                         survivor_owner_org_id=OWNER, merged_owner_org_id=OWNER)


async def listed(pool: AsyncConnectionPool, case_id: str) -> list[str]:
    """The case ids of the referrals the owner sees for ``case_id``."""
    rows = await call(REFERRAL, "case_referrals", pool, principal(OWNER, "referrals:read sensitive:trafficking"),
                      {"case_id": case_id})
    return sorted({r["case_id"] for r in rows})


async def test_a_survivor_shows_its_merged_registrations_referrals_and_is_not_referred_again(
        referral_pool: AsyncConnectionPool, shelter: None) -> None:
    """Registered twice (first as a trafficking victim, then without the flag), merged; the survivor's
    correction adding the flag must not refer the person to counter-trafficking a second time."""
    first, later, merge_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(first, TRAFFICKING),
                  first)
    await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(later), later)
    assert await listed(referral_pool, later) == [later]
    await deliver(referral_pool, merges.on_cases_merged, CASES_MERGED, merged(later, first, merge_id), later)
    assert await listed(referral_pool, later) == sorted([first, later])

    await deliver(referral_pool, referral.on_case_corrected, CASE_CORRECTED, corrected(later, 2, TRAFFICKING), later)
    assert ("COUNTER_TRAFFICKING", SHELTER) not in await categories(referral_pool, later)
    assert ("COUNTER_TRAFFICKING", SHELTER) in await categories(referral_pool, first)

    await deliver(referral_pool, merges.on_merge_undone, MERGE_UNDONE, MergeUndoneV1(
        **merged(later, first, merge_id).model_dump()), later)
    assert await listed(referral_pool, later) == [later]


async def test_an_undo_delivered_before_its_merge_is_not_undone_by_it(referral_pool: AsyncConnectionPool) -> None:
    first, later, merge_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    for case_id in (first, later):
        await deliver(referral_pool, referral.on_arrival_registered, ARRIVAL_REGISTERED, arrival(case_id), case_id)
    await deliver(referral_pool, merges.on_merge_undone, MERGE_UNDONE, MergeUndoneV1(
        **merged(later, first, merge_id).model_dump()), later)
    await deliver(referral_pool, merges.on_cases_merged, CASES_MERGED, merged(later, first, merge_id), later)
    assert await listed(referral_pool, later) == [later]
