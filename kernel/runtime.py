"""The one way a Segin service process starts, runs and stops.

A service describes itself with a ``ServiceApp`` (schema, migrations, streams it produces,
endpoints, consumers, periodic tasks); ``run`` wires the real adapters, and stops in order on
SIGTERM/SIGINT: stop taking requests, let in-flight work finish, flush the outbox relay, close
connections.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import uvloop
from psycopg_pool import AsyncConnectionPool

from contracts.channels import DEAD_LETTER_STREAM, StreamSpec
from kernel.audit import audit_endpoints, refusal_recorder
from kernel.bus import ConsumerSpec, EventConsumer, connect, ensure_stream
from kernel.config import Settings
from kernel.db import migrate, open_pool
from kernel.denylist import DenyList
from kernel.logs import setup_logging
from kernel.outbox import OutboxRelay
from kernel.periodic import every
from kernel.retention import Retention, run_pruning
from kernel.rpc import Endpoint, EndpointServer, Route, bind
from kernel.telemetry import setup_telemetry
from kernel.tokens import INTERNAL_TOKEN_TYPE, TokenVerifier, http_key_loader, service_audience

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    """Work a service repeats on a timer (deadline scans), in every replica of the service.

    Every replica runs it, so ``work`` must be safe to run concurrently with itself: claim rows
    with ``FOR UPDATE SKIP LOCKED`` and re-check the condition that made them due, and write its
    events with ``kernel.outbox.add_event`` in the same transaction. It must not rely on running:
    a process may die at any point, and the next tick (of any replica) takes over.
    ``seconds`` is read once at start (e.g. from an environment variable), so a test platform can
    tick every second and a deployment every minute.
    """

    name: str
    work: Callable[[AsyncConnectionPool], Awaitable[object]]
    seconds: Callable[[], float]


@dataclass
class ServiceApp:
    """What a service is: its schema and migrations, the streams it produces, the requests it
    answers (``svc.<name>.<endpoint>``, each declared with its request model, scope and reply
    model) and the events it consumes. The runtime adds the rest."""

    name: str
    schema: str
    migrations: Path
    streams: list[StreamSpec] = field(default_factory=list)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    consumers: list[ConsumerSpec] = field(default_factory=list)
    tasks: list[PeriodicTask] = field(default_factory=list)


def routes(app: ServiceApp, pool: AsyncConnectionPool) -> list[Route]:
    """The service's declared endpoints bound to its pool and audit trail, plus the audit endpoints
    every service answers on its own chain (plumbing, not domain)."""
    on_refused = refusal_recorder(app.schema, pool)
    declared = [bind(f"svc.{app.name}.{name}", endpoint, pool, on_refused) for name, endpoint in app.endpoints.items()]
    return declared + audit_endpoints(app.schema, app.name, pool)


async def run(app: ServiceApp, settings: Settings | None = None, stop: asyncio.Event | None = None) -> None:
    settings = settings or Settings.from_env()
    setup_logging(app.name, settings.log_level)
    setup_telemetry(app.name)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass

    intervals = {task.name: task.seconds() for task in app.tasks}  # a bad setting refuses to start
    await migrate(settings.database_url, app.schema, app.migrations)
    pool = await open_pool(settings.database_url)
    nc = await connect(settings.nats_url, f"segin-{app.name}", settings.nats_auth)
    js = nc.jetstream(timeout=10)
    for stream in [*app.streams, DEAD_LETTER_STREAM]:
        await ensure_stream(js, stream, replicas=settings.stream_replicas)

    denylist = DenyList()  # revoked tokens, watched from NATS before the first request is served
    await denylist.start(js, stop, replicas=settings.stream_replicas)
    # Only internal tokens the gateway made for this service: never a client's API token.
    verifier = TokenVerifier(http_key_loader(settings.jwks_url), settings.issuer, service_audience(app.name),
                             denylist=denylist, token_types=(INTERNAL_TOKEN_TYPE,))
    server = EndpointServer(nc, app.name, verifier, routes(app, pool))
    await server.start()
    relay = OutboxRelay(pool, js, app.schema, settings.database_url)
    background = [asyncio.create_task(relay.run(stop), name="outbox-relay"),
                  asyncio.create_task(run_pruning(pool, app.schema, Retention(), stop), name="pruning")]
    for spec in app.consumers:
        background.append(asyncio.create_task(EventConsumer(js, pool, app.schema, spec).run(stop), name=spec.durable))
    for task in app.tasks:  # stopped like the consumers: the current tick finishes (or rolls back), no new one
        background.append(asyncio.create_task(
            every(intervals[task.name], stop, partial(task.work, pool), name=task.name, immediately=True),
            name=task.name))
    log.info("service ready", extra={"endpoints": [e.subject for e in server.endpoints]})

    await stop.wait()
    log.info("service stopping")
    await server.stop()
    await asyncio.wait(background, timeout=10)
    for task in background:
        task.cancel()
    try:
        await relay.publish_pending()
    except Exception:
        pass
    try:
        await asyncio.wait_for(nc.drain(), 5)
    except Exception:
        await nc.close()
    await pool.close()
    log.info("service stopped")


def main(app: ServiceApp) -> None:
    uvloop.run(run(app))  # libuv's loop: a service's I/O costs less CPU than on asyncio's own
