"""Operator commands for the dead-letter stream: list parked events, replay them once fixed.

A replay republishes the original event to its original subject. Every consumer of that
subject receives it again; those that had already processed it find it in their inbox and
do nothing, so a replay can only complete work, never duplicate it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.channels import DEAD_LETTER_STREAM, dead_letter_subject


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    consumer: str
    original_subject: str
    error: str
    event_id: str | None
    event_type: str | None


async def list_dead_letters(js: JetStreamContext, consumer: str | None = None) -> list[DeadLetter]:
    subject = dead_letter_subject(consumer) if consumer else "dlq.>"
    letters = []
    seq = 1
    while True:
        try:  # next message at or after ``seq`` on the subject: skips replayed (deleted) ones
            msg = await js.get_msg(DEAD_LETTER_STREAM.name, seq, subject=subject, next=True)
        except NotFoundError:
            break
        seq = msg.seq + 1
        headers = msg.headers or {}
        try:
            envelope = json.loads(msg.data or b"{}")
            event_id, event_type = envelope.get("id"), envelope.get("type")
        except (ValueError, AttributeError):
            event_id = event_type = None
        letters.append(DeadLetter(msg.seq, headers.get("Segin-Consumer", "?"), headers.get("Segin-Original-Subject", "?"),
                                  headers.get("Segin-Error", ""), event_id, event_type))
    return letters


async def replay(js: JetStreamContext, sequence: int) -> DeadLetter:
    """Republish one parked event to its original subject, then remove it from the dead letters."""
    msg = await js.get_msg(DEAD_LETTER_STREAM.name, sequence)
    headers = msg.headers or {}
    subject = headers.get("Segin-Original-Subject")
    if not subject:
        raise ValueError(f"dead letter {sequence} has no original subject")
    forwarded = {k: v for k, v in headers.items() if k in ("traceparent", "tracestate")}
    forwarded["Nats-Msg-Id"] = f"replay:{DEAD_LETTER_STREAM.name}:{sequence}"
    await js.publish(subject, msg.data or b"", headers=forwarded, timeout=5)
    await js.delete_msg(DEAD_LETTER_STREAM.name, sequence)
    envelope = json.loads(msg.data or b"{}") if msg.data else {}
    return DeadLetter(sequence, headers.get("Segin-Consumer", "?"), subject, headers.get("Segin-Error", ""),
                      envelope.get("id") if isinstance(envelope, dict) else None,
                      envelope.get("type") if isinstance(envelope, dict) else None)
