"""An operator can see what a consumer gave up on, and replay it once the cause is fixed."""

from __future__ import annotations

import pytest
from nats.js.errors import NotFoundError

from kernel.deadletters import list_dead_letters, replay
from tests.integration.test_outbox_and_consumer import (  # noqa: F401 - fixtures
    Env,
    Recorder,
    Running,
    _envelope,
    _settled,
    consumer_for,
    dead_letters,
    effects,
    env,
    eventually,
    fast_retries,
)


async def test_dead_letter_is_listed_and_replayed_exactly_once(
    env: Env, effects: None, dead_letters: None, fast_retries: None
) -> None:
    handler = Recorder(env.schema, fail_attempts=-1)  # a bug: every attempt fails
    consumer = consumer_for(env, handler, max_deliver=2)
    durable = consumer.spec.durable
    event_id, data = _envelope(env, 7)
    await env.js.publish(env.channel.subject, data)

    async with Running(consumer):
        async def parked() -> bool:
            return len(await list_dead_letters(env.js, durable)) == 1

        await eventually(parked, "event dead-lettered")
        [letter] = await list_dead_letters(env.js, durable)
        assert (letter.consumer, letter.original_subject, letter.event_id) == (durable, env.channel.subject, event_id)
        assert "handler failure" in letter.error
        assert await env.count("effects") == 0

        handler.fail_attempts = 0  # the bug is fixed
        await replay(env.js, letter.sequence)

        async def handled() -> bool:
            return await env.count("effects") == 1

        await eventually(handled, "replayed event handled")
        await eventually(lambda: _settled(env, durable, 2), "replay acknowledged")

    assert await list_dead_letters(env.js, durable) == []
    with pytest.raises(NotFoundError):  # a replayed letter is gone: it cannot be replayed twice
        await replay(env.js, letter.sequence)
    assert await env.count("inbox") == 1
