"""NATS and JetStream: connection, streams, and idempotent durable consumers with dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import trace
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from contracts.channels import STREAMS, StreamSpec, dead_letter_subject, event_producer, event_source
from kernel.db import Connection
from kernel.denylist import open_bucket
from kernel.events import CloudEvent
from kernel.natsauth import NatsAuth, inbox_prefix, servers
from kernel.telemetry import extract_context, record_failure, tracer

log = logging.getLogger(__name__)

EventHandler = Callable[[Connection, CloudEvent], Awaitable[None]]


class RetryLater(Exception):
    """An event arrived before one it depends on (a case's change before its registration): the
    handler raises this, its transaction (inbox row included) rolls back, and the consumer delivers
    the event again with back-off, like any failure, dead-lettering it only after ``max_deliver``
    attempts. Never acknowledge such an event without effect: that would lose it."""


async def connect(url: str, name: str, auth: NatsAuth | None = None) -> Client:
    """Connect with endless reconnection: a NATS restart delays work, it must not stop a process.

    ``url`` may list several servers separated by commas (a cluster); replies arrive on the
    inbox prefix ``_INBOX.<name>``, the only one the process's NATS permissions let it read.
    """

    async def on_disconnect() -> None:
        log.warning("nats disconnected")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    async def on_error(exc: Exception) -> None:
        # A permissions violation names a subject, never a payload: worth showing to the operator.
        detail = str(exc)[:200] if "permissions violation" in str(exc).lower() else None
        log.warning("nats error", extra={"error": type(exc).__name__, "detail": detail})

    return await nats.connect(
        servers=servers(url),
        name=name,
        inbox_prefix=inbox_prefix(name),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        **(auth or NatsAuth()).options(),
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, *, replicas: int = 1) -> None:
    """Create or update a stream; safe to call from every replica at every start.

    A stream that is already as declared is left alone: services may only look at streams (the
    operator provisions them, ``segin nats-provision``), so they must not need to update them.
    """
    config = StreamConfig(
        name=spec.name,
        subjects=spec.subjects,
        description=spec.description,
        storage=StorageType.FILE,
        duplicate_window=120.0,
        num_replicas=replicas,
    )
    try:
        current = (await js.stream_info(spec.name)).config
    except NotFoundError:
        await js.add_stream(config)
        return
    wanted = (sorted(spec.subjects), spec.description, StorageType.FILE, 120.0, replicas)
    found = (sorted(current.subjects or []), current.description, current.storage, current.duplicate_window,
             current.num_replicas)
    if found != wanted:
        await js.update_stream(config)


async def provision(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create every stream and the revocation bucket: the operator's job (``segin nats-provision``,
    and ``make run`` before it starts the processes), since services may not create streams."""
    for spec in STREAMS:
        await ensure_stream(js, spec, replicas=replicas)
    await open_bucket(js, replicas=replicas)


def by_type(handlers: dict[str, EventHandler]) -> EventHandler:
    """One consumer for several event types of a stream; types it does not know are skipped
    (acknowledged), so a producer can add event types without breaking older consumers."""

    async def dispatch(conn: Connection, event: CloudEvent) -> None:
        handler = handlers.get(event.type)
        if handler is not None:
            await handler(conn, event)

    return dispatch


def retry_delay(num_delivered: int) -> float:
    """Back-off for a failed delivery: 1 s, 2 s, 4 s … capped at 60 s."""
    return float(min(2 ** max(num_delivered - 1, 0), 60))


@dataclass
class ConsumerSpec:
    """A durable pull consumer: one per (consuming service, event subject)."""

    durable: str
    stream: str
    filter_subject: str
    handler: EventHandler
    max_deliver: int = 8


class EventConsumer:
    """Delivers each event to its handler exactly once in effect.

    The handler runs in one transaction with the inbox row (consumer, event id): a redelivery
    finds the row and is acknowledged without effect. Failures are retried with a delay from
    ``num_delivered``; after ``max_deliver`` attempts the message goes to the dead-letter stream.
    """

    def __init__(self, js: JetStreamContext, pool: AsyncConnectionPool, schema: str, spec: ConsumerSpec) -> None:
        self.js, self.pool, self.schema, self.spec = js, pool, schema, spec
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30.0,
            max_deliver=-1,  # we count deliveries ourselves, so we can dead-letter with the error
            filter_subject=self.spec.filter_subject,
            max_ack_pending=1000,
        )
        return await self.js.pull_subscribe(
            self.spec.filter_subject, durable=self.spec.durable, stream=self.spec.stream, config=config
        )

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._loop(stop)
        finally:
            if self._subscription is not None:
                try:  # a pull subscription left open makes the connection's drain time out
                    await self._subscription.unsubscribe()
                except Exception:
                    pass

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self._subscription is None:
                    self._subscription = await self._subscribe()
                messages = await self._subscription.fetch(batch=50, timeout=1.0)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer fetch failed", extra={"consumer": self.spec.durable, "error": type(exc).__name__})
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                try:
                    await self.process(msg)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # e.g. dead-letter publish failed: unacked, so redelivered
                    log.warning("event processing failed", extra={"consumer": self.spec.durable,
                                                                   "error": type(exc).__name__})

    async def process(self, msg: Msg) -> None:
        delivered = msg.metadata.num_delivered
        try:
            event = CloudEvent.from_bytes(msg.data)
        except (ValueError, json.JSONDecodeError) as exc:
            await self._dead_letter(msg, f"unreadable envelope: {exc}")
            return
        producer = event_producer(msg.subject)
        if producer is None or event.source != event_source(producer):
            # Only the service owning a subject may publish there (NATS permissions); an event
            # claiming another source is forged or misrouted: parked for an operator, never handled.
            await self._dead_letter(msg, f"untrusted source {event.source[:100]!r}: {msg.subject} is published "
                                         f"only by {event_source(producer) if producer else 'nobody'}")
            return
        with tracer().start_as_current_span(
            f"consume {msg.subject}", context=extract_context(msg.headers), kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.message.id", event.id)
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    cur = await conn.execute(
                        sql.SQL("insert into {} (consumer, event_id) values (%s, %s) on conflict do nothing").format(
                            sql.Identifier(self.schema, "inbox")
                        ),
                        (self.spec.durable, event.id),
                    )
                    if cur.rowcount == 1:
                        await self.spec.handler(conn, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                record_failure(span, exc)
                if delivered >= self.spec.max_deliver:
                    await self._dead_letter(msg, f"{type(exc).__name__}: {exc}"[:500])
                else:
                    log.warning(
                        "event arrived early, will retry" if isinstance(exc, RetryLater)
                        else "event handler failed, will retry",
                        extra={"consumer": self.spec.durable, "event_id": event.id, "delivery": delivered,
                               "error": type(exc).__name__},
                    )
                    await _quietly(msg.nak(delay=retry_delay(delivered)))
                return
            log.info("event handled", extra={"consumer": self.spec.durable, "event_id": event.id,
                                             "delivery": delivered})
        await _quietly(msg.ack())

    async def _dead_letter(self, msg: Msg, error: str) -> None:
        """Park the message with its error; acknowledge the original only once it is parked."""
        trace_headers = {k: v for k, v in (msg.headers or {}).items() if k in ("traceparent", "tracestate")}
        headers = {
            **trace_headers,
            "Segin-Original-Subject": msg.subject,
            "Segin-Error": error.replace("\n", " "),
            "Segin-Consumer": self.spec.durable,
            "Nats-Msg-Id": f"{self.spec.durable}:{msg.metadata.stream}:{msg.metadata.sequence.stream}",
        }
        await self.js.publish(dead_letter_subject(self.spec.durable), msg.data, headers=headers, timeout=5)
        log.error("event dead-lettered", extra={"consumer": self.spec.durable, "subject": msg.subject})
        await _quietly(msg.ack())


async def _quietly(ack: Awaitable[None]) -> None:
    """An ack lost to a disconnect means a redelivery, which the inbox absorbs."""
    try:
        await ack
    except Exception as exc:
        log.warning("ack failed", extra={"error": type(exc).__name__})
