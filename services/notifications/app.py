"""Composition root of the notifications service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import NOTIFICATIONS_STREAM, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, REFERRAL_STREAM
from kernel.audit import audit_endpoints
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.notifications import handlers
from services.notifications.store import SCHEMA

APP_NAME = "notifications"


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        *audit_endpoints(SCHEMA, APP_NAME, rt.pool),
        Endpoint("svc.notifications.list", partial(handlers.list_notifications, rt.pool)),
        Endpoint("svc.notifications.mark_read", partial(handlers.mark_read, rt.pool)),
        Endpoint("svc.notifications.subject_access", partial(handlers.subject_access, rt.pool)),
    ]


def consumers(rt: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec("notifications-referral-events", REFERRAL_STREAM.name, "evt.referral.>", by_type({
            REFERRAL_CREATED.event_type: handlers.on_referral_created,
            REFERRAL_STATUS_CHANGED.event_type: handlers.on_referral_status_changed,
        })),
    ]


APP = ServiceApp(
    name=APP_NAME,
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[NOTIFICATIONS_STREAM],
    endpoints=endpoints,
    consumers=consumers,
)
