"""Intake's tables for people already known: blocking keys, merges, possible duplicates (decision record 0022).

Kept apart from ``store.py`` so that the identity-matching queries can be read (and their plans
checked by ``bench/match_candidates.py``) together.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.reference import LegalBasis, ReferralStatus
from kernel import pagination
from kernel.db import Connection
from services.intake.domain import Basis, Grant
from services.intake.store import to_basis

MAX_BLOCK_ROWS = 2000  # never score more rows than this for one lookup (bounded work whatever the name)

SCORING_COLUMNS = ("id, owner_org_id, given_name, family_name, sex, date_of_birth, estimated_age, arrival_date,"
                   " phone_numbers, place_of_origin, destination_region")


async def index_case(conn: Connection, case_id: uuid.UUID, keys: list[str]) -> None:
    await conn.execute("insert into intake.match_keys (key, case_id) select k, %s from unnest(%s::text[]) k"
                       " on conflict do nothing", (case_id, keys))


async def replace_keys(conn: Connection, case_id: uuid.UUID, keys: list[str]) -> None:
    await conn.execute("delete from intake.match_keys where case_id = %s", (case_id,))
    await index_case(conn, case_id, keys)


async def block(conn: Connection, keys: list[str], exclude: uuid.UUID | None) -> list[dict[str, Any]]:
    """Cases sharing a key with the person, merged cases left out (the survivor stands for them).

    The keys drive the join: key rows by the primary key (key first), then each case by its own
    (LATERAL); ``offset 0`` keeps the planner from folding either back into a plan it may turn
    around. A plan chosen with stale statistics, or a prepared statement's generic plan, must not
    scan every case for every key row, as a plain ``in (subquery)`` did while the tables grew from
    empty (160 ms a lookup with 300 cases)."""
    cur = await conn.execute(
        f"select {SCORING_COLUMNS} from (select distinct case_id from (select case_id from intake.match_keys"  # noqa: S608
        " where key = any(%s) offset 0) k limit %s) found, lateral (select * from intake.cases c"
        " where c.id = found.case_id and c.merged_into is null and c.id is distinct from %s offset 0) c",
        (keys, MAX_BLOCK_ROWS, exclude))
    return list(await cur.fetchall())


async def access_facts(conn: Connection, case_ids: list[uuid.UUID]
                       ) -> tuple[dict[uuid.UUID, list[Grant]], dict[uuid.UUID, list[Basis]],
                                  dict[uuid.UUID, str], dict[uuid.UUID, list[dict[str, Any]]]]:
    """What ``domain.case_access`` needs for several cases, in three queries whatever their number."""
    grants: dict[uuid.UUID, list[Grant]] = {i: [] for i in case_ids}
    bases: dict[uuid.UUID, list[Basis]] = {i: [] for i in case_ids}
    rows: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in case_ids}
    cur = await conn.execute("select case_id, org_id, legal_basis, status from intake.access_grants"
                             " where case_id = any(%s)", (case_ids,))
    for r in await cur.fetchall():
        grants[r["case_id"]].append(Grant(r["org_id"], LegalBasis(r["legal_basis"]) if r["legal_basis"] else None,
                                          ReferralStatus(r["status"])))
    cur = await conn.execute("select * from intake.consents where case_id = any(%s) order by recorded_at, id",
                             (case_ids,))
    for r in await cur.fetchall():
        bases[r["case_id"]].append(to_basis(r))
        rows[r["case_id"]].append(r)
    cur = await conn.execute("select case_id, org_id from intake.management_grants where case_id = any(%s)",
                             (case_ids,))
    managers = {r["case_id"]: r["org_id"] for r in await cur.fetchall()}
    return grants, bases, managers, rows


async def full_cases(conn: Connection, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Cases as ``store.get_case`` reads them, several at once."""
    cur = await conn.execute(
        "select c.*, array(select code from intake.vulnerability_flags where case_id = c.id order by code)"
        " as vulnerabilities, array(select m.id from intake.cases m where m.merged_into = c.id order by m.id)"
        " as merged_from from intake.cases c where c.id = any(%s)", (case_ids,))
    return {r["id"]: r for r in await cur.fetchall()}


async def redirect(conn: Connection, case_id: uuid.UUID) -> uuid.UUID:
    """The case a case id answers: itself, or the survivor it was merged into (followed to the end)."""
    cur = await conn.execute(
        "with recursive chain (id, merged_into, depth) as ("
        " select id, merged_into, 0 from intake.cases where id = %s"
        " union all select c.id, c.merged_into, chain.depth + 1 from intake.cases c"
        " join chain on c.id = chain.merged_into where chain.depth < 20)"
        " select id from chain order by depth desc limit 1", (case_id,))
    row = await cur.fetchone()
    return row["id"] if row else case_id


async def record_possible_duplicates(conn: Connection, case_id: uuid.UUID, owner: str,
                                     found: list[tuple[uuid.UUID, str, float, list[str]]]) -> None:
    """One statement whatever is found (none, one or several), so a registration takes the same path."""
    await conn.execute(
        "insert into intake.possible_duplicates (id, case_id, other_case_id, case_owner_org_id, other_owner_org_id,"
        " score, reasons) select gen_random_uuid(), %s, o, %s, org, s, string_to_array(r, ',')"
        " from unnest(%s::uuid[], %s::text[], %s::numeric[], %s::text[]) as f(o, org, s, r)"
        " on conflict (case_id, other_case_id) do nothing",
        (case_id, owner, [f[0] for f in found], [f[1] for f in found], [f[2] for f in found],
         [",".join(f[3]) for f in found]))


async def possible_duplicates(conn: Connection, status: str | None, first: int, after: str | None
                              ) -> dict[str, Any]:
    query, params = pagination.keyset_query(
        "select * from intake.possible_duplicates where (%s::text is null or status = %s)", [status, status],
        first, after)
    cur = await conn.execute(query, params)
    return pagination.page(list(await cur.fetchall()), first)


async def decide_possible_duplicate(conn: Connection, duplicate_id: uuid.UUID, status: str, actor: str
                                    ) -> dict[str, Any] | None:
    cur = await conn.execute(
        "update intake.possible_duplicates set status = %s, decided_by = %s, decided_at = now() where id = %s"
        " returning *", (status, actor, duplicate_id))
    return await cur.fetchone()


async def lock_cases(conn: Connection, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The cases, locked until commit in id order (two merges of one case are made one after the other)."""
    cur = await conn.execute("select id, owner_org_id, merged_into from intake.cases where id = any(%s)"
                             " order by id for update", (case_ids,))
    return {r["id"]: r for r in await cur.fetchall()}


async def insert_merge(conn: Connection, merge_id: uuid.UUID, survivor_id: uuid.UUID, merged_id: uuid.UUID,
                       reason: str, actor: str, org_id: str) -> dict[str, Any]:
    cur = await conn.execute(
        "insert into intake.case_merges (id, survivor_id, merged_id, reason, merged_by, merged_by_org_id)"
        " values (%s, %s, %s, %s, %s, %s) returning *", (merge_id, survivor_id, merged_id, reason, actor, org_id))
    await conn.execute("update intake.cases set merged_into = %s where id = %s", (survivor_id, merged_id))
    # A possible duplicate of these two for the steward is settled by the merge.
    await conn.execute("update intake.possible_duplicates set status = 'RESOLVED', decided_by = %s, decided_at = now()"
                       " where status = 'OPEN' and ((case_id, other_case_id) = (%s, %s)"
                       " or (case_id, other_case_id) = (%s, %s))",
                       (actor, survivor_id, merged_id, merged_id, survivor_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def lock_merge(conn: Connection, merge_id: uuid.UUID) -> dict[str, Any] | None:
    """The merge, locked until commit (one query whether or not it exists)."""
    cur = await conn.execute("select * from intake.case_merges where id = %s for update", (merge_id,))
    return await cur.fetchone()


async def undo_merge(conn: Connection, merge: dict[str, Any], actor: str, org_id: str) -> dict[str, Any]:
    await conn.execute("update intake.cases set merged_into = null where id = %s and merged_into = %s",
                       (merge["merged_id"], merge["survivor_id"]))
    cur = await conn.execute("update intake.case_merges set undone_at = now(), undone_by = %s, undone_by_org_id = %s"
                             " where id = %s returning *", (actor, org_id, merge["id"]))
    row = await cur.fetchone()
    assert row is not None
    return row

