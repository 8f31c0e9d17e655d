"""Merging two cases of one person at the service level: explicit, audited, both histories kept, the merged
id redirected, undoable once (decision record 0022)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASES_MERGED, MERGE_UNDONE
from kernel.errors import SeginError
from services.intake.app import APP as INTAKE
from tests.integration.services import audit_rows, call, outbox, principal, register
from tests.integration.test_match_candidates import STEWARD, candidates, family, known, returning

OWNER = principal("dgme", "cases:read cases:write")


async def merge(pool: AsyncConnectionPool, caller: Any, survivor: str, merged: str) -> dict[str, Any]:
    return await call(INTAKE, "merge_cases", pool, caller,
                      {"survivor_case_id": survivor, "merged_case_id": merged, "reason": "Même personne, même téléphone"})


async def refused(coroutine: Any) -> SeginError:
    with pytest.raises(SeginError) as error:
        await coroutine
    return error.value


async def two_of_one_person(pool: AsyncConnectionPool, org: str = "dgme", later_org: str = "dgme"
                            ) -> tuple[dict[str, Any], dict[str, Any], str]:
    surname = family()
    earlier = await register(pool, org, **known(surname))
    later = await register(pool, later_org, **returning(surname), country_returned_from="LY", arrival_point="GAO",
                           vulnerabilities=[], consent={"given": True})
    return earlier, later, surname


async def test_a_merge_redirects_the_merged_id_keeps_both_cases_and_is_announced_and_audited(
        intake_pool: AsyncConnectionPool) -> None:
    earlier, later, surname = await two_of_one_person(intake_pool)
    done = await merge(intake_pool, OWNER, earlier["id"], later["id"])
    assert (done["survivor_case_id"], done["merged_case_id"], done["undone_at"]) == (earlier["id"], later["id"], None)

    redirected = await call(INTAKE, "get_case", intake_pool, OWNER, {"case_id": later["id"]})
    assert redirected["id"] == earlier["id"] and redirected["redirected_from"] == later["id"]
    survivor = await call(INTAKE, "get_case", intake_pool, OWNER, {"case_id": earlier["id"]})
    assert survivor["merged_from"] == [later["id"]] and survivor["redirected_from"] is None
    # The merged case is no longer offered: the survivor stands for it.
    offered = await candidates(intake_pool, "dgme", person=returning(surname))
    offered_ids = [c["case"]["id"] for c in offered["candidates"]]
    assert earlier["id"] in offered_ids and later["id"] not in offered_ids

    [event] = [e for e in await outbox(intake_pool, "intake", later["id"]) if e["type"] == CASES_MERGED.event_type]
    assert event["data"] == {"merge_id": done["id"], "survivor_case_id": earlier["id"], "merged_case_id": later["id"],
                             "survivor_owner_org_id": "dgme", "merged_owner_org_id": "dgme"}
    assert surname.lower() not in str(event).lower() and "Même" not in str(event), "ids only in events"
    [entry] = [r for r in await audit_rows(intake_pool, "intake") if r["operation"] == "case.merge"
               and uuid.UUID(later["id"]) in r["case_ids"]]
    assert (entry["outcome"], entry["org_id"]) == ("allowed", "dgme")
    assert set(entry["case_ids"]) == {uuid.UUID(earlier["id"]), uuid.UUID(later["id"])}


async def test_undo_restores_both_cases_once(intake_pool: AsyncConnectionPool) -> None:
    earlier, later, _ = await two_of_one_person(intake_pool)
    done = await merge(intake_pool, OWNER, earlier["id"], later["id"])
    undone = await call(INTAKE, "undo_merge", intake_pool, OWNER, {"merge_id": done["id"]})
    assert undone["undone_at"] is not None and undone["undone_by_org_id"] == "dgme"
    back = await call(INTAKE, "get_case", intake_pool, OWNER, {"case_id": later["id"]})
    assert back["id"] == later["id"] and back["redirected_from"] is None
    assert (await call(INTAKE, "get_case", intake_pool, OWNER, {"case_id": earlier["id"]}))["merged_from"] == []
    again = await refused(call(INTAKE, "undo_merge", intake_pool, OWNER, {"merge_id": done["id"]}))
    assert (again.code, again.field) == ("CONFLICT", "mergeId")
    assert [e["type"] for e in await outbox(intake_pool, "intake", later["id"])][-1] == MERGE_UNDONE.event_type
    # Merged again after the undo: a new merge.
    assert (await merge(intake_pool, OWNER, earlier["id"], later["id"]))["id"] != done["id"]


async def test_merging_an_already_merged_case_is_a_conflict_and_into_itself_bad_input(
        intake_pool: AsyncConnectionPool) -> None:
    earlier, later, _ = await two_of_one_person(intake_pool)
    third = await register(intake_pool, "dgme", **known(family()))
    await merge(intake_pool, OWNER, earlier["id"], later["id"])
    twice = await refused(merge(intake_pool, OWNER, third["id"], later["id"]))
    assert (twice.code, twice.field) == ("CONFLICT", "mergedId")
    into_merged = await refused(merge(intake_pool, OWNER, later["id"], third["id"]))
    assert (into_merged.code, into_merged.field) == ("CONFLICT", "survivorId")
    itself = await refused(merge(intake_pool, OWNER, third["id"], third["id"]))
    assert itself.code == "BAD_USER_INPUT"


async def test_only_the_merged_cases_owner_reading_the_survivor_or_the_steward_may_merge(
        intake_pool: AsyncConnectionPool) -> None:
    earlier, later, _ = await two_of_one_person(intake_pool, "dgme", "ame")
    ame = principal("ame", "cases:read cases:write")
    # AME owns the later case but may not read DGME's: the same answer as for a case that does not exist.
    for survivor in (earlier["id"], str(uuid.uuid4())):
        error = await refused(merge(intake_pool, ame, survivor, later["id"]))
        assert (error.code, error.field) == ("NOT_FOUND", "mergedId")
    # DGME may read its own case but does not own AME's.
    error = await refused(merge(intake_pool, OWNER, earlier["id"], later["id"]))
    assert error.code == "NOT_FOUND"
    denied = [r for r in await audit_rows(intake_pool, "intake") if r["operation"] == "case.merge"
              and uuid.UUID(later["id"]) in r["case_ids"]]
    assert {r["outcome"] for r in denied} == {"denied"} and len(denied) == 3
    # The steward reconciles across organisations, without reading either case.
    done = await merge(intake_pool, STEWARD, earlier["id"], later["id"])
    assert done["merged_by_org_id"] == "segin-steward"
    # The steward's possible duplicate for these two is settled by the merge.
    page = await call(INTAKE, "possible_duplicates", intake_pool, STEWARD, {"first": 100, "status": "RESOLVED"})
    assert [r["other_case_id"] for r in page["nodes"] if r["case_id"] == later["id"]] == [earlier["id"]]
    # Redirected for AME: the survivor under the survivor's rules (AME may not read it).
    error = await refused(call(INTAKE, "get_case", intake_pool, principal("ame", "cases:read"),
                               {"case_id": later["id"]}))
    assert error.code == "NOT_FOUND"
    undone = await call(INTAKE, "undo_merge", intake_pool, STEWARD, {"merge_id": done["id"]})
    assert undone["undone_by_org_id"] == "segin-steward"
    assert (await call(INTAKE, "get_case", intake_pool, principal("ame", "cases:read"),
                       {"case_id": later["id"]}))["id"] == later["id"]


async def test_a_merged_case_cannot_be_corrected_the_survivor_can(intake_pool: AsyncConnectionPool) -> None:
    """An offline device corrects a case merged while it was away: corrected, referral and follow-up would
    route needs for an id that stands for nobody (review finding). A CONFLICT names the case; nothing moves."""
    earlier, later, _ = await two_of_one_person(intake_pool)
    await merge(intake_pool, OWNER, earlier["id"], later["id"])
    events = len(await outbox(intake_pool, "intake", later["id"]))
    error = await refused(call(INTAKE, "update_case", intake_pool, OWNER, {
        "case_id": later["id"], "version": 1, "changes": {"vulnerabilities": ["TRAFFICKING_VICTIM"]}}))
    assert (error.code, error.field) == ("CONFLICT", "caseId") and "merged" in error.message
    assert len(await outbox(intake_pool, "intake", later["id"])) == events, "nothing announced"
    fixed = await call(INTAKE, "update_case", intake_pool, OWNER, {
        "case_id": earlier["id"], "version": 1, "changes": {"place_of_origin": "Kati"}})
    assert fixed["version"] == 2
