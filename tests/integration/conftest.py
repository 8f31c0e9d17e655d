"""Integration fixtures: intake's schema migrated into the suite's PostgreSQL, for service-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.db import migrate, open_pool
from devstack.localstack import PostgresServer
from services.intake.app import APP


@pytest.fixture
async def intake_pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(postgres.url, APP.schema, APP.migrations)
    pool = await open_pool(postgres.url, min_size=1, max_size=2)
    yield pool
    await pool.close()
