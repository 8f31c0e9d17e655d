"""Transactional outbox, relay and idempotent consumers against the suite's real PostgreSQL and NATS.

Every test gets its own schema (kernel tables created by ``kernel.db.migrate``) and its own
JetStream stream, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

import kernel.bus
from contracts.channels import DEAD_LETTER_STREAM, EventChannel, StreamSpec, dead_letter_subject
from kernel.bus import ConsumerSpec, EventConsumer, connect, ensure_stream
from kernel.db import Connection, migrate, open_pool
from kernel.events import CloudEvent, new_event
from devstack.localstack import NatsServer, PostgresServer
from kernel.outbox import OutboxRelay, add_event

WAIT = 20.0  # upper bound for anything that should happen "promptly"


class Thing(BaseModel):
    number: int


@dataclass
class Env:
    schema: str
    url: str
    pool: AsyncConnectionPool
    nc: Client
    js: JetStreamContext
    stream: StreamSpec
    channel: EventChannel
    tag: str

    async def commit_event(self, number: int) -> str:
        async with self.pool.connection() as conn, conn.transaction():
            return await add_event(conn, self.schema, self.channel, Thing(number=number), subject=f"thing-{number}")

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("select id, published_at from {} order by created_at").format(
                    sql.Identifier(self.schema, "outbox")
                )
            )
            return await cur.fetchall()

    async def count(self, table: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.SQL("select count(*) as n from {}").format(sql.Identifier(self.schema, table)))
            row = await cur.fetchone()
            assert row is not None
            return int(row["n"])

    async def stream_messages(self, name: str | None = None) -> int:
        return (await self.js.stream_info(name or self.stream.name)).state.messages

    async def stream_contents(self) -> list[tuple[dict[str, str], CloudEvent]]:
        out = []
        for seq in range(1, await self.stream_messages() + 1):
            msg = await self.js.get_msg(self.stream.name, seq)
            out.append((msg.headers or {}, CloudEvent.from_bytes(msg.data or b"")))
        return out


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT) -> None:
    """Poll ``check`` until true; fail (not hang) after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if await check():
                return
        except (asyncio.TimeoutError, OSError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def env(postgres: PostgresServer, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Env]:
    tag = uuid.uuid4().hex[:8]
    schema = f"t_{tag}"
    empty = tmp_path / "migrations"
    empty.mkdir()
    assert "0000_kernel.sql" in await migrate(postgres.url, schema, empty)
    pool = await open_pool(postgres.url, min_size=1, max_size=6)
    if not nats_server.running:  # a previous test failed to restore it
        await asyncio.to_thread(nats_server.start)
    nc = await connect(nats_server.url, f"test-{tag}", nats_server.auth())
    js = nc.jetstream()
    # The schema is the producer: consumers trust only events whose source is /segin/<producer>.
    stream = StreamSpec(f"T_{tag.upper()}", [f"evt.{schema}.>"], "test stream")
    await ensure_stream(js, stream)
    channel = EventChannel(f"evt.{schema}.thing.v1", "ml.segin.test.thing.v1", stream.name, Thing, "test event")
    try:
        yield Env(schema, postgres.url, pool, nc, js, stream, channel, tag)
    finally:
        try:
            if nc.is_connected:
                await js.delete_stream(stream.name)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
        await nc.close()
        await pool.close()
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


# --- a. outbox + relay ---------------------------------------------------------------------------


async def test_rolled_back_event_is_never_published_committed_one_exactly_once(env: Env) -> None:
    async with env.pool.connection() as conn:
        async with conn.transaction():
            rolled_back_id = await add_event(conn, env.schema, env.channel, Thing(number=0))
            raise psycopg.Rollback()
    event_id = await env.commit_event(1)
    assert rolled_back_id != event_id

    rows = await env.outbox()
    assert [str(r["id"]) for r in rows] == [event_id]
    assert rows[0]["published_at"] is None

    relay = OutboxRelay(env.pool, env.js, env.schema, env.url)
    assert await relay.publish_pending() == 1

    contents = await env.stream_contents()
    assert len(contents) == 1
    headers, event = contents[0]
    assert headers["Nats-Msg-Id"] == event.id == event_id
    assert event.type == env.channel.event_type
    assert event.source == f"/segin/{env.schema}"
    assert event.subject == "thing-1"
    assert event.data == {"number": 1}
    assert (await env.js.get_msg(env.stream.name, 1)).subject == env.channel.subject

    rows = await env.outbox()
    assert rows[0]["published_at"] is not None

    assert await relay.publish_pending() == 0
    assert await env.stream_messages() == 1


async def test_relay_publishes_in_creation_order_across_batches(env: Env) -> None:
    ids = [await env.commit_event(n) for n in range(5)]
    relay = OutboxRelay(env.pool, env.js, env.schema, env.url, batch=2)
    assert [await relay.publish_pending() for _ in range(4)] == [2, 2, 1, 0]
    assert [event.id for _, event in await env.stream_contents()] == ids


async def test_concurrent_relays_do_not_publish_twice(env: Env) -> None:
    """Two replicas of a service both relay: skip locked + Nats-Msg-Id keep it single."""
    ids = [await env.commit_event(n) for n in range(20)]
    relays = [OutboxRelay(env.pool, env.js, env.schema, env.url, batch=3) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while count := await relay.publish_pending():
            total += count
        return total

    counts = await asyncio.gather(*(drain(r) for r in relays))
    assert sum(counts) == 20
    assert sorted(event.id for _, event in await env.stream_contents()) == sorted(ids)
    assert all(r["published_at"] is not None for r in await env.outbox())


# --- b. relay loop woken by NOTIFY ----------------------------------------------------------------


async def test_relay_loop_publishes_promptly_after_commit(env: Env) -> None:
    # A long poll interval: only the NOTIFY sent by add_event can wake the relay in time.
    relay = OutboxRelay(env.pool, env.js, env.schema, env.url, poll_seconds=120.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        first = await env.commit_event(1)
        await eventually(lambda: _has(env, 1), "first event relayed")
        second = await env.commit_event(2)
        await eventually(lambda: _has(env, 2), "second event relayed after NOTIFY")
        third = await env.commit_event(3)
        await eventually(lambda: _has(env, 3), "third event relayed after NOTIFY")
        assert [event.id for _, event in await env.stream_contents()] == [first, second, third]
        assert all(r["published_at"] is not None for r in await env.outbox())
        assert not task.done()
    finally:
        stop.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _has(env: Env, count: int) -> bool:
    return await env.stream_messages() >= count


# --- c. consumer: inbox, retries, dead letters ---------------------------------------------------


@dataclass
class Recorder:
    """A handler writing a row per successful run in the test schema; fails on chosen attempts."""

    schema: str
    fail_attempts: int = 0  # fail this many first attempts (per event); -1: always
    attempts: int = 0

    async def __call__(self, conn: Connection, event: CloudEvent) -> None:
        self.attempts += 1
        await conn.execute(
            sql.SQL("insert into {} (event_id, attempt) values (%s, %s)").format(sql.Identifier(self.schema, "effects")),
            (event.id, self.attempts),
        )
        if self.fail_attempts < 0 or self.attempts <= self.fail_attempts:
            raise RuntimeError(f"handler failure #{self.attempts}")


@pytest.fixture
async def effects(env: Env) -> None:
    async with env.pool.connection() as conn:
        await conn.execute(
            sql.SQL("create table {} (event_id text not null, attempt int not null)").format(
                sql.Identifier(env.schema, "effects")
            )
        )


@pytest.fixture
async def dead_letters(env: Env) -> None:
    await ensure_stream(env.js, DEAD_LETTER_STREAM)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel.bus, "retry_delay", lambda _delivered: 0.05)


class Running:
    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task is not None
        self.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 5)
        except (TimeoutError, Exception):  # noqa: BLE001 - a crashed loop is reported by the test
            self.task.cancel()
            try:
                await self.task
            except BaseException:  # noqa: BLE001
                pass


def consumer_for(env: Env, handler: Recorder, *, max_deliver: int = 8) -> EventConsumer:
    spec = ConsumerSpec(
        durable=f"test_{env.tag}", stream=env.stream.name, filter_subject=env.channel.subject, handler=handler,
        max_deliver=max_deliver,
    )
    return EventConsumer(env.js, env.pool, env.schema, spec)


async def _settled(env: Env, durable: str, delivered: int) -> bool:
    try:
        info = await env.js.consumer_info(env.stream.name, durable)
    except NotFoundError:  # the consumer loop has not created its durable yet
        return False
    return info.delivered.stream_seq >= delivered and info.num_ack_pending == 0 and info.num_pending == 0


def _envelope(env: Env, number: int) -> tuple[str, bytes]:
    """An event as the test stream's producer (the test schema) publishes it."""
    event = new_event("ml.segin.test.thing.v1", f"/segin/{env.schema}", Thing(number=number))
    return event.id, json.dumps(event.to_json()).encode()


async def test_redelivered_event_is_handled_once_thanks_to_the_inbox(env: Env, effects: None) -> None:
    handler = Recorder(env.schema)
    consumer = consumer_for(env, handler)
    event_id, data = _envelope(env, 1)
    # The same event twice, as a relay would after the duplicate window passed.
    await env.js.publish(env.channel.subject, data, headers={"Nats-Msg-Id": f"{event_id}-a"})
    await env.js.publish(env.channel.subject, data, headers={"Nats-Msg-Id": f"{event_id}-b"})
    assert await env.stream_messages() == 2

    async with Running(consumer):
        await eventually(lambda: _settled(env, consumer.spec.durable, 2), "both copies acknowledged")

    assert handler.attempts == 1
    assert await env.count("effects") == 1
    assert await env.count("inbox") == 1


async def test_distinct_events_are_each_handled(env: Env, effects: None) -> None:
    handler = Recorder(env.schema)
    consumer = consumer_for(env, handler)
    for n in range(5):
        await env.js.publish(env.channel.subject, _envelope(env, n)[1])
    async with Running(consumer):
        await eventually(lambda: _settled(env, consumer.spec.durable, 5), "five events acknowledged")
    assert handler.attempts == 5
    assert await env.count("effects") == 5
    assert await env.count("inbox") == 5


async def test_failed_handler_writes_nothing_and_is_retried(
    env: Env, effects: None, fast_retries: None
) -> None:
    handler = Recorder(env.schema, fail_attempts=2)
    consumer = consumer_for(env, handler, max_deliver=5)
    event_id, data = _envelope(env, 1)
    await env.js.publish(env.channel.subject, data)

    async with Running(consumer):
        await eventually(lambda: _settled(env, consumer.spec.durable, 1), "event acknowledged after retries")

    assert handler.attempts == 3
    async with env.pool.connection() as conn:
        cur = await conn.execute(sql.SQL("select event_id, attempt from {}").format(
            sql.Identifier(env.schema, "effects")))
        # The rows written by the two failed attempts were rolled back with their inbox rows.
        assert await cur.fetchall() == [{"event_id": event_id, "attempt": 3}]
        cur = await conn.execute(sql.SQL("select consumer, event_id from {}").format(
            sql.Identifier(env.schema, "inbox")))
        assert await cur.fetchall() == [{"consumer": consumer.spec.durable, "event_id": event_id}]
    info = await env.js.consumer_info(env.stream.name, consumer.spec.durable)
    assert info.num_redelivered == 0  # nothing left being redelivered
    assert info.delivered.consumer_seq == 3  # three deliveries of the one message


async def test_exhausted_retries_go_to_the_dead_letter_stream(
    env: Env, effects: None, dead_letters: None, fast_retries: None
) -> None:
    handler = Recorder(env.schema, fail_attempts=-1)
    consumer = consumer_for(env, handler, max_deliver=3)
    durable = consumer.spec.durable
    _event_id, data = _envelope(env, 1)
    await env.js.publish(env.channel.subject, data)

    async def parked() -> bool:
        try:
            await env.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
            return True
        except NotFoundError:
            return False

    async with Running(consumer):
        await eventually(parked, "message dead-lettered")
        await eventually(lambda: _settled(env, durable, 1), "original acknowledged")
        await asyncio.sleep(1.0)  # well beyond the 0.05 s retry delay: no further delivery
        assert handler.attempts == 3

    letter = await env.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
    assert letter.subject == f"dlq.{durable}"
    assert letter.data == data
    headers = letter.headers or {}
    assert headers["Segin-Original-Subject"] == env.channel.subject
    assert headers["Segin-Error"] == "RuntimeError: handler failure #3"
    assert headers["Segin-Consumer"] == durable
    assert await env.count("effects") == 0
    assert await env.count("inbox") == 0
    info = await env.js.consumer_info(env.stream.name, durable)
    assert info.delivered.consumer_seq == 3
    assert info.ack_floor.stream_seq == 1


@pytest.mark.parametrize(
    "payload",
    [b"\x00 definitely not json", b'{"specversion": "0.3", "id": "x", "type": "t", "source": "s"}',
     b'{"specversion": "1.0", "type": "t", "source": "s"}'],
    ids=["binary", "old-spec", "no-id"],
)
async def test_unparsable_message_goes_straight_to_the_dead_letter_stream(
    env: Env, effects: None, dead_letters: None, payload: bytes
) -> None:
    handler = Recorder(env.schema)
    consumer = consumer_for(env, handler)
    durable = consumer.spec.durable
    await env.js.publish(env.channel.subject, payload)
    await env.js.publish(env.channel.subject, _envelope(env, 2)[1])  # the next event still flows

    async with Running(consumer) as running:
        await eventually(lambda: _settled(env, durable, 2), "both messages acknowledged")
        assert running.task is not None and not running.task.done()

    letter = await env.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
    assert letter.data == payload
    headers = letter.headers or {}
    assert headers["Segin-Error"].startswith("unreadable envelope")
    assert headers["Segin-Original-Subject"] == env.channel.subject
    info = await env.js.consumer_info(env.stream.name, durable)
    assert info.delivered.consumer_seq == 2  # one delivery each: no retry of the unreadable one
    assert handler.attempts == 1
    assert await env.count("effects") == 1


@pytest.mark.parametrize("payload", [b"[1, 2]", b"42", b'"text"', b"null"], ids=["array", "number", "string", "null"])
async def test_json_that_is_not_an_object_is_dead_lettered_and_the_consumer_keeps_running(
    env: Env, effects: None, dead_letters: None, payload: bytes
) -> None:
    handler = Recorder(env.schema)
    consumer = consumer_for(env, handler)
    durable = consumer.spec.durable
    await env.js.publish(env.channel.subject, payload)
    await env.js.publish(env.channel.subject, _envelope(env, 2)[1])

    async with Running(consumer) as running:
        task = running.task
        assert task is not None

        async def settled() -> bool:
            if task.done():
                raise AssertionError(f"consumer loop died: {task.exception()!r}")
            return await _settled(env, durable, 2)

        await eventually(settled, "both messages acknowledged")

    letter = await env.js.get_last_msg(DEAD_LETTER_STREAM.name, dead_letter_subject(durable))
    assert letter.data == payload
    assert handler.attempts == 1


# --- d. NATS down while events are written ----------------------------------------------------------


async def test_events_written_while_nats_is_down_are_published_once_it_is_back(
    env: Env, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(env.pool, env.js, env.schema, env.url)
    try:
        await asyncio.to_thread(nats_server.stop)
        await eventually(lambda: _true(not env.nc.is_connected), "client notices NATS is gone")
        ids = [await env.commit_event(n) for n in range(3)]

        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises while disconnected
            await relay.publish_pending()
        assert [r["published_at"] for r in await env.outbox()] == [None, None, None]
    finally:
        await asyncio.to_thread(nats_server.start)

    await eventually(lambda: _true(env.nc.is_connected), "client reconnected")
    published = 0

    async def drained() -> bool:
        nonlocal published
        try:
            published += await relay.publish_pending()
        except Exception:  # noqa: BLE001 - JetStream may need a moment after a restart
            return False
        return all(r["published_at"] is not None for r in await env.outbox())

    await eventually(drained, "outbox drained after NATS restart")
    assert published == 3
    assert await relay.publish_pending() == 0
    contents = await env.stream_contents()
    # A request buffered by the client while disconnected may have reached the stream too:
    # Nats-Msg-Id deduplication keeps each event exactly once.
    assert sorted(event.id for _, event in contents) == sorted(ids)
    assert all(headers["Nats-Msg-Id"] == event.id for headers, event in contents)


async def _true(value: bool) -> bool:
    return value


async def test_rows_published_before_a_mid_batch_failure_are_marked(env: Env) -> None:
    # A real JetStream refusal mid-batch: a stream that takes at most two messages.
    await env.js.delete_stream(env.stream.name)
    await env.js.add_stream(StreamConfig(
        name=env.stream.name, subjects=env.stream.subjects, storage=StorageType.FILE, max_msgs=2,
        discard=DiscardPolicy.NEW, duplicate_window=120.0,
    ))
    ids = [await env.commit_event(n) for n in range(3)]
    relay = OutboxRelay(env.pool, env.js, env.schema, env.url)
    with pytest.raises(Exception):  # noqa: B017 - JetStream's "maximum messages exceeded"
        await relay.publish_pending()
    assert await env.stream_messages() == 2
    published = {str(r["id"]): r["published_at"] for r in await env.outbox()}
    assert published[ids[0]] is not None and published[ids[1]] is not None
    assert published[ids[2]] is None
