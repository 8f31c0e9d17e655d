"""Composition root of the intake service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import INTAKE_STREAM
from kernel.rpc import Endpoint
from kernel.runtime import Runtime, ServiceApp
from services.intake import handlers
from services.intake.store import SCHEMA


def endpoints(rt: Runtime) -> list[Endpoint]:
    return [
        Endpoint("svc.intake.register_arrival", partial(handlers.register_arrival, rt.pool)),
        Endpoint("svc.intake.get_case", partial(handlers.get_case, rt.pool)),
    ]


APP = ServiceApp(
    name="intake",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[INTAKE_STREAM],
    endpoints=endpoints,
)
