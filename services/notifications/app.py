"""Composition root of the notifications service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import NOTIFICATIONS_STREAM, REFERRAL_CREATED
from kernel.bus import ConsumerSpec
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.notifications import handlers
from services.notifications.store import SCHEMA


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        Endpoint("svc.notifications.list", partial(handlers.list_notifications, rt.pool)),
        Endpoint("svc.notifications.mark_read", partial(handlers.mark_read, rt.pool)),
    ]


def consumers(rt: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec("notifications-referrals", REFERRAL_CREATED.stream, REFERRAL_CREATED.subject,
                     handlers.on_referral_created),
    ]


APP = ServiceApp(
    name="notifications",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[NOTIFICATIONS_STREAM],
    endpoints=endpoints,
    consumers=consumers,
)
