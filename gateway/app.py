"""The gateway process: OAuth 2.0 endpoints, JWKS and metadata, GraphQL, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from joserfc.jwk import KeySet
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.concurrency import run_in_threadpool
from strawberry.fastapi import GraphQLRouter

from contracts.channels import REQUESTS
from gateway import keys as signing
from gateway.graphql_http import GraphQLHttpMiddleware
from gateway.oauth import AuthorizationServer, metadata, open_sync_pool
from gateway.registry import Registry
from gateway.schema import Context, schema
from kernel.bus import connect
from kernel.config import Settings
from kernel.db import migrate, open_pool
from kernel.errors import Unauthenticated
from kernel.logs import setup_logging
from kernel.telemetry import setup_telemetry
from kernel.tokens import TokenVerifier, bearer

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "gateway"


class AuthFailure(Exception):
    def __init__(self, message: str, token_sent: bool) -> None:
        self.message, self.token_sent = message, token_sent


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    setup_logging("gateway", settings.log_level)
    setup_telemetry("gateway")
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url, SCHEMA, MIGRATIONS)
        pool = await open_pool(settings.database_url)
        async with pool.connection() as conn, conn.transaction():
            keys = await signing.load_or_create(conn)
        sync_pool = await asyncio.to_thread(open_sync_pool, settings.database_url)
        nc = await connect(settings.nats_url, "segin-gateway")

        async def local_keys() -> KeySet:
            return keys.public

        state.update(
            pool=pool, keys=keys, nats=nc, registry=Registry(pool),
            oauth=AuthorizationServer(sync_pool, keys, settings.issuer, settings.audience),
            verifier=TokenVerifier(local_keys, settings.issuer, settings.audience),
        )
        yield
        await nc.drain()
        await pool.close()
        await asyncio.to_thread(sync_pool.close)

    app = FastAPI(title="Segin gateway", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(AuthFailure)
    async def auth_failure(request: Request, exc: AuthFailure) -> JSONResponse:
        return JSONResponse(
            {"errors": [{"message": exc.message, "extensions": {"code": "UNAUTHENTICATED"}}]},
            status_code=401,
            # RFC 6750 §3.1: no error code when no credentials were sent at all.
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"' if exc.token_sent else "Bearer"},
        )

    async def get_context(request: Request) -> Context:
        token = bearer(request.headers.get("authorization"))
        try:
            principal = await state["verifier"].verify(token)
        except Unauthenticated as exc:
            raise AuthFailure(exc.message, token_sent=token is not None) from None
        return Context(principal=principal, nats=state["nats"], registry=state["registry"],
                       timeout=settings.request_timeout)

    app.include_router(GraphQLRouter(schema, context_getter=get_context, graphql_ide=None), prefix="/graphql")

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        oauth_request = {"method": "POST", "url": str(request.url), "headers": request.headers,
                         "form": {k: v for k, v in form.items() if isinstance(v, str)}}
        status, body, headers = await run_in_threadpool(state["oauth"].create_token_response, oauth_request)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/.well-known/oauth-authorization-server")
    async def authorization_server_metadata() -> dict[str, Any]:
        return metadata(settings.issuer)

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return state["keys"].jwks()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready when the database answers and every service answers a NATS micro ping."""
        checks: dict[str, str] = {}
        try:
            async with state["pool"].connection() as conn:
                await conn.execute("select 1")
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unavailable"
        for service in sorted({c.subject.split(".")[1] for c in REQUESTS}):
            try:
                await state["nats"].request(f"$SRV.PING.segin-{service}", b"", timeout=2)
                checks[service] = "ok"
            except Exception:
                checks[service] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    app.add_middleware(GraphQLHttpMiddleware)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    return app
