"""Composition root of the referral service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import ARRIVAL_REGISTERED, INTAKE_STREAM, REFERRAL_STREAM, SHARING_CHANGED
from contracts.commands import AssignNeed, CaseRef, PageRequest, ReferralAction, RerouteReferral
from contracts.replies import Page, ReferralView
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import ServiceApp
from services.referral import handlers, needs
from services.referral.store import SCHEMA

APP = ServiceApp(
    name="referral",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[REFERRAL_STREAM],
    endpoints={
        "case_referrals": Endpoint(handlers.case_referrals, CaseRef, "referrals:read", list[ReferralView]),
        "incoming": Endpoint(handlers.incoming, PageRequest, "referrals:read", Page[ReferralView]),
        "subject_access": Endpoint(handlers.subject_access, CaseRef, "audit:read", list[ReferralView]),
        **{action: Endpoint(partial(handlers.act, action), ReferralAction, "referrals:write", ReferralView)
           for action in ("accept", "reject", "complete", "revoke")},
        "unassigned": Endpoint(needs.unassigned, PageRequest, "referrals:read", Page[ReferralView]),
        "assign": Endpoint(needs.assign, AssignNeed, "referrals:write", ReferralView),
        "reroute": Endpoint(needs.reroute, RerouteReferral, "referrals:write", ReferralView),
    },
    consumers=[
        ConsumerSpec("referral-intake", INTAKE_STREAM.name, "evt.intake.>", by_type({
            ARRIVAL_REGISTERED.event_type: handlers.on_arrival_registered,
            SHARING_CHANGED.event_type: handlers.on_sharing_changed,
        })),
    ],
)
