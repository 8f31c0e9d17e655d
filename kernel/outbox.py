"""Transactional outbox: an event commits with the state change, a relay publishes it later.

NATS being down delays events; it never loses them. The relay is woken by LISTEN/NOTIFY
and also polls, so a missed notification costs at most ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from nats.js import JetStreamContext
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from contracts.channels import EventChannel, event_source
from kernel.db import Connection
from kernel.events import new_event
from kernel.telemetry import inject_headers

log = logging.getLogger(__name__)


def _channel(schema: str) -> str:
    return f"{schema}_outbox"


async def add_event(
    conn: Connection, schema: str, channel: EventChannel, payload: BaseModel, subject: str | None = None
) -> str:
    """Write an event into the outbox inside the caller's transaction; returns the event id."""
    event = new_event(channel.event_type, event_source(schema), payload, subject)
    await conn.execute(
        sql.SQL("insert into {} (id, subject, envelope, headers) values (%s, %s, %s, %s)").format(
            sql.Identifier(schema, "outbox")
        ),
        (uuid.UUID(event.id), channel.subject, Jsonb(event.to_json()), Jsonb(inject_headers())),
    )
    await conn.execute(sql.SQL("select pg_notify(%s, '')"), (_channel(schema),))
    return event.id


async def add_events(
    conn: Connection, schema: str, channel: EventChannel, events: list[tuple[BaseModel, str | None]]
) -> list[str]:
    """``add_event`` for many events of one channel (payload, subject) in one round trip and one
    wake-up of the relay: a batch job (a deadline scan) writes hundreds at once. Returns the ids."""
    built = [new_event(channel.event_type, event_source(schema), payload, subject) for payload, subject in events]
    if not built:
        return []
    await conn.execute(
        sql.SQL("insert into {} (id, subject, envelope, headers)"
                " select id, %s, envelope, %s from unnest(%s::uuid[], %s::jsonb[]) as e (id, envelope)").format(
            sql.Identifier(schema, "outbox")
        ),
        (channel.subject, Jsonb(inject_headers()), [uuid.UUID(e.id) for e in built],
         [Jsonb(e.to_json()) for e in built]),
    )
    await conn.execute(sql.SQL("select pg_notify(%s, '')"), (_channel(schema),))
    return [e.id for e in built]


class OutboxRelay:
    """Publishes unpublished outbox rows to JetStream with ``Nats-Msg-Id`` = event id."""

    def __init__(
        self, pool: AsyncConnectionPool, js: JetStreamContext, schema: str, url: str, *, batch: int = 200,
        poll_seconds: float = 1.0,
    ) -> None:
        self.pool, self.js, self.schema, self.url = pool, js, schema, url
        self.batch, self.poll_seconds = batch, poll_seconds

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were published."""
        published: list[uuid.UUID] = []
        failure: Exception | None = None
        async with self.pool.connection() as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    sql.SQL(
                        "select id, subject, envelope, headers from {} where published_at is null"
                        " order by created_at limit %s for update skip locked"
                    ).format(sql.Identifier(self.schema, "outbox")),
                    (self.batch,),
                )
                for row in await cur.fetchall():
                    headers = {**row["headers"], "Nats-Msg-Id": str(row["id"])}
                    try:
                        await self.js.publish(
                            row["subject"], json.dumps(row["envelope"]).encode(), headers=headers, timeout=5
                        )
                    except Exception as exc:
                        failure = exc
                        break
                    published.append(row["id"])
                # Rows published before a failure are marked (and committed), so they are not
                # sent again; JetStream's duplicate window and the consumers' inbox cover a crash here.
                if published:
                    await conn.execute(
                        sql.SQL("update {} set published_at = now() where id = any(%s)").format(
                            sql.Identifier(self.schema, "outbox")
                        ),
                        (published,),
                    )
        if failure is not None:
            raise failure
        return len(published)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                async with await AsyncConnection.connect(self.url, autocommit=True) as listener:
                    await listener.execute(sql.SQL("listen {}").format(sql.Identifier(_channel(self.schema))))
                    while not stop.is_set():
                        count = await self.publish_pending()
                        failures = 0
                        if count >= self.batch:
                            continue
                        async for _ in listener.notifies(timeout=self.poll_seconds, stop_after=1):
                            pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL away: wait and retry, nothing is lost.
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                log.warning("outbox relay retrying", extra={"schema": self.schema, "error": type(exc).__name__,
                                                             "retry_in_s": delay})
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
