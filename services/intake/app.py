"""Composition root of the intake service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import INTAKE_STREAM, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, REFERRAL_STREAM
from kernel.audit import audit_endpoints
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.intake import handlers
from services.intake.store import SCHEMA

APP_NAME = "intake"


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        *audit_endpoints(SCHEMA, APP_NAME, rt.pool),
        Endpoint("svc.intake.register_arrival", partial(handlers.register_arrival, rt.pool)),
        Endpoint("svc.intake.get_case", partial(handlers.get_case, rt.pool)),
        Endpoint("svc.intake.record_consent", partial(handlers.record_consent, rt.pool)),
        Endpoint("svc.intake.withdraw_consent", partial(handlers.withdraw_consent, rt.pool)),
        Endpoint("svc.intake.record_legal_basis", partial(handlers.record_legal_basis, rt.pool)),
        Endpoint("svc.intake.statistics", partial(handlers.statistics, rt.pool)),
        Endpoint("svc.intake.subject_access", partial(handlers.subject_access, rt.pool)),
    ]


def consumers(rt: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec("intake-referrals", REFERRAL_STREAM.name, "evt.referral.>", by_type({
            REFERRAL_CREATED.event_type: handlers.on_referral_created,
            REFERRAL_STATUS_CHANGED.event_type: handlers.on_referral_status_changed,
        })),
    ]


APP = ServiceApp(
    name=APP_NAME,
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[INTAKE_STREAM],
    endpoints=endpoints,
    consumers=consumers,
)
