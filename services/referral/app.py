"""Composition root of the referral service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import ARRIVAL_REGISTERED, INTAKE_STREAM, REFERRAL_STREAM, SHARING_CHANGED
from kernel.bus import ConsumerSpec, by_type
from kernel.runtime import ServiceApp
from services.referral import handlers
from services.referral.store import SCHEMA

APP = ServiceApp(
    name="referral",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[REFERRAL_STREAM],
    endpoints={
        "case_referrals": handlers.case_referrals,
        "incoming": handlers.incoming,
        "subject_access": handlers.subject_access,
        **{action: partial(handlers.act, action) for action in ("accept", "reject", "complete", "revoke")},
    },
    consumers=[
        ConsumerSpec("referral-intake", INTAKE_STREAM.name, "evt.intake.>", by_type({
            ARRIVAL_REGISTERED.event_type: handlers.on_arrival_registered,
            SHARING_CHANGED.event_type: handlers.on_sharing_changed,
        })),
    ],
)
