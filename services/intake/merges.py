"""Merging two cases of one person, undoing it, and the steward's possible duplicates (decision record 0022).

Never automatic. A merge is asked for by the organisation that owns the case to be merged and may
read the survivor, or by the platform steward (``identity:reconcile``). Nothing is deleted: the
merged case points at its survivor, its id answers the survivor's case (under the survivor's access
rules), and an undo restores both. Announced with ids only.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASES_MERGED, MERGE_UNDONE
from contracts.commands import DecidePossibleDuplicate, MergeCases, PossibleDuplicatesRequest, UndoMerge
from contracts.events import CasesMergedV1, MergeUndoneV1
from contracts.replies import CaseMergeView, Page, PossibleDuplicateView
from kernel.audit import AuditPurpose
from kernel.db import Connection
from kernel.errors import BadInput, Conflict, NotFound, parse_id
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.intake import match_store, matches, store

RECONCILE = "identity:reconcile"
MERGE_CATEGORIES = ["identity"]


def merge_view(row: dict[str, Any]) -> CaseMergeView:
    return CaseMergeView(id=str(row["id"]), survivor_case_id=str(row["survivor_id"]),
                         merged_case_id=str(row["merged_id"]), reason=row["reason"],
                         merged_by_org_id=row["merged_by_org_id"], merged_at=row["merged_at"],
                         undone_at=row["undone_at"], undone_by_org_id=row["undone_by_org_id"])


def duplicate_view(row: dict[str, Any]) -> PossibleDuplicateView:
    return PossibleDuplicateView(
        id=str(row["id"]), case_id=str(row["case_id"]), other_case_id=str(row["other_case_id"]),
        case_owner_org_id=row["case_owner_org_id"], other_owner_org_id=row["other_owner_org_id"],
        score=float(row["score"]), reasons=list(row["reasons"]), status=row["status"], created_at=row["created_at"],
        decided_at=row["decided_at"])


async def _may_merge(conn: Connection, principal: Principal, cases: dict[uuid.UUID, dict[str, Any]],
                     survivor_id: uuid.UUID, merged_id: uuid.UUID) -> bool:
    """The steward; or the merged case's owner (with cases:write) that may read the survivor.

    The survivor's access is decided whoever asks (the same statements for every caller)."""
    survivor, merged = cases.get(survivor_id), cases.get(merged_id)
    allowed, _ = await matches.accesses(conn, principal, [(survivor_id, survivor["owner_org_id"] if survivor else "")])
    if survivor is None or merged is None:
        return False
    if RECONCILE in principal.scopes:
        return True
    return ("cases:write" in principal.scopes and merged["owner_org_id"] == principal.org_id
            and allowed[survivor_id].allowed)


def _merge_not_found(field: str) -> NotFound:
    # The same answer for a case that does not exist and one the caller may not merge.
    return NotFound("No such case, or your organisation may not merge it (it must own the merged case and "
                    "read the survivor).", field=field)


async def merge_cases(pool: AsyncConnectionPool, principal: Principal, request: MergeCases) -> CaseMergeView:
    survivor_id = parse_id(request.survivor_case_id, "survivorId")
    merged_id = parse_id(request.merged_case_id, "mergedId")
    if survivor_id == merged_id:
        raise BadInput("A case cannot be merged into itself.", field="mergedId")
    async with pool.connection() as conn, conn.transaction():  # a refusal's audit record commits too
        cases = await match_store.lock_cases(conn, [survivor_id, merged_id])
        permitted = await _may_merge(conn, principal, cases, survivor_id, merged_id)
        if not permitted:
            await store.TRAIL.denied(conn, principal, "case.merge", [survivor_id, merged_id], MERGE_CATEGORIES)
        else:
            if cases[merged_id]["merged_into"] is not None:
                raise Conflict("This case is already merged into another; undo that merge first.", field="mergedId")
            if cases[survivor_id]["merged_into"] is not None:
                raise Conflict("The survivor was itself merged into another case; merge into that one.",
                               field="survivorId")
            row = await match_store.insert_merge(conn, uuid.uuid4(), survivor_id, merged_id, request.reason,
                                                 principal.subject, principal.org_id)
            await _announce(conn, CASES_MERGED, CasesMergedV1, row, cases)
            await store.TRAIL.allowed(conn, principal, "case.merge", [survivor_id, merged_id], MERGE_CATEGORIES,
                                      AuditPurpose.CASE_MANAGEMENT)
    if not permitted:
        raise _merge_not_found("mergedId")
    return merge_view(row)


async def undo_merge(pool: AsyncConnectionPool, principal: Principal, request: UndoMerge) -> CaseMergeView:
    merge_id = parse_id(request.merge_id, "mergeId")
    async with pool.connection() as conn, conn.transaction():
        merge = await match_store.lock_merge(conn, merge_id)
        ids = [merge["survivor_id"], merge["merged_id"]] if merge else []
        cases = await match_store.lock_cases(conn, ids)
        permitted = merge is not None and await _may_merge(conn, principal, cases, ids[0], ids[1])
        if not permitted:
            await store.TRAIL.denied(conn, principal, "case.unmerge", ids, MERGE_CATEGORIES)
        else:
            assert merge is not None
            if merge["undone_at"] is not None:
                raise Conflict("This merge was already undone.", field="mergeId")
            row = await match_store.undo_merge(conn, merge, principal.subject, principal.org_id)
            await _announce(conn, MERGE_UNDONE, MergeUndoneV1, row, cases)
            await store.TRAIL.allowed(conn, principal, "case.unmerge", ids, MERGE_CATEGORIES,
                                      AuditPurpose.CASE_MANAGEMENT)
    if not permitted:
        raise NotFound("No such merge, or your organisation may not undo it.", field="mergeId")
    return merge_view(row)


async def _announce(conn: Connection, channel: Any, model: type[CasesMergedV1], row: dict[str, Any],
                    cases: dict[uuid.UUID, dict[str, Any]]) -> None:
    await add_event(conn, store.SCHEMA, channel, model(
        merge_id=str(row["id"]), survivor_case_id=str(row["survivor_id"]), merged_case_id=str(row["merged_id"]),
        survivor_owner_org_id=cases[row["survivor_id"]]["owner_org_id"],
        merged_owner_org_id=cases[row["merged_id"]]["owner_org_id"]), subject=str(row["merged_id"]))


async def possible_duplicates(pool: AsyncConnectionPool, principal: Principal, request: PossibleDuplicatesRequest
                              ) -> Page[PossibleDuplicateView]:
    """The steward's work list: ids, organisations, score and reason codes (no identity), newest first."""
    async with pool.connection() as conn, conn.transaction():
        page = await match_store.possible_duplicates(conn, request.status.value if request.status else None,
                                                     request.first, request.after)
        ids = {i for r in page["nodes"] for i in (r["case_id"], r["other_case_id"])}
        await store.TRAIL.allowed(conn, principal, "duplicates.list", ids, ["identity_match"],
                                  AuditPurpose.CASE_MANAGEMENT)
    return Page[PossibleDuplicateView](nodes=[duplicate_view(r) for r in page["nodes"]], page_info=page["page_info"])


async def decide_possible_duplicate(pool: AsyncConnectionPool, principal: Principal, request: DecidePossibleDuplicate
                                    ) -> PossibleDuplicateView:
    duplicate_id = parse_id(request.id, "id")
    async with pool.connection() as conn, conn.transaction():
        row = await match_store.decide_possible_duplicate(conn, duplicate_id, request.status.value, principal.subject)
        if row is not None:
            await store.TRAIL.allowed(conn, principal, "duplicates.decide", [row["case_id"], row["other_case_id"]],
                                      ["identity_match"], AuditPurpose.CASE_MANAGEMENT)
    if row is None:
        raise NotFound("No such possible duplicate.", field="id")
    return duplicate_view(row)
