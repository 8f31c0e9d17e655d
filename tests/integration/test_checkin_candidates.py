"""A check-in answered with its match candidates (decision record 0022): one lookup serves the steward's
record and the answer, which must be exactly what a separate ``match_candidates`` for the new case
gives — readable cases only, on the record — and a replay of the key answers the same."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.errors import SeginError
from services.intake.app import APP as INTAKE
from tests.integration.services import audit_rows, call, principal, register
from tests.integration.test_manifest_reception import CONSENT, as_dgme, new_group
from tests.integration.test_match_candidates import STEWARD, family, known, returning


def walk_in(group: dict[str, Any], surname: str, key: str, match_first: int | None) -> dict[str, Any]:
    """Someone not on the list, checked in: the person ``returning(surname)`` describes."""
    person = {k: v for k, v in returning(surname).items() if k != "arrival_date"}
    payload: dict[str, Any] = {"idempotency_key": key, "group_id": group["id"],
                               "input": {"consent": CONSENT, **person}}
    if match_first is not None:
        payload["match_first"] = match_first
    return payload


def summary(candidates: list[dict[str, Any]]) -> list[tuple[str, float, list[str]]]:
    return [(c["case"]["id"], c["score"], [r["code"] for r in c["reasons"]]) for c in candidates]


async def test_a_check_in_answers_the_candidates_a_lookup_of_its_case_would(intake_pool: AsyncConnectionPool) -> None:
    surname = family()
    readable = await register(intake_pool, "dgme", **known(surname))
    hidden = await register(intake_pool, "ame", **known(surname), arrival_point="GAO")  # dgme may not read it
    group = await new_group(intake_pool)
    key = str(uuid.uuid4())

    done = await call(INTAKE, "check_in", intake_pool, as_dgme(), walk_in(group, surname, key, 5))
    case_id = done["case"]["id"]
    given = done["match_candidates"]["candidates"]
    asked = await call(INTAKE, "match_candidates", intake_pool, principal("dgme", "cases:read"),
                       {"case_id": case_id, "first": 5})
    assert summary(given) == summary(asked["candidates"]) and readable["id"] in [c["case"]["id"] for c in given]
    assert [c["case"] for c in given] == [c["case"] for c in asked["candidates"]]
    assert done["match_candidates"]["threshold"] == asked["threshold"]

    # The steward is told of the case dgme may not read, from the same lookup; the registrant is not.
    page = await call(INTAKE, "possible_duplicates", intake_pool, STEWARD, {"status": "OPEN", "first": 100})
    assert [r["other_case_id"] for r in page["nodes"] if r["case_id"] == case_id] == [hidden["id"]]
    assert hidden["id"] not in str(done)
    # On the record: the case made, and the candidates shown with it.
    rows = [r for r in await audit_rows(intake_pool, "intake") if case_id in [str(c) for c in r["case_ids"]]]
    matched = [r for r in rows if r["operation"] == "case.match" and r["actor"] == as_dgme().subject]
    assert any(readable["id"] in [str(c) for c in r["case_ids"]] for r in matched)
    assert not any(hidden["id"] in [str(c) for c in r["case_ids"]] for r in rows if r["org_id"] == "dgme"), rows

    # The same key again: the same case, the same candidates (never the case itself).
    again = await call(INTAKE, "check_in", intake_pool, as_dgme(), walk_in(group, surname, key, 5))
    assert again["case"]["id"] == case_id and summary(again["match_candidates"]["candidates"]) == summary(given)
    # Without asking, no candidates; the key's request is the same whether they were asked or not.
    plain = await call(INTAKE, "check_in", intake_pool, as_dgme(), walk_in(group, surname, key, None))
    assert plain["case"]["id"] == case_id and plain["match_candidates"] is None


async def test_a_token_that_may_not_read_cases_gets_no_candidates_from_a_check_in(
        intake_pool: AsyncConnectionPool) -> None:
    """A kiosk or connector holding cases:write only may register, not read other people's cases: the
    candidates a check-in answers are reads, refused as match_candidates refuses them (review finding)."""
    surname = family()
    earlier = await register(intake_pool, "dgme", **known(surname))
    group = await new_group(intake_pool)
    write_only = principal("dgme", "cases:write")
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "match_candidates", intake_pool, write_only, {"case_id": earlier["id"], "first": 5})
    assert refused.value.code == "INSUFFICIENT_SCOPE"
    done = await call(INTAKE, "check_in", intake_pool, write_only, walk_in(group, surname, str(uuid.uuid4()), 5))
    assert done["match_candidates"] is None and earlier["id"] not in str(done)
