"""What a refusal must not reveal, checked on intake's handlers called directly against the
suite's real PostgreSQL: a hidden case and an absent one are refused with the same statements
(so not told apart by timing), and a statistics answer does not change when its caller puts a
decoy into an empty cell."""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.errors import Conflict, NotFound
from kernel.tokens import Principal
from services.intake.app import APP as INTAKE
from tests.integration.services import CountingPool, arrival, call, principal, register


async def test_a_hidden_case_is_refused_with_the_same_statements_as_an_absent_one(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    outsider = principal("ame", "cases:read")

    async def refused(case_id: str) -> list[str]:
        counting = CountingPool(intake_pool)
        with pytest.raises(NotFound) as refusal:
            await call(INTAKE, "get_case", counting, outsider, {"case_id": case_id})
        assert refusal.value.message == "No such case, or it is not shared with your organisation."
        return counting.statements

    hidden, absent = await refused(case["id"]), await refused(str(uuid.uuid4()))
    assert hidden == absent and len(hidden) >= 3


async def test_a_decoy_in_an_empty_cell_changes_nothing_its_owner_is_told(
        intake_pool: AsyncConnectionPool) -> None:
    """Whether a suppressed cell already held someone must not show (no count of suppressed cells)."""
    iom = principal("iom", "statistics:read cases:write")
    request = {"group_by": ["MONTH", "REGION", "VULNERABILITY"]}
    await register(intake_pool, "dgme", arrival_date="2024-07-09", destination_region="17")  # a real person
    before = await call(INTAKE, "statistics", intake_pool, iom, request)
    await register(intake_pool, "iom", arrival_date="2024-07-09", destination_region="16")   # a decoy, empty cell
    assert await call(INTAKE, "statistics", intake_pool, iom, request) == before
    await register(intake_pool, "iom", arrival_date="2024-07-09", destination_region="17")   # a decoy beside her
    assert await call(INTAKE, "statistics", intake_pool, iom, request) == before


async def test_another_persons_idempotency_key_tells_nothing_about_the_case_it_made(
        intake_pool: AsyncConnectionPool) -> None:
    """A case worker of the same organisation, without the health scope, replays the key a colleague
    used, guessing the hidden flags: every guess answers alike, none with the colleague's case."""
    key = f"ly-charter-2026-11-20-{uuid.uuid4().hex[:4]}"
    registered = await call(INTAKE, "register_arrival", intake_pool, principal("dgme", "cases:write"), {
        "idempotency_key": key, "arrival": arrival(vulnerabilities=["PREGNANT"])})
    colleague = Principal(subject="person:narrow", org_id="dgme", client_id="segin-web", token="", jti="x",
                          scopes=frozenset({"cases:write", "cases:read"}), org_type="STATE")
    answers = []
    for guess in (["MEDICAL_NEEDS"], ["PREGNANT"], ["DISABILITY"]):  # the right one in the middle
        try:
            case = await call(INTAKE, "register_arrival", intake_pool, colleague, {
                "idempotency_key": key, "arrival": arrival(vulnerabilities=guess)})
            answers.append("registered anew" if case["id"] != registered["id"] else "the colleague's case")
        except Conflict as exc:
            answers.append(exc.code)
    # The key is the colleague's own from the first use on: the right guess answers like a wrong one.
    assert answers == ["registered anew", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_REUSED"]
