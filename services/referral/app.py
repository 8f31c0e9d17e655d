"""Composition root of the referral service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import ARRIVAL_REGISTERED, INTAKE_STREAM, REFERRAL_STREAM, SHARING_CHANGED
from kernel.audit import audit_endpoints
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.referral import handlers
from services.referral.store import SCHEMA

APP_NAME = "referral"


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        *audit_endpoints(SCHEMA, APP_NAME, rt.pool),
        Endpoint("svc.referral.case_referrals", partial(handlers.case_referrals, rt.pool)),
        Endpoint("svc.referral.incoming", partial(handlers.incoming, rt.pool)),
        Endpoint("svc.referral.subject_access", partial(handlers.subject_access, rt.pool)),
        *[Endpoint(f"svc.referral.{action}", partial(handlers.act, action, rt.pool))
          for action in ("accept", "reject", "complete", "revoke")],
    ]


def consumers(rt: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec("referral-intake", INTAKE_STREAM.name, "evt.intake.>", by_type({
            ARRIVAL_REGISTERED.event_type: handlers.on_arrival_registered,
            SHARING_CHANGED.event_type: handlers.on_sharing_changed,
        })),
    ]


APP = ServiceApp(
    name=APP_NAME,
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[REFERRAL_STREAM],
    endpoints=endpoints,
    consumers=consumers,
)
