"""Integration fixtures: each service's schema migrated into the suite's PostgreSQL, for service-level tests.

Intake's tests share the suite's database (cases are independent of one another). Referral,
notifications and follow-up get a fresh database each: routing picks providers from the whole directory and
notices are listed per organisation, so another test's rows would change what a test sees.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from devstack.localstack import PostgresServer
from kernel.db import migrate, open_pool
from kernel.runtime import ServiceApp
from services.followup.app import APP as FOLLOWUP
from services.intake.app import APP
from services.notifications.app import APP as NOTIFICATIONS
from services.referral.app import APP as REFERRAL


async def _pool(url: str, app: ServiceApp) -> AsyncConnectionPool:
    await migrate(url, app.schema, app.migrations)
    return await open_pool(url, min_size=1, max_size=2)


async def _fresh_database(postgres: PostgresServer) -> str:
    name = f"svc_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(postgres.url, dbname=name)


@pytest.fixture
async def intake_pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    pool = await _pool(postgres.url, APP)
    yield pool
    await pool.close()


@pytest.fixture
async def referral_pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    pool = await _pool(await _fresh_database(postgres), REFERRAL)
    yield pool
    await pool.close()


@pytest.fixture
async def notifications_pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    pool = await _pool(await _fresh_database(postgres), NOTIFICATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def followup_pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    pool = await _pool(await _fresh_database(postgres), FOLLOWUP)
    yield pool
    await pool.close()
