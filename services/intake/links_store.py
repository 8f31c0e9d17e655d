"""Intake's family links table (``intake.case_links``, migration 0008): each link stored once, read from both sides."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.reference import Relation
from kernel.db import Connection

MAX_ROWS = 500  # links read for one family walk, whatever the graph looks like


async def find(conn: Connection, case_id: uuid.UUID, linked_case_id: uuid.UUID) -> dict[str, Any] | None:
    """The link between two cases, whichever way round it was made."""
    cur = await conn.execute(
        "select * from intake.case_links where (case_id = %s and linked_case_id = %s)"
        " or (case_id = %s and linked_case_id = %s)", (case_id, linked_case_id, linked_case_id, case_id))
    return await cur.fetchone()


async def insert(conn: Connection, case_id: uuid.UUID, linked_case_id: uuid.UUID, relation: Relation,
                 travelling_together: bool, actor: str, org_id: str) -> dict[str, Any] | None:
    """The new link, or None when the pair is already linked (a concurrent link of the same pair)."""
    cur = await conn.execute(
        "insert into intake.case_links (id, case_id, linked_case_id, relation, travelling_together, created_by,"
        " created_by_org) values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing returning *",
        (uuid.uuid4(), case_id, linked_case_id, relation.value, travelling_together, actor, org_id))
    return await cur.fetchone()


async def delete(conn: Connection, link_id: uuid.UUID) -> bool:
    cur = await conn.execute("delete from intake.case_links where id = %s", (link_id,))
    return cur.rowcount == 1


async def of_case(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every link of the case, from either side, with the linked case's owner and who it is."""
    cur = await conn.execute(
        "select l.*, o.id as other_id, o.owner_org_id as other_owner, o.given_name, o.family_name, o.sex,"
        " o.date_of_birth, o.estimated_age, o.arrival_point, o.arrival_date"
        " from intake.case_links l join intake.cases o"
        " on o.id = case when l.case_id = %s then l.linked_case_id else l.case_id end"
        " where l.case_id = %s or l.linked_case_id = %s order by l.created_at, l.id", (case_id, case_id, case_id))
    return list(await cur.fetchall())


async def around(conn: Connection, case_id: uuid.UUID, depth: int) -> list[dict[str, Any]]:
    """The links of the cases at most ``depth`` links away from ``case_id`` (bounded: ``MAX_ROWS``)."""
    cur = await conn.execute(
        "with recursive reach (id, depth) as ("
        "  select %s::uuid, 0"
        "  union"
        "  select case when l.case_id = r.id then l.linked_case_id else l.case_id end, r.depth + 1"
        "  from reach r join intake.case_links l on l.case_id = r.id or l.linked_case_id = r.id"
        "  where r.depth < %s"
        ") select l.id, l.case_id, l.linked_case_id, l.relation, l.travelling_together from intake.case_links l"
        " where l.case_id in (select id from reach) or l.linked_case_id in (select id from reach)"
        " order by l.created_at, l.id limit %s", (case_id, depth, MAX_ROWS))
    return list(await cur.fetchall())


async def people(conn: Connection, case_ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
    """Who each case is (the fields a linked case shows), by case id."""
    cur = await conn.execute(
        "select id, owner_org_id, given_name, family_name, sex, date_of_birth, estimated_age, arrival_point,"
        " arrival_date from intake.cases where id = any(%s)", (case_ids,))
    return {str(r["id"]): r for r in await cur.fetchall()}


async def vulnerabilities(conn: Connection, case_id: uuid.UUID) -> list[str]:
    cur = await conn.execute("select code from intake.vulnerability_flags where case_id = %s", (case_id,))
    return [r["code"] for r in await cur.fetchall()]


async def hold(conn: Connection, case_ids: list[uuid.UUID]) -> None:
    """Keep the cases' screening as read until commit (``for share``): a flag set on one of them at the
    same time (a case update, which locks the row to raise its version) waits, then sees the link."""
    await conn.execute("select id from intake.cases where id = any(%s) order by id for share", (case_ids,))


async def lock_pair(conn: Connection, case_id: uuid.UUID, linked_case_id: uuid.UUID) -> None:
    """Link and unlink of one pair one after the other (the same lock whichever way round)."""
    low, high = sorted([str(case_id), str(linked_case_id)])
    await conn.execute("select pg_advisory_xact_lock(hashtext('intake.link:' || %s || ':' || %s))", (low, high))
