"""Follow-up's tables (schema ``followup``): the cases it follows, hand-overs, plans, surveys."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from psycopg.types.json import Jsonb

from contracts.commands import ContactInput, PlanGoalInput
from contracts.events import ArrivalRegisteredV1, SharingRecipient
from contracts.reference import ClosureReason, FollowupStatus, LegalBasis, PlanActionStatus
from kernel.audit import Trail
from kernel.db import Connection, idempotent, update_if_newer
from kernel.pagination import date_keyset_query, keyset_query
from kernel.tokens import Principal
from services.followup.domain import REGISTERED, FollowupCase
from services.followup.instrument import Assessment
from services.followup.schedule import Attempt, Standing

SCHEMA = "followup"
TRAIL = Trail(SCHEMA)  # follow-up's audit trail: one call per handler


def _recipients_json(recipients: list[SharingRecipient]) -> Jsonb:
    return Jsonb([r.model_dump(mode="json") for r in recipients])


async def save_case(conn: Connection, arrival: ArrivalRegisteredV1, recipients: list[SharingRecipient],
                    schedule: tuple[str, int], sensitive_categories: list[str]) -> bool:
    """Start following a new case, managed by its owner, on ``schedule`` (id, version); False when it
    was known already (a redelivery, which only fills in the sensitive categories of a case known
    before they were kept)."""
    # A known case keeps its coverage: the registration's is the first (version 1), whatever came after is newer.
    cur = await conn.execute(
        "insert into followup.cases (case_id, owner_org_id, manager_org_id, arrival_date, destination_region,"
        " followup_recipients, sharing_version, schedule_id, schedule_version, sensitive_categories)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (case_id) do update"
        " set sensitive_categories = coalesce(followup.cases.sensitive_categories, excluded.sensitive_categories)"
        " returning (xmax = 0) as inserted",
        (arrival.case_id, arrival.owner_org_id, arrival.owner_org_id, arrival.arrival_date,
         arrival.destination_region, _recipients_json(recipients), arrival.sharing_version, *schedule,
         sensitive_categories),
    )
    row = await cur.fetchone()
    inserted = bool(row and row["inserted"])
    if inserted:
        await insert_assignment(conn, arrival.case_id, None, arrival.owner_org_id, REGISTERED, None,
                                arrival.owner_org_id)
    return inserted


async def correct_case(conn: Connection, case_id: str, destination_region: str, sensitive_categories: list[str],
                       version: int) -> bool | None:
    """Apply a correction of the case (its ``version``, 1 at registration) if newer than the one held: the
    destination as it now is, and the sensitive categories grown by any the correction adds. None: no such
    case; False: older (a late or repeated delivery)."""
    cur = await conn.execute("select sensitive_categories, case_version from followup.cases where case_id = %s"
                             " for update", (case_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    if row["case_version"] >= version:
        return False
    # A category once on the case stays: notes written meanwhile may speak of it. Null (not known) stays
    # null, which shows notes only to tokens holding every sensitive scope.
    held = row["sensitive_categories"]
    grown = None if held is None else sorted(set(held) | set(sensitive_categories))
    await conn.execute("update followup.cases set destination_region = %s, sensitive_categories = %s,"
                       " case_version = %s where case_id = %s", (destination_region, grown, version, case_id))
    return True


async def set_recipients(conn: Connection, case_id: str, recipients: list[SharingRecipient], version: int
                         ) -> bool | None:
    """Apply a sharing change's coverage if newer than the one held (``kernel.db.update_if_newer``)."""
    return await update_if_newer(conn, "followup.cases", ("case_id", case_id),
                                 {"followup_recipients": _recipients_json(recipients)}, version)


async def get_case(conn: Connection, case_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    cur = await conn.execute("select * from followup.cases where case_id = %s" + (" for update" if lock else ""),
                             (case_id,))
    return await cur.fetchone()


def to_case(row: dict[str, Any]) -> FollowupCase:
    return FollowupCase(
        case_id=str(row["case_id"]), owner_org_id=row["owner_org_id"], manager_org_id=row["manager_org_id"],
        status=FollowupStatus(row["status"]), version=row["version"], arrival_date=row["arrival_date"],
        recipients=tuple(SharingRecipient.model_validate(r) for r in row["followup_recipients"]),
        manager_org_type=row.get("manager_org_type"),
        closure_reason=ClosureReason(row["closure_reason"]) if row.get("closure_reason") else None,
        merged_into=str(row["merged_into"]) if row.get("merged_into") else None,
    )


async def insert_assignment(conn: Connection, case_id: str | uuid.UUID, from_org_id: str | None, to_org_id: str,
                            reason_code: str, legal_basis: LegalBasis | None, by_org_id: str) -> None:
    await conn.execute(
        "insert into followup.assignments (id, case_id, from_org_id, to_org_id, reason_code, legal_basis,"
        " assigned_by_org_id) values (%s, %s, %s, %s, %s, %s, %s)",
        (uuid.uuid4(), case_id, from_org_id, to_org_id, reason_code, legal_basis.value if legal_basis else None,
         by_org_id),
    )


async def set_manager(conn: Connection, case_id: uuid.UUID, org_id: str, org_type: str | None = None
                      ) -> dict[str, Any]:
    cur = await conn.execute(
        "update followup.cases set manager_org_id = %s, manager_org_type = %s, managed_since = now(),"
        " version = version + 1, updated_at = now() where case_id = %s returning *", (org_id, org_type, case_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def assignments(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    cur = await conn.execute("select * from followup.assignments where case_id = %s order by assigned_at, id",
                             (case_id,))
    return list(await cur.fetchall())


async def plan(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """The plan's goals, in order, each with its ``actions`` in order."""
    cur = await conn.execute("select * from followup.plan_goals where case_id = %s order by position", (case_id,))
    goals = [dict(g, actions=[]) for g in await cur.fetchall()]
    by_id = {g["id"]: g for g in goals}
    cur = await conn.execute("select * from followup.plan_actions where case_id = %s order by position", (case_id,))
    for action in await cur.fetchall():
        by_id[action["goal_id"]]["actions"].append(action)
    return goals


async def action_states(conn: Connection, case_id: uuid.UUID) -> dict[str, PlanActionStatus]:
    cur = await conn.execute("select id, status from followup.plan_actions where case_id = %s", (case_id,))
    return {str(r["id"]): PlanActionStatus(r["status"]) for r in await cur.fetchall()}


async def goal_ids(conn: Connection, case_id: uuid.UUID) -> set[str]:
    cur = await conn.execute("select id from followup.plan_goals where case_id = %s", (case_id,))
    return {str(r["id"]) for r in await cur.fetchall()}


async def replace_plan(conn: Connection, case_id: uuid.UUID, org_id: str, goals: list[PlanGoalInput]
                       ) -> tuple[dict[str, Any], int]:
    """Write the whole plan anew (a goal or an action keeps its id, and its text when none is given,
    when the id is given: ``domain.check_plan`` checked them); returns the case row and how many actions."""
    cur = await conn.execute("select id, description from followup.plan_goals where case_id = %s", (case_id,))
    goal_text = {str(r["id"]): r["description"] for r in await cur.fetchall()}
    cur = await conn.execute("select id, description from followup.plan_actions where case_id = %s", (case_id,))
    action_text = {str(r["id"]): r["description"] for r in await cur.fetchall()}
    await conn.execute("delete from followup.plan_goals where case_id = %s", (case_id,))
    goal_rows, action_rows = [], []
    for g, goal in enumerate(goals):
        goal_id = uuid.UUID(goal.id) if goal.id else uuid.uuid4()
        goal_rows.append((goal_id, case_id, g, goal.dimension.value,
                          goal.description if goal.description is not None else goal_text[str(goal_id)]))
        for action in goal.actions:
            action_id = uuid.UUID(action.id) if action.id else uuid.uuid4()
            action_rows.append((action_id, goal_id, case_id, len(action_rows) + 1,
                                action.description if action.description is not None else action_text[str(action_id)],
                                action.referral_id, action.target_date, action.status.value))
    count = len(action_rows)
    async with conn.cursor() as cur:  # one pipelined batch per table, not a round trip per row
        await cur.executemany("insert into followup.plan_goals (id, case_id, position, dimension, description)"
                              " values (%s, %s, %s, %s, %s)", goal_rows)
        if action_rows:
            await cur.executemany(
                "insert into followup.plan_actions (id, goal_id, case_id, position, description, referral_id,"
                " target_date, status) values (%s, %s, %s, %s, %s, %s, %s, %s)", action_rows)
    cur = await conn.execute(
        "update followup.cases set has_plan = true, plan_saved_at = now(), plan_saved_by_org_id = %s,"
        " first_plan_saved_at = coalesce(first_plan_saved_at, now()),"
        " version = version + 1, updated_at = now() where case_id = %s returning *", (org_id, case_id))
    row = await cur.fetchone()
    assert row is not None
    return row, count


async def action_for_update(conn: Connection, case_id: uuid.UUID, action_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        "select a.*, g.dimension from followup.plan_actions a join followup.plan_goals g on g.id = a.goal_id"
        " where a.case_id = %s and a.id = %s for update of a", (case_id, action_id))
    return await cur.fetchone()


async def set_action_status(conn: Connection, case_id: uuid.UUID, action_id: uuid.UUID,
                            status: PlanActionStatus) -> dict[str, Any]:
    await conn.execute("update followup.plan_actions set status = %s, updated_at = now() where id = %s",
                       (status.value, action_id))
    return await bump(conn, case_id)


async def bump(conn: Connection, case_id: uuid.UUID, **columns: Any) -> dict[str, Any]:
    """Raise the case's version (and set ``status``/``closure_reason``/``merged_into`` when given); returns the row."""
    allowed = {"status", "closure_reason", "merged_into"}
    assert set(columns) <= allowed
    sets = "".join(f", {name} = %s" for name in columns)
    cur = await conn.execute(f"update followup.cases set version = version + 1, updated_at = now(){sets}"  # noqa: S608
                             " where case_id = %s returning *", (*columns.values(), case_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def set_merged_into(conn: Connection, case_id: uuid.UUID, survivor_id: uuid.UUID | None) -> None:
    """Note the case a registration is merged into, nothing its manager sees changing: its version stays, so an
    edit in progress is not refused for it (nor does a version jump tell the manager of the merge)."""
    await conn.execute("update followup.cases set merged_into = %s where case_id = %s", (survivor_id, case_id))


async def close(conn: Connection, case_id: uuid.UUID, reason: ClosureReason, action_ids: list[str]) -> dict[str, Any]:
    """Close the follow-up and cancel its open actions."""
    if action_ids:
        await conn.execute("update followup.plan_actions set status = %s, updated_at = now() where id = any(%s)",
                           (PlanActionStatus.CANCELLED.value, [uuid.UUID(a) for a in action_ids]))
    return await bump(conn, case_id, status=FollowupStatus.CLOSED.value, closure_reason=reason.value)


async def reopen(conn: Connection, case_id: uuid.UUID) -> dict[str, Any]:
    return await bump(conn, case_id, status=FollowupStatus.OPEN.value, closure_reason=None)


async def plans_missing(conn: Connection, org_id: str, org_type: str | None, first: int, after: str | None
                        ) -> list[dict[str, Any]]:
    """Open cases ``org_id`` manages without a plan, newest hand-over first (keyset-paged on it); a case
    handed over only while a basis covers ``org_id`` for FOLLOW_UP (``domain.standing``), as when read."""
    query, params = keyset_query(
        "select * from (select case_id as id, managed_since as created_at, arrival_date, destination_region"
        " from followup.cases where manager_org_id = %s and status = 'OPEN' and not has_plan"
        " and (owner_org_id = manager_org_id or followup_recipients @> %s"
        " or (%s::text is not null and followup_recipients @> %s))) m where true",
        [org_id, Jsonb([{"org_id": org_id}]), org_type, Jsonb([{"org_type": org_type}])], first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


# --- surveys ------------------------------------------------------------------------------------------


async def insert_survey(conn: Connection, case_id: uuid.UUID, assessment: Assessment, taken_on: date,
                        answers: list[dict[str, str]], org_id: str) -> uuid.UUID:
    """Store one administration: ``answers`` ([{indicator, dimension, option}], in the instrument's
    order), the scores and bands as computed now, and the version and digest they were computed with."""
    survey_id = uuid.uuid4()
    s = assessment.scores
    await conn.execute(
        "insert into followup.surveys (id, case_id, instrument_id, instrument_version, instrument_digest, taken_on,"
        " answers, economic, social, psychosocial, composite, economic_band, social_band, psychosocial_band,"
        " composite_band, recorded_by_org_id)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (survey_id, case_id, assessment.instrument_id, assessment.version, assessment.digest, taken_on,
         Jsonb(answers), s.economic, s.social, s.psychosocial, s.composite, s.band("ECONOMIC"), s.band("SOCIAL"),
         s.band("PSYCHOSOCIAL"), s.band("COMPOSITE"), org_id))
    return survey_id


async def surveys(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """A case's surveys, oldest first (by the day taken, then by when recorded)."""
    cur = await conn.execute("select * from followup.surveys where case_id = %s order by taken_on, recorded_at, id",
                             (case_id,))
    return list(await cur.fetchall())


async def survey(conn: Connection, survey_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute("select * from followup.surveys where id = %s", (survey_id,))
    return await cur.fetchone()


# --- statistics (rows per case; the domain counts them and kernel.statistics suppresses) -------------

# A registration merged into another of the same return is the same person's return counted twice.
_ONE_PER_RETURN = " where closure_reason is distinct from 'MERGED'"


async def plan_rows(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """Every case: region, arrival date, the day its first plan was saved (UTC), and whether it is
    ``org_id``'s own (registered or managed by it)."""
    cur = await conn.execute(
        "select destination_region, arrival_date, (first_plan_saved_at at time zone 'UTC')::date as first_plan_on,"
        " (owner_org_id = %s or manager_org_id = %s) as own from followup.cases" + _ONE_PER_RETURN, (org_id, org_id))
    return list(await cur.fetchall())


async def contact_rows(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """Every case with what its schedule's standing needs (schedule, arrival, status, the date and
    outcome of each contact in the order they happened) and whether it is ``org_id``'s own."""
    cur = await conn.execute(
        "select c.case_id, c.schedule_id, c.schedule_version, c.arrival_date, c.status,"
        " (c.owner_org_id = %s or c.manager_org_id = %s) as own,"
        " coalesce(array_agg(k.contact_date order by k.contact_date, k.logged_at, k.id)"
        "   filter (where k.id is not null), '{}') as contact_dates,"
        " coalesce(array_agg(k.reached order by k.contact_date, k.logged_at, k.id)"
        "   filter (where k.id is not null), '{}') as reached"
        " from followup.cases c left join followup.contacts k on k.case_id = c.case_id" + _ONE_PER_RETURN
        + " group by c.case_id",
        (org_id, org_id))
    return list(await cur.fetchall())


async def latest_composite_rows(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """Each surveyed case's latest survey (by the day taken): its composite band, the day taken, and the
    case's region, arrival date and whether it is ``org_id``'s own."""
    cur = await conn.execute(
        "select distinct on (s.case_id) s.composite_band, s.taken_on, c.destination_region, c.arrival_date,"
        " (c.owner_org_id = %s or c.manager_org_id = %s) as own"
        " from followup.surveys s join followup.cases c on c.case_id = s.case_id" + _ONE_PER_RETURN +
        " order by s.case_id, s.taken_on desc, s.recorded_at desc, s.id desc", (org_id, org_id))
    return list(await cur.fetchall())


# --- contacts (services/followup/contacts.py) and their timers (timers.py) ------------------------


async def insert_contact(conn: Connection, case_id: uuid.UUID, contact: ContactInput, org_id: str) -> uuid.UUID:
    contact_id = uuid.uuid4()
    await conn.execute(
        "insert into followup.contacts (id, case_id, contact_date, mode, reached, next_step, note, logged_by_org_id)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (contact_id, case_id, contact.date, contact.mode.value, contact.reached, contact.next_step, contact.note,
         org_id))
    return contact_id


async def contacts(conn: Connection, case_id: uuid.UUID, limit: int | None = None) -> list[dict[str, Any]]:
    """A case's contact log, newest first (the ``limit`` newest, if given)."""
    cur = await conn.execute("select * from followup.contacts where case_id = %s"
                             " order by contact_date desc, logged_at desc, id desc limit %s", (case_id, limit))
    return list(await cur.fetchall())


async def count(conn: Connection, table: str, case_id: uuid.UUID) -> int:
    """How many contacts or surveys (``table``) a case holds."""
    assert table in ("contacts", "surveys")
    cur = await conn.execute(f"select count(*) as n from followup.{table} where case_id = %s", (case_id,))
    return (await cur.fetchone() or {"n": 0})["n"]


async def attempts_of(conn: Connection, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Attempt]]:
    """The date and outcome of every contact of these cases (what the schedule needs), in one query,
    in the order they happened (contacts of one day in the order they were logged)."""
    found: dict[uuid.UUID, list[Attempt]] = {c: [] for c in case_ids}
    cur = await conn.execute("select case_id, contact_date, reached from followup.contacts where case_id = any(%s)"
                             " order by contact_date, logged_at, id", (case_ids,))
    for row in await cur.fetchall():
        found[row["case_id"]].append(Attempt(row["contact_date"], row["reached"]))
    return found


async def save_standing(conn: Connection, case_id: uuid.UUID, standing: Standing, *, last_attempt_on: date | None,
                        unreachable: bool | None, next_check_on: date | None = None, touched: bool = False
                        ) -> dict[str, Any]:
    """Keep where the case stands (its next contact, failures in a row) for the work lists; set or
    clear ``unreachable_since`` (``unreachable`` True/False; None: leave it), and the scan's next
    look (None: leave it; a contact logged never makes a mark fire earlier); ``touched``: a person
    changed the case (a contact logged), not a scan."""
    nxt = standing.next
    cur = await conn.execute(
        "update followup.cases set next_contact_code = %s, next_contact_opens_on = %s, next_contact_due_on = %s,"
        " next_contact_overdue_after = %s, failed_in_a_row = %s, last_attempt_on = %s,"
        " unreachable_since = case when %s::boolean is null then unreachable_since"
        "   when %s::boolean then coalesce(unreachable_since, now()) else null end,"
        " next_check_on = coalesce(%s, next_check_on),"
        " updated_at = case when %s then now() else updated_at end where case_id = %s returning *",
        (nxt.code if nxt else None, nxt.opens_on if nxt else None, nxt.due_on if nxt else None,
         nxt.overdue_after if nxt else None, standing.failed_in_a_row, last_attempt_on, unreachable, unreachable,
         next_check_on, touched, case_id))
    row = await cur.fetchone()
    assert row is not None
    return row


# Literal state (not a parameter) so the planner matches the partial index cases_contact_check.
_CLAIM_CONTACT_CHECKS = ("select * from followup.cases where status = 'OPEN' and next_check_on <= %s"
                         " order by next_check_on limit %s for update skip locked")
_CLAIM_PLAN_OVERDUE = ("select * from followup.cases where status = 'OPEN' and not has_plan"
                       " and plan_overdue_flagged_at is null and arrival_date < %s"
                       " order by arrival_date limit %s for update skip locked")


async def claim_contact_checks(conn: Connection, today: date, limit: int) -> list[dict[str, Any]]:
    """Lock open cases with something that may fire by ``today``; rows another transaction holds (a
    concurrent scan, a contact being logged) are skipped and picked up by a later scan."""
    cur = await conn.execute(_CLAIM_CONTACT_CHECKS, (today, limit))
    return list(await cur.fetchall())


async def claim_plan_overdue(conn: Connection, arrived_before: date, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(_CLAIM_PLAN_OVERDUE, (arrived_before, limit))
    return list(await cur.fetchall())


async def set_marks(conn: Connection, marks: list[tuple[uuid.UUID, str, str]]) -> set[tuple[uuid.UUID, str, str]]:
    """Record (case, contact code, kind) marks; returns those new (a mark already there never fires again)."""
    if not marks:
        return set()
    cur = await conn.execute(
        "insert into followup.contact_marks (case_id, contact_code, kind)"
        " select * from unnest(%s::uuid[], %s::text[], %s::text[]) on conflict do nothing"
        " returning case_id, contact_code, kind",
        ([m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks]))
    return {(r["case_id"], r["contact_code"], r["kind"]) for r in await cur.fetchall()}


async def flag_plan_overdue(conn: Connection, case_ids: list[uuid.UUID]) -> None:
    await conn.execute("update followup.cases set plan_overdue_flagged_at = now()"
                       " where case_id = any(%s) and plan_overdue_flagged_at is null", (case_ids,))


# --- work lists: the caller's open managed cases (one index range of cases_next_contact each) -----

# A case handed over only while a basis covers the manager for FOLLOW_UP (``domain.standing``), as when read:
# once consent is withdrawn, the manager's lists no longer name the case.
_COVERED = (" and (owner_org_id = manager_org_id or followup_recipients @> %s"
            " or (%s::text is not null and followup_recipients @> %s))")


def _covered(org_id: str, org_type: str | None) -> list[Any]:
    return [Jsonb([{"org_id": org_id}]), org_type, Jsonb([{"org_type": org_type}])]


_NEXT_CONTACT = ("select case_id as id, next_contact_due_on as sort_on, arrival_date, destination_region,"
                 " next_contact_code, next_contact_opens_on, next_contact_due_on, next_contact_overdue_after"
                 " from followup.cases where manager_org_id = %s and status = 'OPEN' and next_contact_code is not null"
                 + _COVERED)


async def contacts_due(conn: Connection, org_id: str, org_type: str | None, today: date, horizon: date, first: int,
                       after: str | None) -> list[dict[str, Any]]:
    """Open cases ``org_id`` manages whose next contact is not overdue and opens by ``horizon``, soonest first."""
    query, params = date_keyset_query(
        _NEXT_CONTACT + " and next_contact_overdue_after >= %s and next_contact_opens_on <= %s",
        [org_id, *_covered(org_id, org_type), today, horizon], first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


async def contacts_overdue(conn: Connection, org_id: str, org_type: str | None, today: date, first: int,
                           after: str | None) -> list[dict[str, Any]]:
    """Open cases ``org_id`` manages whose next contact is overdue, the longest overdue first."""
    query, params = date_keyset_query(_NEXT_CONTACT + " and next_contact_overdue_after < %s",
                                      [org_id, *_covered(org_id, org_type), today], first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


async def unreachable(conn: Connection, org_id: str, org_type: str | None, first: int, after: str | None
                      ) -> list[dict[str, Any]]:
    """Open cases ``org_id`` manages flagged unreachable, the latest flagged first."""
    query, params = keyset_query(
        "select * from (select case_id as id, unreachable_since as created_at, arrival_date, destination_region,"
        " failed_in_a_row from followup.cases where manager_org_id = %s and status = 'OPEN'"
        " and unreachable_since is not null" + _COVERED + ") u where true", [org_id, *_covered(org_id, org_type)],
        first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


async def once(conn: Connection, principal: Principal, operation: str, request: Any,
               produce: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run ``produce`` once per the caller's idempotency key for ``operation`` (``request`` carries it,
    and the rest of the request is what a retry must repeat exactly)."""
    return await idempotent(conn, SCHEMA, org_id=principal.org_id, subject=principal.subject, operation=operation,
                            key=request.idempotency_key, produce=produce,
                            request=request.model_dump(mode="json", exclude={"idempotency_key"}))
