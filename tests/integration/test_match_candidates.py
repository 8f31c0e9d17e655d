"""People already known, at the service level: candidates among readable cases only, the steward's
record of the others, and what an organisation without access can (not) tell (decision record 0022)."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.reference import ReferralStatus
from kernel.errors import SeginError
from services.intake import handlers, matches
from services.intake.app import APP as INTAKE
from tests.integration.services import CountingPool, audit_rows, call, deliver, principal, register
from tests.integration.test_intake_service import referral_to
from contracts.channels import REFERRAL_CREATED

STEWARD = principal("segin-steward", "identity:reconcile")


def family() -> str:
    """A family name no other test uses (the suite's intake database is shared), spelt with an accent."""
    letters = "".join(random.choices(string.ascii_lowercase, k=8))
    return f"{letters[:3].capitalize()}ï{letters[3:]}"


def phone(surname: str) -> str:
    """A Malian mobile number of this test's own (derived from its family name)."""
    return "+22376" + "".join(str(ord(c) % 10) for c in surname[-6:])


def known(surname: str, **overrides: Any) -> dict[str, Any]:
    return {"given_name": "Mahamadou", "family_name": surname, "sex": "MALE", "date_of_birth": "1994-05-12",
            "estimated_age": None, "phone_numbers": [phone(surname)], "place_of_origin": "Kita",
            "destination_region": "02", "vulnerabilities": [], **overrides}


def returning(surname: str, **overrides: Any) -> dict[str, Any]:
    """The same person written another way: accents dropped, another transliteration, names swapped."""
    return {"given_name": surname.replace("ï", "i"), "family_name": "Mohamed", "sex": "MALE",
            "date_of_birth": None, "estimated_age": 32, "arrival_date": "2026-10-02",
            "phone_numbers": [phone(surname)[4:]], "destination_region": "02", **overrides}


def ids(answer: dict[str, Any]) -> list[str]:
    """The case ids offered. Tests share intake's database: other tests' people (every one a Mahamadou born in
    1994) may be offered too, so a test asserts about its own cases only."""
    return [c["case"]["id"] for c in answer["candidates"]]


async def candidates(pool: AsyncConnectionPool, org: str, **request: Any) -> dict[str, Any]:
    return await call(INTAKE, "match_candidates", pool, principal(org, "cases:read"), request)


async def test_a_known_person_written_another_way_is_offered_with_reasons(intake_pool: AsyncConnectionPool) -> None:
    surname = family()
    earlier = await register(intake_pool, "dgme", **known(surname))
    answer = await candidates(intake_pool, "dgme", person=returning(surname))
    [candidate] = [c for c in answer["candidates"] if c["case"]["id"] == earlier["id"]]
    assert candidate["score"] >= answer["threshold"]
    codes = {r["code"] for r in candidate["reasons"]}
    assert {"NAME_VARIANT", "NAME_ORDER_SWAPPED", "AGE_CLOSE", "SAME_PHONE"} <= codes
    assert {"code": "NAME_VARIANT", "text": "Mohamed ~ Mahamadou"} in candidate["reasons"]
    entries = [r for r in await audit_rows(intake_pool, "intake") if r["operation"] == "case.match"
               and uuid.UUID(earlier["id"]) in r["case_ids"]]
    assert entries and entries[-1]["outcome"] == "allowed" and entries[-1]["org_id"] == "dgme"


async def test_a_registered_case_is_offered_its_earlier_case_but_not_itself(intake_pool: AsyncConnectionPool) -> None:
    surname = family()
    earlier = await register(intake_pool, "dgme", **known(surname))
    later = await register(intake_pool, "dgme", **known(surname.replace("ï", "i"), given_name="Mohammed",
                                                        date_of_birth=None, estimated_age=32))
    answer = await candidates(intake_pool, "dgme", case_id=later["id"])
    offered = ids(answer)
    assert earlier["id"] in offered and later["id"] not in offered


async def test_candidates_are_only_among_cases_the_organisation_may_read(intake_pool: AsyncConnectionPool) -> None:
    surname = family()
    earlier = await register(intake_pool, "dgme", **known(surname))
    assert earlier["id"] not in ids(await candidates(intake_pool, "ame", person=returning(surname)))
    # An open referral covered by consent (the default arrival's consent names unicef) opens it.
    await deliver(intake_pool, handlers.on_referral_created, REFERRAL_CREATED,
                  referral_to(earlier, "unicef", ReferralStatus.PENDING))
    [shared] = [c for c in (await candidates(intake_pool, "unicef", person=returning(surname)))["candidates"]
                if c["case"]["id"] == earlier["id"]]
    assert shared["case"]["access"]["purpose"] == "REFERRAL"


async def test_an_organisation_without_access_learns_nothing_and_the_steward_is_told(
        intake_pool: AsyncConnectionPool) -> None:
    surname = family()
    counting = CountingPool(intake_pool)
    before = await call(INTAKE, "match_candidates", counting, principal("ame", "cases:read"),
                        {"person": returning(surname)})
    statements_without = list(counting.statements)
    earlier = await register(intake_pool, "dgme", **known(surname))
    counting.statements.clear()
    after = await call(INTAKE, "match_candidates", counting, principal("ame", "cases:read"),
                       {"person": returning(surname)})
    assert before == after and earlier["id"] not in ids(after)  # the same answer whether the case exists or not
    assert counting.statements == statements_without, "the same statements whether the earlier case exists or not"

    later = await register(intake_pool, "ame", **returning(surname), country_returned_from="LY", arrival_point="GAO",
                           vulnerabilities=[], consent={"given": True})
    page = await call(INTAKE, "possible_duplicates", intake_pool, STEWARD, {"status": "OPEN", "first": 100})
    [row] = [r for r in page["nodes"] if r["case_id"] == later["id"]]
    assert (row["other_case_id"], row["case_owner_org_id"], row["other_owner_org_id"]) == (earlier["id"], "ame", "dgme")
    assert "NAME_VARIANT" in row["reasons"] and "given_name" not in row and row["score"] >= 0.7
    assert not any(surname.lower() in str(v).lower() for v in row.values()), "no identity for the steward"
    decided = await call(INTAKE, "decide_possible_duplicate", intake_pool, STEWARD,
                         {"id": row["id"], "status": "DISMISSED"})
    assert decided["status"] == "DISMISSED" and decided["decided_at"] is not None


async def test_a_case_the_caller_may_not_read_is_no_such_case(intake_pool: AsyncConnectionPool) -> None:
    earlier = await register(intake_pool, "dgme", **known(family()))
    for case_id in (earlier["id"], str(uuid.uuid4())):
        with pytest.raises(SeginError) as refused:
            await candidates(intake_pool, "ame", case_id=case_id)
        assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "caseId")


async def test_a_lookup_needs_one_subject_and_an_age(intake_pool: AsyncConnectionPool) -> None:
    for request, field in (({}, None), ({"person": {"given_name": "Awa", "family_name": "Traoré"}}, "person")):
        with pytest.raises(SeginError) as refused:
            await candidates(intake_pool, "dgme", **request)
        assert refused.value.code == "BAD_USER_INPUT"
        if field:
            assert str(refused.value.field).startswith(field)


async def test_a_case_whose_identity_changed_is_found_under_its_new_name_once_reindexed(
        intake_pool: AsyncConnectionPool) -> None:
    old, new = family(), family()
    case = await register(intake_pool, "dgme", **known(old, phone_numbers=[]))
    async with intake_pool.connection() as conn, conn.transaction():
        await conn.execute("update intake.cases set family_name = %s where id = %s", (new, uuid.UUID(case["id"])))
        await matches.reindex(conn, uuid.UUID(case["id"]))
    assert case["id"] in ids(await candidates(intake_pool, "dgme", person={**returning(new), "phone_numbers": []}))
    assert case["id"] not in ids(await candidates(intake_pool, "dgme", person={**returning(old), "phone_numbers": []}))


async def test_registering_runs_the_same_statements_whether_another_organisation_knows_the_person(
        intake_pool: AsyncConnectionPool) -> None:
    async def statements_of_registering(surname: str) -> list[str]:
        counting = CountingPool(intake_pool)
        await call(INTAKE, "register_arrival", counting, principal("ame", "cases:write"),
                   {"idempotency_key": str(uuid.uuid4()),
                    "arrival": {**returning(surname), "country_returned_from": "LY", "arrival_point": "GAO",
                                "arrival_date": "2026-10-02", "consent": {"given": True}}})
        return counting.statements

    unknown, known_elsewhere = family(), family()
    await register(intake_pool, "dgme", **known(known_elsewhere))
    assert await statements_of_registering(unknown) == await statements_of_registering(known_elsewhere)


def looked_up(surname: str) -> dict[str, Any]:
    """The identity a check-in screen asks about (no phone: found by name and birth only)."""
    person = known(surname, phone_numbers=[])
    return {k: person[k] for k in ("given_name", "family_name", "sex", "date_of_birth", "place_of_origin")}


async def test_a_corrected_name_is_found_under_its_new_spelling(intake_pool: AsyncConnectionPool) -> None:
    """Offline capture's correction (updateCase) re-indexes the case in its own transaction."""
    surname, corrected = family(), family()
    case = await register(intake_pool, "dgme", **known(surname, phone_numbers=[]))
    assert case["id"] not in ids(await candidates(intake_pool, "dgme", person=looked_up(corrected)))
    await call(INTAKE, "update_case", intake_pool, principal("dgme", "cases:write"),
               {"case_id": case["id"], "version": case["version"], "changes": {"family_name": corrected}})
    assert case["id"] in ids(await candidates(intake_pool, "dgme", person=looked_up(corrected)))
    assert case["id"] not in ids(await candidates(intake_pool, "dgme", person=looked_up(surname))), \
        "no longer found under the old spelling"
