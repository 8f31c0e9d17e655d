"""Intake's merges as another service keeps them (decision records 0025 and 0026): ``<schema>.case_merges``
(made by the service's own migration), fed by ``intake.cases_merged`` and ``intake.merge_undone``, ids only.

An undo delivered before its merge leaves a tombstone (``undone``), so the late merge never brings it back;
a merge delivered again changes nothing. Referral follows the survivor's merged registrations
(``one_person``); follow-up, what a registration is merged into now (``survivor_of``).
"""

from __future__ import annotations

import uuid

from psycopg import sql

from contracts.events import CasesMergedV1
from kernel.db import Connection

MAX_DEPTH = 20  # merges of merges followed at most this deep (intake's redirect follows as many)


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "case_merges")


async def record(conn: Connection, schema: str, merge: CasesMergedV1, *, undone: bool) -> None:
    """Keep a merge (``undone``: its undo, a ``MergeUndoneV1``), in the caller's transaction."""
    await conn.execute(sql.SQL(
        "insert into {table} (merge_id, survivor_case_id, merged_case_id, undone) values (%s, %s, %s, %s)"
        " on conflict (merge_id) do update set undone = true, updated_at = now() where excluded.undone"
    ).format(table=_table(schema)), (merge.merge_id, merge.survivor_case_id, merge.merged_case_id, undone))


async def survivor_of(conn: Connection, schema: str, merged_id: str | uuid.UUID) -> uuid.UUID | None:
    """The case a registration is merged into now (None: no merge in force)."""
    cur = await conn.execute(sql.SQL(
        "select survivor_case_id from {table} where merged_case_id = %s and not undone"
        " order by updated_at desc, merge_id limit 1").format(table=_table(schema)), (merged_id,))
    row = await cur.fetchone()
    return row["survivor_case_id"] if row else None


async def one_person(conn: Connection, schema: str, case_id: uuid.UUID) -> list[uuid.UUID]:
    """The case and every case merged into it (merges in force, merges of merges included), the case first."""
    cur = await conn.execute(sql.SQL(
        "with recursive merged (id, depth) as (select %s::uuid, 0 union"
        " select m.merged_case_id, merged.depth + 1 from {table} m"
        " join merged on m.survivor_case_id = merged.id where not m.undone and merged.depth < %s)"
        " select id from merged order by depth, id").format(table=_table(schema)), (case_id, MAX_DEPTH))
    return [row["id"] for row in await cur.fetchall()]
