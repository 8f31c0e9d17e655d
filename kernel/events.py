"""CloudEvents 1.0 envelopes in structured JSON mode, as carried on NATS."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

SPEC_VERSION = "1.0"


@dataclass(frozen=True)
class CloudEvent:
    id: str
    type: str
    source: str
    time: str
    data: dict[str, Any]
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": self.data,
        }
        if self.subject:
            envelope["subject"] = self.subject
        return envelope

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CloudEvent":
        """Parse a received envelope; raises ValueError when it is not a CloudEvent 1.0."""
        envelope = json.loads(raw)
        if not isinstance(envelope, dict) or envelope.get("specversion") != SPEC_VERSION:
            raise ValueError("not a CloudEvents 1.0 envelope")
        for attr in ("id", "type", "source"):
            if not envelope.get(attr):
                raise ValueError(f"CloudEvent attribute '{attr}' is missing")
        return cls(
            id=envelope["id"],
            type=envelope["type"],
            source=envelope["source"],
            time=envelope.get("time", ""),
            data=envelope.get("data") or {},
            subject=envelope.get("subject"),
        )


def new_event(event_type: str, source: str, payload: BaseModel, subject: str | None = None) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        type=event_type,
        source=source,
        time=datetime.now(UTC).isoformat(),
        data=payload.model_dump(mode="json"),
        subject=subject,
    )
