"""Follow-up follows intake's merges (decision record 0026): a second registration of the same return,
merged into another case, has its follow-up closed (MERGED) and leaves the work lists and statistics; an
undo re-opens it; a registration of another return keeps its own follow-up. Events in any order end the
same. Handlers and endpoints against the real PostgreSQL (a fresh database)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, CASE_CLOSED, CASE_REOPENED, CASES_MERGED, MERGE_UNDONE, SHARING_CHANGED
from contracts.events import ArrivalRegisteredV1, CasesMergedV1, MergeUndoneV1, SharingChangedV1, SharingCoverage
from contracts.reference import ArrivalPoint, Purpose
from kernel.bus import RetryLater
from kernel.errors import SeginError
from kernel.tokens import Principal
from services.followup import handlers, store
from services.followup.app import APP as FOLLOWUP
from tests.integration.services import call, deliver, outbox, principal

OWNER = "dgme"
DGME: Principal = replace(principal(OWNER, "followup:read followup:write"), org_type="STATE")
GOALS = [{"dimension": "ECONOMIC", "description": "Atelier de couture", "actions": []}]


async def registered(pool: AsyncConnectionPool, arrival_date: date = date(2026, 11, 1),
                     consent_to: tuple[str, ...] = ()) -> str:
    case_id = str(uuid.uuid4())
    await deliver(pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.GAO, arrival_date=arrival_date,
        destination_region="07", is_child=False, vulnerabilities=[], consent_given=True,
        consent_recipient_org_ids=list(consent_to), consent_purposes=[Purpose.FOLLOW_UP]), case_id)
    return case_id


async def announced(pool: AsyncConnectionPool, case_id: str) -> list[tuple[str, str, str]]:
    """(event type, manager, reason) of each closure or re-opening follow-up announced for the case."""
    return [(e["type"], e["data"]["manager_org_id"], e["data"].get("reason") or e["data"].get("reason_code"))
            for e in await outbox(pool, "followup", case_id)
            if e["type"] in (CASE_CLOSED.event_type, CASE_REOPENED.event_type)]


def merge(survivor: str, merged: str, merge_id: str | None = None) -> CasesMergedV1:
    return CasesMergedV1(merge_id=merge_id or str(uuid.uuid4()), survivor_case_id=survivor, merged_case_id=merged,
                         survivor_owner_org_id=OWNER, merged_owner_org_id=OWNER)


def undo(done: CasesMergedV1) -> MergeUndoneV1:
    return MergeUndoneV1.model_validate(done.model_dump())


async def merged(pool: AsyncConnectionPool, event: CasesMergedV1) -> None:
    await deliver(pool, handlers.on_cases_merged, CASES_MERGED, event, event.merged_case_id)


async def undone(pool: AsyncConnectionPool, event: CasesMergedV1) -> None:
    await deliver(pool, handlers.on_merge_undone, MERGE_UNDONE, undo(event), event.merged_case_id)


async def state(pool: AsyncConnectionPool, case_id: str) -> tuple[str, str | None, str | None, int]:
    """(status, closure reason, merged into, version) as the service holds them."""
    async with pool.connection() as conn:
        row = await store.get_case(conn, uuid.UUID(case_id))
    assert row is not None
    merged_into = str(row["merged_into"]) if row["merged_into"] else None
    return row["status"], row["closure_reason"], merged_into, row["version"]


async def ask(pool: AsyncConnectionPool, endpoint: str, **payload: Any) -> Any:
    return await call(FOLLOWUP, endpoint, pool, DGME, payload)


async def missing_plans(pool: AsyncConnectionPool) -> set[str]:
    page = await ask(pool, "plans_missing", first=100)
    return {node["case_id"] for node in page["nodes"]}


async def counted_in_statistics(pool: AsyncConnectionPool, case_id: str) -> bool:
    async with pool.connection() as conn:
        return any(r["case_id"] == uuid.UUID(case_id) for r in await store.contact_rows(conn, OWNER))


async def returns_in_plan_statistics(pool: AsyncConnectionPool) -> int:
    """How many returns the plans statistics count (their rows name no case)."""
    async with pool.connection() as conn:
        return len(await store.plan_rows(conn, OWNER))


async def test_a_second_registration_of_the_same_return_leaves_the_work_lists_until_the_merge_is_undone(
        followup_pool: AsyncConnectionPool) -> None:
    survivor = await registered(followup_pool, date(2026, 11, 1))
    second = await registered(followup_pool, date(2026, 11, 4))  # checked in at Gao, registered again in Bamako
    assert {survivor, second} <= await missing_plans(followup_pool)
    returns = await returns_in_plan_statistics(followup_pool)
    done = merge(survivor, second)
    await merged(followup_pool, done)
    await merged(followup_pool, done)  # a redelivery changes nothing
    assert await state(followup_pool, second) == ("CLOSED", "MERGED", survivor, 1)
    assert await state(followup_pool, survivor) == ("OPEN", None, None, 0)
    lists = await missing_plans(followup_pool)
    assert survivor in lists and second not in lists
    assert await counted_in_statistics(followup_pool, survivor)
    assert not await counted_in_statistics(followup_pool, second)
    assert await returns_in_plan_statistics(followup_pool) == returns - 1
    # Read, it says why it closed; written to, it says where the person is followed up, and nothing changes.
    seen = await ask(followup_pool, "get_case", case_id=second)
    assert (seen["status"], seen["closure_reason"]) == ("CLOSED", "MERGED")
    for endpoint, payload in (("reopen", {"reason": "CLOSED_IN_ERROR", "version": 1}),
                              ("save_plan", {"goals": GOALS, "version": 1, "idempotency_key": str(uuid.uuid4())}),
                              ("assign", {"organization_id": "iom", "reason": "SPECIALISED_SUPPORT"})):
        with pytest.raises(SeginError) as caught:
            await ask(followup_pool, endpoint, case_id=second, **payload)
        assert (caught.value.code, caught.value.field) == ("CASE_CLOSED", "caseId"), endpoint
        assert "merged" in caught.value.message
    assert await state(followup_pool, second) == ("CLOSED", "MERGED", survivor, 1)

    await undone(followup_pool, done)
    await undone(followup_pool, done)
    assert await state(followup_pool, second) == ("OPEN", None, None, 2)
    # The manager did neither: both are announced (and told to it by notifications), once each.
    assert await announced(followup_pool, second) == [(CASE_CLOSED.event_type, OWNER, "MERGED"),
                                                      (CASE_REOPENED.event_type, OWNER, "MERGE_UNDONE")]
    assert await announced(followup_pool, survivor) == []
    assert second in await missing_plans(followup_pool)
    assert await counted_in_statistics(followup_pool, second)
    assert await returns_in_plan_statistics(followup_pool) == returns
    await merged(followup_pool, done)  # the merge, delivered late again, does not close it again
    assert await state(followup_pool, second) == ("OPEN", None, None, 2)


async def test_an_undo_delivered_before_its_merge_leaves_the_follow_up_open(
        followup_pool: AsyncConnectionPool) -> None:
    survivor, second = await registered(followup_pool), await registered(followup_pool)
    done = merge(survivor, second)
    await undone(followup_pool, done)
    await merged(followup_pool, done)
    assert await state(followup_pool, second) == ("OPEN", None, None, 0)


async def test_a_registration_of_another_return_keeps_its_own_follow_up(followup_pool: AsyncConnectionPool) -> None:
    """The person came back in 2024 and again in 2026: each return has its own reintegration to follow."""
    earlier = await registered(followup_pool, date(2024, 4, 12))
    latest = await registered(followup_pool, date(2026, 11, 1))
    await merged(followup_pool, merge(earlier, latest))
    assert await state(followup_pool, latest) == ("OPEN", None, earlier, 0)
    assert latest in await missing_plans(followup_pool)
    saved = await ask(followup_pool, "save_plan", case_id=latest, version=0, idempotency_key=str(uuid.uuid4()),
                      goals=GOALS)
    assert saved["version"] == 1


async def test_a_follow_up_closed_before_the_merge_keeps_its_reason_and_stays_closed(
        followup_pool: AsyncConnectionPool) -> None:
    survivor, second = await registered(followup_pool), await registered(followup_pool)
    await ask(followup_pool, "close", case_id=second, reason="UNREACHABLE", version=0)
    done = merge(survivor, second)
    await merged(followup_pool, done)
    assert await state(followup_pool, second) == ("CLOSED", "UNREACHABLE", survivor, 1)
    # Re-opened now, it would be the return's second follow-up: refused, as the merge would have closed it.
    with pytest.raises(SeginError) as caught:
        await ask(followup_pool, "reopen", case_id=second, reason="CONTACT_RESUMED", version=1)
    assert (caught.value.code, caught.value.field) == ("CASE_CLOSED", "caseId") and "merged" in caught.value.message
    await undone(followup_pool, done)
    assert await state(followup_pool, second) == ("CLOSED", "UNREACHABLE", None, 1)
    reopened = await ask(followup_pool, "reopen", case_id=second, reason="CONTACT_RESUMED", version=1)
    assert reopened["status"] == "OPEN"


async def test_a_case_re_opened_by_hand_is_never_a_second_open_follow_up_whenever_the_merge_is_handled(
        followup_pool: AsyncConnectionPool) -> None:
    """Review finding: closed UNREACHABLE, merged with a case of the same return, re-opened by hand. Whether
    follow-up handled the merge before the re-open or after, the return has one open follow-up."""
    early_survivor, early = await registered(followup_pool), await registered(followup_pool)
    await ask(followup_pool, "close", case_id=early, reason="UNREACHABLE", version=0)
    await merged(followup_pool, merge(early_survivor, early))
    with pytest.raises(SeginError):
        await ask(followup_pool, "reopen", case_id=early, reason="CONTACT_RESUMED", version=1)
    late_survivor, late = await registered(followup_pool), await registered(followup_pool)
    await ask(followup_pool, "close", case_id=late, reason="UNREACHABLE", version=0)
    await ask(followup_pool, "reopen", case_id=late, reason="CONTACT_RESUMED", version=1)
    await merged(followup_pool, merge(late_survivor, late))
    assert (await state(followup_pool, early))[0] == (await state(followup_pool, late))[0] == "CLOSED"


async def test_a_merge_never_leaves_the_return_without_an_open_follow_up(followup_pool: AsyncConnectionPool) -> None:
    """Review finding: the survivor's follow-up was closed by hand at Gao while the second registration is
    followed in Bamako with a plan; the merge leaves the live one open."""
    survivor = await registered(followup_pool, date(2026, 11, 1))
    second = await registered(followup_pool, date(2026, 11, 6))
    await ask(followup_pool, "close", case_id=survivor, reason="DECLINED_SUPPORT", version=0)
    await ask(followup_pool, "save_plan", case_id=second, version=0, idempotency_key=str(uuid.uuid4()), goals=GOALS)
    await merged(followup_pool, merge(survivor, second))
    assert await state(followup_pool, second) == ("OPEN", None, survivor, 1)


async def test_a_merge_of_another_return_leaves_the_managers_version_as_it_was(
        followup_pool: AsyncConnectionPool) -> None:
    """Review finding: nothing the manager sees changes, so an edit in progress is not refused, and no
    version jump tells the manager that the person has another registration."""
    earlier = await registered(followup_pool, date(2024, 4, 12))
    latest = await registered(followup_pool, date(2026, 11, 1))
    done = merge(earlier, latest)
    await merged(followup_pool, done)
    assert await state(followup_pool, latest) == ("OPEN", None, earlier, 0)
    await undone(followup_pool, done)
    assert await state(followup_pool, latest) == ("OPEN", None, None, 0)
    assert await announced(followup_pool, latest) == []


async def test_a_manager_no_basis_covers_any_more_is_not_told_of_the_merge(followup_pool: AsyncConnectionPool
                                                                         ) -> None:
    """IOM managed the follow-up on the person's consent, since withdrawn: it may no longer see the case, so it
    does not learn that the person has another registration."""
    survivor = await registered(followup_pool)
    second = await registered(followup_pool, consent_to=("iom",))
    await ask(followup_pool, "assign", case_id=second, organization_id="iom", organization_type="INTERNATIONAL",
              reason="SPECIALISED_SUPPORT")
    await deliver(followup_pool, handlers.on_sharing_changed, SHARING_CHANGED, SharingChangedV1(
        case_id=second, owner_org_id=OWNER, change="CONSENT_WITHDRAWN", sharing_version=2,
        coverage=[SharingCoverage(purpose=Purpose.FOLLOW_UP, recipients=[])]), second)
    await merged(followup_pool, merge(survivor, second))
    assert (await state(followup_pool, second))[:2] == ("CLOSED", "MERGED")
    assert await announced(followup_pool, second) == []


async def test_a_stranger_cannot_tell_a_merged_follow_up_from_no_case(followup_pool: AsyncConnectionPool) -> None:
    """Review finding: the merged refusal came before the access check, telling anyone with followup:write
    that an id exists, was merged, and that another registration arrived within 30 days of it."""
    survivor, second = await registered(followup_pool), await registered(followup_pool)
    await merged(followup_pool, merge(survivor, second))
    stranger = principal("ngo-stranger", "followup:read followup:write")
    nobody = str(uuid.uuid4())
    for endpoint, payload in (("reopen", {"reason": "CLOSED_IN_ERROR", "version": 1}),
                              ("close", {"reason": "UNREACHABLE", "version": 1}),
                              ("save_plan", {"goals": GOALS, "version": 1, "idempotency_key": str(uuid.uuid4())}),
                              ("assign", {"organization_id": "iom", "reason": "SPECIALISED_SUPPORT"})):
        answers = []
        for case_id in (nobody, second):
            with pytest.raises(SeginError) as caught:
                await call(FOLLOWUP, endpoint, followup_pool, stranger, {"case_id": case_id, **payload})
            answers.append((caught.value.code, caught.value.field, caught.value.message))
        assert answers[0] == answers[1], endpoint


async def test_a_merge_of_cases_not_known_yet_is_retried(followup_pool: AsyncConnectionPool) -> None:
    survivor, second = str(uuid.uuid4()), str(uuid.uuid4())
    done = merge(survivor, second)
    with pytest.raises(RetryLater):
        await merged(followup_pool, done)
    second = await registered(followup_pool)
    done = merge(survivor, second)
    with pytest.raises(RetryLater):  # the survivor's arrival not handled yet either
        await merged(followup_pool, done)
    assert await state(followup_pool, second) == ("OPEN", None, None, 0)


async def test_nobody_closes_a_follow_up_as_merged_by_hand(followup_pool: AsyncConnectionPool) -> None:
    case_id = await registered(followup_pool)
    with pytest.raises(SeginError) as caught:
        await ask(followup_pool, "close", case_id=case_id, reason="MERGED", version=0)
    assert (caught.value.code, caught.value.field) == ("BAD_USER_INPUT", "reason")
    assert "never by hand" in caught.value.message
    assert await state(followup_pool, case_id) == ("OPEN", None, None, 0)
