"""Follow-up's tables (schema ``followup``): the cases it follows, hand-overs, plans."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from contracts.commands import PlanGoalInput
from contracts.events import ArrivalRegisteredV1, SharingRecipient
from contracts.reference import ClosureReason, FollowupStatus, LegalBasis, PlanActionStatus
from kernel.audit import Trail
from kernel.db import Connection
from kernel.pagination import keyset_query
from services.followup.domain import REGISTERED, FollowupCase

SCHEMA = "followup"
TRAIL = Trail(SCHEMA)  # follow-up's audit trail: one call per handler


def _recipients_json(recipients: list[SharingRecipient]) -> Jsonb:
    return Jsonb([r.model_dump(mode="json") for r in recipients])


async def save_case(conn: Connection, arrival: ArrivalRegisteredV1, recipients: list[SharingRecipient]) -> bool:
    """Start following a new case, managed by its owner; False when it was known already (a redelivery)."""
    cur = await conn.execute(
        "insert into followup.cases (case_id, owner_org_id, manager_org_id, arrival_date, destination_region,"
        " followup_recipients) values (%s, %s, %s, %s, %s, %s) on conflict (case_id) do nothing",
        (arrival.case_id, arrival.owner_org_id, arrival.owner_org_id, arrival.arrival_date,
         arrival.destination_region, _recipients_json(recipients)),
    )
    if cur.rowcount == 1:
        await insert_assignment(conn, arrival.case_id, None, arrival.owner_org_id, REGISTERED, None,
                                arrival.owner_org_id)
    return cur.rowcount == 1


async def set_recipients(conn: Connection, case_id: str, recipients: list[SharingRecipient]) -> None:
    await conn.execute("update followup.cases set followup_recipients = %s where case_id = %s",
                       (_recipients_json(recipients), case_id))


async def get_case(conn: Connection, case_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    cur = await conn.execute("select * from followup.cases where case_id = %s" + (" for update" if lock else ""),
                             (case_id,))
    return await cur.fetchone()


def to_case(row: dict[str, Any]) -> FollowupCase:
    return FollowupCase(
        case_id=str(row["case_id"]), owner_org_id=row["owner_org_id"], manager_org_id=row["manager_org_id"],
        status=FollowupStatus(row["status"]), version=row["version"], arrival_date=row["arrival_date"],
        recipients=tuple(SharingRecipient.model_validate(r) for r in row["followup_recipients"]),
    )


async def insert_assignment(conn: Connection, case_id: str | uuid.UUID, from_org_id: str | None, to_org_id: str,
                            reason_code: str, legal_basis: LegalBasis | None, by_org_id: str) -> None:
    await conn.execute(
        "insert into followup.assignments (id, case_id, from_org_id, to_org_id, reason_code, legal_basis,"
        " assigned_by_org_id) values (%s, %s, %s, %s, %s, %s, %s)",
        (uuid.uuid4(), case_id, from_org_id, to_org_id, reason_code, legal_basis.value if legal_basis else None,
         by_org_id),
    )


async def set_manager(conn: Connection, case_id: uuid.UUID, org_id: str) -> dict[str, Any]:
    cur = await conn.execute(
        "update followup.cases set manager_org_id = %s, managed_since = now(), version = version + 1,"
        " updated_at = now() where case_id = %s returning *", (org_id, case_id))
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


async def replace_plan(conn: Connection, case_id: uuid.UUID, org_id: str, goals: list[PlanGoalInput]
                       ) -> tuple[dict[str, Any], int]:
    """Write the whole plan anew (an action keeps its id when given); returns the case row and how many actions."""
    await conn.execute("delete from followup.plan_goals where case_id = %s", (case_id,))
    goal_rows, action_rows = [], []
    for g, goal in enumerate(goals):
        goal_id = uuid.uuid4()
        goal_rows.append((goal_id, case_id, g, goal.dimension.value, goal.description))
        for action in goal.actions:
            action_id = uuid.UUID(action.id) if action.id else uuid.uuid4()
            action_rows.append((action_id, goal_id, case_id, len(action_rows) + 1, action.description,
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
    """Raise the case's version (and set ``status``/``closure_reason`` when given); returns the row."""
    allowed = {"status", "closure_reason"}
    assert set(columns) <= allowed
    sets = "".join(f", {name} = %s" for name in columns)
    cur = await conn.execute(f"update followup.cases set version = version + 1, updated_at = now(){sets}"  # noqa: S608
                             " where case_id = %s returning *", (*columns.values(), case_id))
    row = await cur.fetchone()
    assert row is not None
    return row


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
