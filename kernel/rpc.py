"""Request/reply over NATS: ``nats.micro`` endpoints with one reply envelope, and the caller side.

Reply envelope: ``{"data": ...}`` on success, ``{"error": {"code", "message", "field"}}`` on
refusal. Every request carries a bearer token naming the caller (the gateway's internal token for
that service, never the caller's API token: ``gateway/service_tokens.py``) and trace context in
headers; the service verifies the token itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, Service, ServiceConfig
from opentelemetry import trace
from pydantic import BaseModel, TypeAdapter, ValidationError

from kernel.errors import SeginError, Unavailable, bad_input_from, from_dict
from kernel.telemetry import extract_context, inject_headers, record_failure, tracer
from kernel.tokens import Principal, TokenVerifier, bearer

log = logging.getLogger(__name__)

# A bound endpoint as the server calls it: the verified caller and the JSON payload; JSON-ready data back.
RouteHandler = Callable[[Principal, dict[str, Any]], Awaitable[Any]]
# Called when a verified caller is refused for lack of scope: the service records it in its audit trail.
RefusalRecorder = Callable[[Principal, str, dict[str, Any]], Awaitable[None]]


class ReplyInvalid(RuntimeError):
    """A handler answered something its declared reply model refuses: a bug in the service, not the caller's
    fault, so it is an INTERNAL error (logged with its frames, never its values)."""


@dataclass(frozen=True)
class Endpoint:
    """What a service endpoint needs, declared in the service's ``app.py``.

    ``handler(resource, principal, command)`` gets the service's pool (or unit of work), the verified
    caller and the validated ``request`` model; it returns a ``reply`` (a pydantic model or a type such
    as ``list[Model]``). The scope check and the request validation happen before the handler runs,
    so before any transaction opens.
    """

    handler: Callable[[Any, Principal, Any], Awaitable[Any]]
    request: type[BaseModel]
    scope: str | tuple[str, ...]  # several: any one of them will do (e.g. any follow-up scope)
    reply: Any

    @property
    def scopes(self) -> tuple[str, ...]:
        return (self.scope,) if isinstance(self.scope, str) else self.scope


@dataclass(frozen=True)
class Route:
    """An endpoint bound to its subject and resources: what the server serves."""

    subject: str
    handler: RouteHandler


def bind(subject: str, endpoint: Endpoint, resource: Any, on_refused: RefusalRecorder | None = None) -> Route:
    """Serve ``endpoint`` on ``subject``: scope, then request, then the handler, then the reply checked.

    A refusal for lack of scope is recorded (``on_refused``) before it is answered; a failure to
    record it must not turn the refusal into an error.
    """
    replies: TypeAdapter[Any] = TypeAdapter(endpoint.reply)

    async def handle(principal: Principal, payload: dict[str, Any]) -> Any:
        if not principal.scopes & set(endpoint.scopes):
            if on_refused is not None:
                try:
                    await on_refused(principal, subject, payload)
                except Exception as exc:
                    log.warning("refusal not recorded", extra={"subject": subject, "error": type(exc).__name__})
            principal.require(endpoint.scopes[0] if len(endpoint.scopes) == 1 else " or ".join(endpoint.scopes))
        try:
            command = endpoint.request.model_validate(payload)
        except ValidationError as exc:
            raise bad_input_from(exc) from None
        result = await endpoint.handler(resource, principal, command)
        try:
            return replies.dump_python(replies.validate_python(result), mode="json", by_alias=True)
        except ValidationError as exc:
            raise ReplyInvalid(f"{subject} answered outside its reply model: "
                               f"{[('.'.join(map(str, e['loc'])), e['type']) for e in exc.errors()]}") from None

    return Route(subject, handle)


def _reply(data: Any = None, error: SeginError | None = None) -> bytes:
    body = {"error": error.to_dict()} if error else {"data": data}
    return json.dumps(body, default=str).encode()


class EndpointServer:
    """Serves a service's endpoints; handles requests concurrently (bounded).

    nats.micro runs one callback at a time per subscription, so each request is handed to
    its own task; ``max_in_flight`` keeps a burst from exhausting the database pool.
    """

    def __init__(self, nc: Client, name: str, verifier: TokenVerifier, endpoints: list[Route],
                 *, max_in_flight: int = 64) -> None:
        self.nc, self.name, self.verifier, self.endpoints = nc, name, verifier, endpoints
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.service: Service | None = None

    async def start(self) -> None:
        self.service = await add_service(
            self.nc, config=ServiceConfig(name=f"segin-{self.name}", version="0.1.0", description=self.name)
        )
        for endpoint in self.endpoints:
            await self.service.add_endpoint(
                EndpointConfig(
                    name=endpoint.subject.rsplit(".", 1)[-1],
                    subject=endpoint.subject,
                    queue_group=f"segin-{self.name}",
                    handler=self._dispatcher(endpoint),
                )
            )

    async def stop(self) -> None:
        if self.service:
            await self.service.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    def _dispatcher(self, endpoint: Route) -> Callable[[Request], Awaitable[None]]:
        async def dispatch(request: Request) -> None:
            await self._slots.acquire()
            task = asyncio.create_task(self._handle(endpoint, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: self._slots.release())

        return dispatch

    async def _handle(self, endpoint: Route, request: Request) -> None:
        headers = request.headers or {}
        started = time.perf_counter()
        outcome = "ok"
        with tracer().start_as_current_span(
            endpoint.subject, context=extract_context(headers), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                principal = await self.verifier.verify(bearer(headers.get("Authorization")))
                payload = json.loads(request.data or b"{}")
                if not isinstance(payload, dict):
                    raise SeginError("The request body must be a JSON object.", code="BAD_USER_INPUT")
                result = await endpoint.handler(principal, payload)
                body = _reply(result)
            except ValidationError as exc:
                body, outcome = _reply(error=bad_input_from(exc)), "BAD_USER_INPUT"
            except SeginError as exc:
                body, outcome = _reply(error=exc), exc.code
            except json.JSONDecodeError:
                body = _reply(error=SeginError("The request body is not JSON.", code="BAD_USER_INPUT"))
                outcome = "BAD_USER_INPUT"
            except Exception as exc:
                record_failure(span, exc)
                # The traceback's frames, never the exception's message: a database error can
                # quote the row it failed on, and logs must not carry personal data.
                log.error("endpoint failed", extra={
                    "subject": endpoint.subject, "error": type(exc).__name__,
                    "sqlstate": getattr(exc, "sqlstate", None),
                    "frames": "".join(traceback.format_tb(exc.__traceback__))[-4000:]})
                body = _reply(error=SeginError("Internal error; it has been logged.", code="INTERNAL"))
                outcome = "INTERNAL"
            log.info("request handled", extra={"subject": endpoint.subject, "outcome": outcome,
                                               "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
            try:
                await request.respond(body)
            except Exception as exc:
                log.warning("reply failed", extra={"subject": endpoint.subject, "error": type(exc).__name__})


async def call(nc: Client, subject: str, payload: dict[str, Any], token: str, *, timeout: float = 10.0) -> Any:
    """Send a request and return its ``data``; raise the remote error, or ``Unavailable``."""
    headers = inject_headers({"Authorization": f"Bearer {token}"})
    with tracer().start_as_current_span(f"request {subject}", kind=trace.SpanKind.CLIENT):
        try:
            msg = await nc.request(subject, json.dumps(payload, default=str).encode(), timeout=timeout,
                                   headers=headers)
        except (NatsTimeout, NoRespondersError, asyncio.TimeoutError) as exc:
            raise Unavailable("The service did not answer in time; retry with the same idempotency key.") from exc
        except Exception as exc:  # connection closed or reconnecting
            raise Unavailable("The message bus is unavailable; retry shortly.") from exc
    body = json.loads(msg.data)
    if "error" in body:
        raise from_dict(body["error"])
    return body.get("data")
