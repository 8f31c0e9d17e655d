"""Service-level testing: a service's endpoints called directly against the suite's real PostgreSQL,
with a principal as the runtime would pass it (no gateway, no NATS): access rules in milliseconds.

``call`` goes through the same path as a NATS request (``kernel.rpc.bind``: scope, then request
model, then the handler, then the reply model) and returns the JSON the gateway would receive;
``outbox`` reads the events a command wrote in the service's outbox table.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from contracts.channels import EventChannel, event_producer, event_source
from kernel.audit import refusal_recorder
from kernel.db import Connection
from kernel.events import CloudEvent, new_event
from kernel.rpc import bind
from kernel.runtime import ServiceApp
from kernel.tokens import Principal
from services.intake.app import APP as INTAKE


class _CountingConnection:
    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn, self._statements = conn, statements

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._statements.append(query if isinstance(query, str) else query.as_string(self._conn))
        return await self._conn.execute(query, params, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class CountingPool:
    """The real pool, recording the text of every statement a handler runs."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool, self.statements = pool, []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_CountingConnection]:
        async with self.pool.connection() as conn:
            yield _CountingConnection(conn, self.statements)


def principal(org: str, scopes: str) -> Principal:
    """A verified caller, as the runtime hands it to a handler."""
    return Principal(subject=f"client:{org}", org_id=org, client_id=f"{org}-test", scopes=frozenset(scopes.split()),
                     jti=str(uuid.uuid4()), token="", org_type="NGO")


def arrival(**overrides: Any) -> dict[str, Any]:
    """A valid arrival for intake's register_arrival; tests override what they exercise."""
    return {"given_name": "Mariam", "family_name": "Diarra", "sex": "FEMALE", "estimated_age": 22,
            "country_returned_from": "DZ", "arrival_point": "GAO", "arrival_date": "2026-10-02",
            "destination_region": "07", "vulnerabilities": ["TRAFFICKING_VICTIM"],
            "consent": {"given": True, "recipient_org_ids": ["unicef"]}, **overrides}


async def call(app: ServiceApp, endpoint: str, pool: Any, caller: Principal, payload: dict[str, Any]) -> Any:
    """One request to ``app``'s endpoint as the runtime serves it (refusals recorded in its audit trail)."""
    real_pool = pool.pool if isinstance(pool, CountingPool) else pool
    route = bind(f"svc.{app.name}.{endpoint}", app.endpoints[endpoint], pool, refusal_recorder(app.schema, real_pool))
    return await route.handler(caller, payload)


async def register(pool: AsyncConnectionPool, org: str, **overrides: Any) -> dict[str, Any]:
    return await call(INTAKE, "register_arrival", pool, principal(org, "cases:write"),
                      {"idempotency_key": str(uuid.uuid4()), "arrival": arrival(**overrides)})


async def outbox(pool: AsyncConnectionPool, schema: str, about: str) -> list[dict[str, Any]]:
    """The CloudEvents ``schema``'s outbox holds about ``about`` (their ``subject``: a case or referral id)."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql.SQL("select envelope from {} where envelope->>'subject' = %s"
                                         " order by created_at, envelope->>'time'").format(
            sql.Identifier(schema, "outbox")), (about,))
        return [row["envelope"] for row in await cur.fetchall()]


async def audit_rows(pool: AsyncConnectionPool, schema: str) -> list[dict[str, Any]]:
    """``schema``'s audit entries, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql.SQL("select * from {} order by seq").format(sql.Identifier(schema, "audit_log")))
        return list(await cur.fetchall())


async def deliver(pool: AsyncConnectionPool, handler: Callable[[Connection, CloudEvent], Awaitable[None]],
                  channel: EventChannel, payload: BaseModel, subject: str | None = None) -> CloudEvent:
    """Hand one event to a service's consumer handler in a transaction, as its EventConsumer would."""
    event = new_event(channel.event_type, event_source(str(event_producer(channel.subject))), payload, subject)
    async with pool.connection() as conn, conn.transaction():
        await handler(conn, event)
    return event
