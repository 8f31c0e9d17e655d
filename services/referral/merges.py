"""People already known in the referral service (decision records 0022 and 0025): intake's merges projected
from its events (ids only). A case's referrals include those of the registrations merged into it, and a
correction of the survivor does not refer the person again for a need they already cover."""

from __future__ import annotations

import uuid

from contracts.events import CasesMergedV1, MergeUndoneV1
from kernel.db import Connection
from kernel.events import CloudEvent

MAX_DEPTH = 20  # merges of merges followed at most this deep (intake's redirect follows as many)


async def on_cases_merged(conn: Connection, event: CloudEvent) -> None:
    merge = CasesMergedV1.model_validate(event.data)
    await conn.execute(
        "insert into referral.case_merges (merge_id, survivor_case_id, merged_case_id) values (%s, %s, %s)"
        " on conflict (merge_id) do nothing", (merge.merge_id, merge.survivor_case_id, merge.merged_case_id))


async def on_merge_undone(conn: Connection, event: CloudEvent) -> None:
    merge = MergeUndoneV1.model_validate(event.data)
    await conn.execute(
        "insert into referral.case_merges (merge_id, survivor_case_id, merged_case_id, undone) values (%s, %s, %s, true)"
        " on conflict (merge_id) do update set undone = true, updated_at = now()",
        (merge.merge_id, merge.survivor_case_id, merge.merged_case_id))


async def one_person(conn: Connection, case_id: uuid.UUID) -> list[uuid.UUID]:
    """The case and every case merged into it (merges in force, merges of merges included), the case first."""
    cur = await conn.execute(
        "with recursive merged (id, depth) as (select %s::uuid, 0 union"
        " select m.merged_case_id, merged.depth + 1 from referral.case_merges m"
        " join merged on m.survivor_case_id = merged.id where not m.undone and merged.depth < %s)"
        " select id from merged order by depth, id", (case_id, MAX_DEPTH))
    return [row["id"] for row in await cur.fetchall()]
