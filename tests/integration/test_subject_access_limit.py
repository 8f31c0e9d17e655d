"""A steward credential is not a bulk export: data-subject exports are limited per organisation per day."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.errors import SeginError
from services.intake import handlers
from services.intake.app import APP as INTAKE
from tests.integration.services import call, principal, register


async def test_exports_beyond_the_daily_limit_are_refused(intake_pool: AsyncConnectionPool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "DSAR_PER_DAY", 2)
    steward = principal("steward-limit-test", "audit:read")
    cases = [await register(intake_pool, "dgme") for _ in range(3)]
    for case in cases[:2]:
        export = await call(INTAKE, "subject_access", intake_pool, steward, {"case_id": case["id"]})
        assert export["id"] == case["id"] and export["given_name"] == "Mariam"
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "subject_access", intake_pool, steward, {"case_id": cases[2]["id"]})
    assert refused.value.code == "RATE_LIMITED" and "SEGIN_DSAR_PER_DAY" in refused.value.message
    # Another organisation's exports are counted apart.
    other = principal("other-steward", "audit:read")
    assert (await call(INTAKE, "subject_access", intake_pool, other,
                       {"case_id": cases[2]["id"]}))["id"] == cases[2]["id"]
