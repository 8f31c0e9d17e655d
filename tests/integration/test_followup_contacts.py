"""Follow-up contacts at the service level (real PostgreSQL, fresh database, no gateway, no NATS): the
manager logs contacts, the case stands against its schedule, failures in a row make the person
unreachable (once, until reached again), the scan fires each due and overdue contact once (twice in a
row, and two scans at once), bad input is refused by field with nothing written, a note on a sensitive
case needs its scope, the work lists show only the caller's managed open cases, and the export holds
the notes."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import (
    ARRIVAL_REGISTERED,
    CASE_CORRECTED,
    CASE_UNREACHABLE,
    CONTACT_DUE,
    CONTACT_LOGGED,
    CONTACT_OVERDUE,
    PLAN_OVERDUE,
)
from contracts.commands import CaseRef, ContactWorkListRequest, LogContact, PageRequest
from contracts.events import ArrivalRegisteredV1, CaseCorrectedV1
from contracts.reference import ArrivalPoint, Purpose, Sex, Vulnerability
from kernel.errors import SeginError
from kernel.tokens import Principal
from services.followup import contacts, handlers, timers
from tests.integration.services import audit_rows, call, deliver, outbox, principal

OWNER, MANAGER, STRANGER = "dgme", "iom", "ame"
ARRIVED = date(2026, 1, 10)  # M1 due 10 February (opens the 3rd, on time until the 24th); M3 due 10 April
NOTE = "Awa dit que son oncle la menace ; elle dort chez une voisine"
NEXT_STEP = "Revoir Awa au marché de Gao jeudi"


def caller(org: str, org_type: str, scopes: str = "followup:read followup:write") -> Principal:
    return replace(principal(org, scopes), org_type=org_type)


DGME, IOM, AME = caller(OWNER, "STATE"), caller(MANAGER, "INTERNATIONAL"), caller(STRANGER, "NGO")
IOM_HEALTH = caller(MANAGER, "INTERNATIONAL", "followup:read followup:write sensitive:health")


def at(day: date) -> Any:
    return lambda: datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


async def new_case(pool: AsyncConnectionPool, *, vulnerabilities: list[Vulnerability] | None = None,
                   arrived: date = ARRIVED, manager: bool = True) -> str:
    """DGME's case, consent covering IOM for follow-up; handed to IOM unless ``manager`` is False."""
    case_id = str(uuid.uuid4())
    arrival = ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=OWNER, arrival_point=ArrivalPoint.BAMAKO_AIRPORT, arrival_date=arrived,
        destination_region="07", is_child=False,
        vulnerabilities=[Vulnerability.EX_DETAINEE] if vulnerabilities is None else vulnerabilities,
        consent_given=True, consent_recipient_org_ids=[MANAGER], consent_purposes=[Purpose.FOLLOW_UP])
    await deliver(pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, arrival, case_id)
    if manager:
        await call_ok(pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
                      organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    return case_id


async def call_ok(pool: AsyncConnectionPool, who: Principal, endpoint: str, **payload: Any) -> Any:
    from services.followup.app import APP
    return await call(APP, endpoint, pool, who, payload)


async def log(pool: AsyncConnectionPool, case_id: str, on: date, reached: bool, *, who: Principal = IOM,
              today: date | None = None, note: str | None = NOTE, key: str | None = None, **extra: Any) -> Any:
    request = LogContact(idempotency_key=key or str(uuid.uuid4()), case_id=case_id, input={
        "date": on, "mode": "VISIT", "reached": reached, "next_step": NEXT_STEP, "note": note, **extra})
    return await handlers.log_contact(pool, who, request, clock=at(today or on))


async def refused(coro: Any) -> tuple[str, str | None]:
    with pytest.raises(SeginError) as caught:
        await coro
    return caught.value.code, caught.value.field


async def events(pool: AsyncConnectionPool, case_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e for e in await outbox(pool, "followup", case_id) if e["type"] == event_type]


async def scan(pool: AsyncConnectionPool, day: date, batch: int = 500) -> dict[str, int]:
    async with pool.connection() as conn:
        return await timers.scan_timers(conn, datetime(day.year, day.month, day.day, 6, tzinfo=UTC),
                                        timers.TimerSettings(batch=batch))


async def test_the_manager_logs_a_contact_and_the_case_stands_against_its_schedule(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool)
    seen = await log(followup_pool, case_id, date(2026, 2, 12), True, key="iom-contact-0001")
    again = await log(followup_pool, case_id, date(2026, 2, 12), True, key="iom-contact-0001")
    assert len(again.contacts or []) == 1  # the retry logged nothing more
    assert seen.version == 1  # contacts are appended: a plan being edited (read at version 1) is not stale
    assert (seen.schedule_id, seen.schedule_version, seen.failed_in_a_row, seen.unreachable) == ("DEFAULT", 1, 0,
                                                                                                  False)
    assert [(c.code, c.state, c.done_on, c.on_time) for c in seen.schedule][:2] == [
        ("M1", "DONE", date(2026, 2, 12), True), ("M3", "UPCOMING", None, None)]
    [contact] = seen.contacts or []
    assert (contact.date, contact.mode, contact.reached, contact.next_step, contact.note) == (
        date(2026, 2, 12), "VISIT", True, NEXT_STEP, NOTE)
    # The owner reads the log; an uninvolved organisation cannot tell the case exists; only the manager logs.
    owner = await handlers.get_case(followup_pool, DGME, CaseRef(case_id=case_id), clock=at(date(2026, 2, 13)))
    assert [c.note for c in owner.contacts or []] == [NOTE]
    assert await refused(handlers.get_case(followup_pool, AME, CaseRef(case_id=case_id))) == ("NOT_FOUND", "caseId")
    assert await refused(log(followup_pool, case_id, date(2026, 2, 12), True, who=AME)) == ("NOT_FOUND", "caseId")
    assert await refused(log(followup_pool, case_id, date(2026, 2, 12), True, who=DGME)) == ("FORBIDDEN", "caseId")
    # Announced once, with ids, date, mode and outcome: never the note nor the next step.
    [event] = await events(followup_pool, case_id, CONTACT_LOGGED.event_type)
    assert event["data"] == {"case_id": case_id, "manager_org_id": MANAGER, "contact_id": contact.id,
                             "date": "2026-02-12", "mode": "VISIT", "reached": True, "failed_in_a_row": 0,
                             "unreachable": False}
    everything = json.dumps([await outbox(followup_pool, "followup", case_id),
                             [dict(r) for r in await audit_rows(followup_pool, "followup")]], default=str)
    assert NOTE not in everything and NEXT_STEP not in everything
    operations = [(r["operation"], r["outcome"]) for r in await audit_rows(followup_pool, "followup")]
    assert ("followup.log_contact", "allowed") in operations and ("followup.log_contact", "denied") in operations
    read = [r for r in await audit_rows(followup_pool, "followup") if r["operation"] == "followup.read"
            and r["outcome"] == "allowed"][-1]
    assert {"contact", "contact_note"} <= set(read["field_categories"])


async def test_a_contact_in_the_future_or_before_arrival_is_refused_by_field_and_writes_nothing(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool)
    before = await outbox(followup_pool, "followup", case_id)
    assert await refused(log(followup_pool, case_id, date(2026, 2, 13), True, today=date(2026, 2, 12))) == (
        "BAD_USER_INPUT", "input.date")
    assert await refused(log(followup_pool, case_id, date(2026, 1, 9), True, today=date(2026, 2, 12))) == (
        "BAD_USER_INPUT", "input.date")
    assert await refused(call_ok(followup_pool, IOM, "log_contact", case_id=case_id, idempotency_key="iom-bad-mode",
                                 input={"date": "2026-02-01", "mode": "EMAIL", "reached": True})) == (
        "BAD_USER_INPUT", "input.mode")
    assert await refused(call_ok(followup_pool, IOM, "log_contact", case_id=case_id, idempotency_key="iom-bad-note",
                                 input={"date": "2026-02-01", "mode": "PHONE", "reached": True,
                                        "note": "x" * 2001})) == ("BAD_USER_INPUT", "input.note")
    assert await outbox(followup_pool, "followup", case_id) == before
    seen = await handlers.get_case(followup_pool, IOM, CaseRef(case_id=case_id), clock=at(date(2026, 2, 12)))
    assert seen.contacts == [] and seen.version == 1
    # A closed follow-up takes no contact.
    await call_ok(followup_pool, IOM, "close", case_id=case_id, reason="RE_MIGRATED", version=1)
    assert await refused(log(followup_pool, case_id, date(2026, 2, 12), True)) == ("CASE_CLOSED", "caseId")


async def test_three_failed_attempts_flag_the_person_unreachable_once_and_a_reached_contact_clears_it(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool)
    for day in (3, 5):
        seen = await log(followup_pool, case_id, date(2026, 2, day), False)
    assert (seen.failed_in_a_row, seen.unreachable) == (2, False)
    seen = await log(followup_pool, case_id, date(2026, 2, 7), False)
    assert (seen.failed_in_a_row, seen.unreachable) == (3, True)
    seen = await log(followup_pool, case_id, date(2026, 2, 9), False)  # a fourth: still unreachable, not told again
    assert (seen.failed_in_a_row, seen.unreachable) == (4, True)
    flagged = await events(followup_pool, case_id, CASE_UNREACHABLE.event_type)
    assert [e["data"] for e in flagged] == [{"case_id": case_id, "manager_org_id": MANAGER, "failed_in_a_row": 3,
                                             "last_attempt_on": "2026-02-07"}]
    listed = await contacts.unreachable_cases(followup_pool, IOM, PageRequest(first=10))
    assert [(n.case_id, n.failed_in_a_row) for n in listed.nodes] == [(case_id, 4)]
    assert (await contacts.unreachable_cases(followup_pool, DGME, PageRequest(first=10))).nodes == []

    seen = await log(followup_pool, case_id, date(2026, 2, 11), True)
    assert (seen.failed_in_a_row, seen.unreachable, seen.schedule[0].state) == (0, False, "DONE")
    assert (await contacts.unreachable_cases(followup_pool, IOM, PageRequest(first=10))).nodes == []
    for day in (12, 13, 14):  # a new run of failures is told again
        await log(followup_pool, case_id, date(2026, 2, day), False)
    assert len(await events(followup_pool, case_id, CASE_UNREACHABLE.event_type)) == 2


async def test_the_scan_tells_each_due_and_overdue_contact_once_and_skips_closed_cases(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool)
    closed = await new_case(followup_pool)
    await call_ok(followup_pool, IOM, "close", case_id=closed, reason="RE_MIGRATED", version=1)

    assert (await scan(followup_pool, date(2026, 2, 2)))["DUE"] == 0  # M1's window opens on the 3rd
    assert (await scan(followup_pool, date(2026, 2, 3)))["DUE"] == 1
    assert (await scan(followup_pool, date(2026, 2, 3)))["DUE"] == 0  # run twice: once
    [due] = await events(followup_pool, case_id, CONTACT_DUE.event_type)
    assert due["data"] == {"case_id": case_id, "manager_org_id": MANAGER, "schedule_id": "DEFAULT",
                           "schedule_version": 1, "contact_code": "M1", "opens_on": "2026-02-03",
                           "due_on": "2026-02-10", "overdue_after": "2026-02-24"}
    # The plan is due on 9 February; M1 is overdue from the 25th.
    fired = await scan(followup_pool, date(2026, 2, 25))
    assert (fired["OVERDUE"], fired["PLAN_OVERDUE"]) == (1, 1)
    assert await scan(followup_pool, date(2026, 2, 26)) == {"DUE": 0, "OVERDUE": 0, "PLAN_OVERDUE": 0}
    assert [e["data"]["contact_code"] for e in await events(followup_pool, case_id, CONTACT_OVERDUE.event_type)] == [
        "M1"]
    [late] = await events(followup_pool, case_id, PLAN_OVERDUE.event_type)
    assert late["data"] == {"case_id": case_id, "manager_org_id": MANAGER, "plan_due_on": "2026-02-09"}
    assert await outbox(followup_pool, "followup", closed) == [
        e for e in await outbox(followup_pool, "followup", closed) if e["type"].endswith(("case_assigned.v1",
                                                                                          "case_closed.v1"))]
    overdue = await contacts.followups_overdue(followup_pool, IOM, PageRequest(first=10), clock=at(date(2026, 2, 26)))
    assert [(n.case_id, n.contact_code, n.state) for n in overdue.nodes] == [(case_id, "M1", "OVERDUE")]
    # Reached in M3's window: M1 is missed, M3 done; M3's notices never fire.
    await log(followup_pool, case_id, date(2026, 3, 30), True)
    assert (await scan(followup_pool, date(2026, 4, 30))) == {"DUE": 0, "OVERDUE": 0, "PLAN_OVERDUE": 0}
    audit = [r["operation"] for r in await audit_rows(followup_pool, "followup") if r["actor"] == "service:followup"]
    assert audit == ["followup.contact_due", "followup.contact_overdue", "followup.plan_overdue"]


async def test_two_scans_at_once_tell_each_contact_once(followup_pool: AsyncConnectionPool) -> None:
    cases = [await new_case(followup_pool) for _ in range(7)]
    results = await asyncio.gather(scan(followup_pool, date(2026, 2, 5), batch=2),
                                   scan(followup_pool, date(2026, 2, 5), batch=2))
    assert sum(r["DUE"] for r in results) == 7
    for case_id in cases:
        assert len(await events(followup_pool, case_id, CONTACT_DUE.event_type)) == 1
    assert (await scan(followup_pool, date(2026, 2, 5)))["DUE"] == 0


async def test_a_note_on_a_sensitive_case_is_shown_only_with_its_categorys_scope(
        followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool, vulnerabilities=[Vulnerability.MEDICAL_NEEDS])
    await log(followup_pool, case_id, date(2026, 2, 12), True)
    without = await call_ok(followup_pool, IOM, "get_case", case_id=case_id)
    [contact] = without["contacts"]
    # The next step is free text too: behind the same scopes as the note (it used to be shown).
    assert (contact["note"], contact["text_restricted"], contact["next_step"]) == (None, "sensitive:health", None)
    assert (contact["mode"], contact["reached"]) == ("VISIT", True)  # the structure stays
    with_scope = await call_ok(followup_pool, IOM_HEALTH, "get_case", case_id=case_id)
    assert [(c["note"], c["next_step"], c["text_restricted"]) for c in with_scope["contacts"]] == [
        (NOTE, NEXT_STEP, None)]
    read = [r for r in await audit_rows(followup_pool, "followup") if r["operation"] == "followup.read"]
    assert "contact_note" not in read[-2]["field_categories"]
    assert {"contact_note", "health"} <= set(read[-1]["field_categories"])


async def test_work_lists_show_the_callers_open_managed_cases_soonest_first_without_totals(
        followup_pool: AsyncConnectionPool) -> None:
    soon = await new_case(followup_pool, arrived=date(2026, 1, 20))  # M1 opens 13 February
    now = await new_case(followup_pool)  # M1 opens 3 February
    later = await new_case(followup_pool, arrived=date(2026, 2, 1))  # M1 opens 22 February
    owners = await new_case(followup_pool, manager=False)  # DGME manages it
    today = at(date(2026, 2, 8))
    due = await contacts.followups_due(followup_pool, IOM, ContactWorkListRequest(first=1), clock=today)
    assert [(n.case_id, n.state) for n in due.nodes] == [(now, "DUE")] and due.page_info.has_next_page
    rest = await contacts.followups_due(followup_pool, IOM, ContactWorkListRequest(
        first=10, after=due.page_info.end_cursor), clock=today)
    assert [(n.case_id, n.state) for n in rest.nodes] == [(soon, "UPCOMING")] and not rest.page_info.has_next_page
    wide = await contacts.followups_due(followup_pool, IOM, ContactWorkListRequest(first=10, within_days=30),
                                        clock=today)
    assert [n.case_id for n in wide.nodes] == [now, soon, later]
    assert [n.case_id for n in (await contacts.followups_due(followup_pool, DGME, ContactWorkListRequest(
        first=10, within_days=30), clock=today)).nodes] == [owners]
    assert (await contacts.followups_overdue(followup_pool, IOM, PageRequest(first=10), clock=today)).nodes == []
    # Done: the case leaves the list; closed: too.
    await log(followup_pool, now, date(2026, 2, 8), True)
    await call_ok(followup_pool, IOM, "close", case_id=soon, reason="RE_MIGRATED", version=1)
    assert [n.case_id for n in (await contacts.followups_due(followup_pool, IOM, ContactWorkListRequest(
        first=10, within_days=30), clock=today)).nodes] == [later]


async def test_the_data_subject_export_holds_the_contacts_with_their_notes(followup_pool: AsyncConnectionPool) -> None:
    case_id = await new_case(followup_pool, vulnerabilities=[Vulnerability.GBV_SURVIVOR])
    await log(followup_pool, case_id, date(2026, 2, 12), True)
    [export] = await call_ok(followup_pool, principal("segin-steward", "audit:read"), "subject_access",
                             case_id=case_id)
    assert [(c["note"], c["next_step"]) for c in export["contacts"]] == [(NOTE, NEXT_STEP)]
    entry = (await audit_rows(followup_pool, "followup"))[-1]
    assert entry["operation"] == "dsar.export" and {"contact_note", "gbv"} <= set(entry["field_categories"])


async def test_a_case_first_seen_long_after_its_return_is_told_once_that_it_is_behind(
        followup_pool: AsyncConnectionPool) -> None:
    """As after migration 0002: M1 and M3 are both overdue on 1 June; one notice (M3), both marked."""
    case_id = await new_case(followup_pool)
    assert (await scan(followup_pool, date(2026, 6, 1)))["OVERDUE"] == 1
    assert [e["data"]["contact_code"] for e in await events(followup_pool, case_id, CONTACT_OVERDUE.event_type)] == [
        "M3"]
    async with followup_pool.connection() as conn:
        cur = await conn.execute("select contact_code, kind from followup.contact_marks where case_id = %s"
                                 " order by contact_code", (case_id,))
        assert [(r["contact_code"], r["kind"]) for r in await cur.fetchall()] == [("M1", "OVERDUE"), ("M3", "OVERDUE")]
    assert (await scan(followup_pool, date(2026, 6, 2)))["OVERDUE"] == 0


async def test_a_sensitive_flag_added_by_correction_guards_the_notes_written_before(
        followup_pool: AsyncConnectionPool) -> None:
    """Screened later (offline capture corrected): the notes already written speak of it, so from the
    correction on they are shown only with the category's scope (decision record 0025)."""
    case_id = await new_case(followup_pool, vulnerabilities=[])
    await log(followup_pool, case_id, date(2026, 2, 12), True)
    assert [c["note"] for c in (await call_ok(followup_pool, IOM, "get_case", case_id=case_id))["contacts"]] == [NOTE]
    await deliver(followup_pool, handlers.on_case_corrected, CASE_CORRECTED, CaseCorrectedV1(
        case_id=case_id, owner_org_id=OWNER, version=2, changed_fields=["vulnerabilities.health"],
        destination_region="07", is_child=False, vulnerabilities=[Vulnerability.MEDICAL_NEEDS], sex=Sex.FEMALE,
        age_years=30), case_id)
    [contact] = (await call_ok(followup_pool, IOM, "get_case", case_id=case_id))["contacts"]
    assert (contact["note"], contact["text_restricted"]) == (None, "sensitive:health")
    assert [c["note"] for c in (await call_ok(followup_pool, IOM_HEALTH, "get_case", case_id=case_id))["contacts"]
            ] == [NOTE]
