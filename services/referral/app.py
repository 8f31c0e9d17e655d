"""Composition root of the referral service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import ARRIVAL_REGISTERED, REFERRAL_STREAM
from kernel.bus import ConsumerSpec
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.referral import handlers
from services.referral.store import SCHEMA


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        Endpoint("svc.referral.case_referrals", partial(handlers.case_referrals, rt.pool)),
        Endpoint("svc.referral.incoming", partial(handlers.incoming, rt.pool)),
    ]


def consumers(rt: Runtime) -> list[ConsumerSpec]:
    return [
        ConsumerSpec("referral-arrivals", ARRIVAL_REGISTERED.stream, ARRIVAL_REGISTERED.subject,
                     handlers.on_arrival_registered),
    ]


APP = ServiceApp(
    name="referral",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[REFERRAL_STREAM],
    endpoints=endpoints,
    consumers=consumers,
)
