"""Composition root of the intake service."""

from __future__ import annotations

from pathlib import Path

from contracts.channels import INTAKE_STREAM, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, REFERRAL_STREAM
from kernel.bus import ConsumerSpec, by_type
from kernel.runtime import ServiceApp
from services.intake import handlers
from services.intake.store import SCHEMA

APP = ServiceApp(
    name="intake",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[INTAKE_STREAM],
    endpoints={
        "register_arrival": handlers.register_arrival,
        "get_case": handlers.get_case,
        "record_consent": handlers.record_consent,
        "withdraw_consent": handlers.withdraw_consent,
        "record_legal_basis": handlers.record_legal_basis,
        "statistics": handlers.statistics,
        "subject_access": handlers.subject_access,
    },
    consumers=[
        # The access projection: which organisation holds an open referral for which case.
        ConsumerSpec("intake-referrals", REFERRAL_STREAM.name, "evt.referral.>", by_type({
            REFERRAL_CREATED.event_type: handlers.on_referral_created,
            REFERRAL_STATUS_CHANGED.event_type: handlers.on_referral_status_changed,
        })),
    ],
)
