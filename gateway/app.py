"""The gateway process: OAuth 2.0 / OpenID Connect endpoints, JWKS and metadata, GraphQL, health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from joserfc.jwk import KeySet
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.concurrency import run_in_threadpool

from contracts.channels import REQUESTS
from gateway import hsds, manifests, offline
from gateway import keys as signing
from gateway.addresses import source_of, trust_forwarding_from
from gateway.auth.discovery import metadata, openid_configuration
from gateway.auth.known import KnownSources
from gateway.auth.login import LoginFlow, load_secret
from gateway.auth.revocation import Publisher
from gateway.auth.server import AuthorizationServer
from gateway.auth.throttle import FailureThrottle, GuessGuard, client_fields, log_failure, log_throttled
from gateway.graphql_http import GraphQLHttpMiddleware
from gateway.limits import BodyLimitMiddleware, LimitedGraphQLRouter
from gateway.registry import Registry
from gateway.schema import LIMITS, Context, schema
from gateway.service_tokens import ServiceTokens
from gateway.store import SyncPool, open_sync_pool
from gateway.store.connections import ping
from kernel.bus import connect
from kernel.config import Settings
from kernel.db import migrate, open_pool
from kernel.denylist import DenyList
from kernel.errors import Unauthenticated
from kernel.logs import setup_logging
from kernel.periodic import every
from kernel.telemetry import setup_telemetry
from kernel.tokens import TokenVerifier, bearer

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "gateway"
log = logging.getLogger(__name__)
OAuthCall = Callable[[dict[str, Any]], tuple[int, Any, dict[str, str]]]


class AuthFailure(Exception):
    def __init__(self, message: str, token_sent: bool) -> None:
        self.message, self.token_sent = message, token_sent


def _reload_keys(pool: SyncPool, keyring: signing.KeyRing) -> bool:
    with pool.connection() as conn:
        return keyring.reload(conn)


def _load_keys(pool: SyncPool) -> signing.SigningKeys:
    with pool.connection() as conn:
        return signing.load_or_create(conn)


def _no_query_in_spans(span: Any, scope: dict[str, Any]) -> None:
    """A GET /graphql carries the document in its query string: spans keep the path only."""
    if span is not None and span.is_recording() and scope.get("query_string"):
        path = scope.get("path", "")
        span.set_attributes({"http.url": path, "http.target": path, "url.full": path, "url.query": ""})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    setup_logging("gateway", settings.log_level)
    setup_telemetry("gateway")
    state: dict[str, Any] = {}
    # Failed authentications: per address (guessing anything; shared with the sign-in page) and per
    # (client id, address); never per client id alone, which anyone could use to lock a client out.
    per_ip = FailureThrottle(settings.auth_failures_per_ip, 300.0)
    clients = GuessGuard(per_ip)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url, SCHEMA, MIGRATIONS)
        pool = await open_pool(settings.database_url)
        sync_pool = await asyncio.to_thread(open_sync_pool, settings.database_url)
        keyring = signing.KeyRing(await asyncio.to_thread(_load_keys, sync_pool))
        nc = await connect(settings.nats_url, "segin-gateway", settings.nats_auth)
        stop = asyncio.Event()
        denylist = DenyList()
        watcher = await denylist.start(nc.jetstream(timeout=10), stop, replicas=settings.stream_replicas)
        publisher = Publisher(denylist, pool, nc, replicas=settings.stream_replicas)
        await publisher.republish_live()

        async def local_keys() -> KeySet:
            """Keys for the gateway's own verifier: reloaded from the database on an unknown kid."""
            await asyncio.to_thread(_reload_keys, sync_pool, keyring)
            return keyring.public

        async def reload_keys() -> None:
            if await asyncio.to_thread(_reload_keys, sync_pool, keyring):
                log.info("signing key changed", extra={"kid": keyring.current.kid})

        verifier = TokenVerifier(local_keys, settings.issuer, settings.audience, denylist=denylist)
        oauth = AuthorizationServer(sync_pool, keyring, settings.issuer, settings.audience, verifier,
                                    publisher.apply_locally)
        secret = await asyncio.to_thread(load_secret, sync_pool)
        state.update(
            pool=pool, keys=keyring, nats=nc, registry=Registry(pool), oauth=oauth, verifier=verifier,
            publisher=publisher, secret=secret, known=KnownSources(sync_pool, secret),
            service_tokens=ServiceTokens(keyring, settings.issuer),
            login=LoginFlow(oauth, sync_pool, secret, settings.issuer, per_ip,
                            secure_cookie=settings.issuer.startswith("https://")),
        )
        tasks = [watcher, asyncio.create_task(publisher.run(stop), name="revocations"),
                 asyncio.create_task(every(signing.RELOAD_EVERY, stop, reload_keys, name="key-reload"), name="key-reload")]
        yield
        stop.set()
        await asyncio.wait(tasks, timeout=5)
        await nc.drain()
        await pool.close()
        await asyncio.to_thread(sync_pool.close)

    # No /docs, /redoc or /openapi.json: the public API is GraphQL, described by contracts/schema.graphql.
    app = FastAPI(title="Segin gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

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
                       service_tokens=state["service_tokens"], timeout=settings.request_timeout,
                       max_calls=LIMITS.max_service_calls)

    # No subscriptions exist: no WebSocket transport, which would bypass the HTTP body limit.
    # Multipart requests carry manifest uploads (uploadManifest): safe from cross-site request forgery because
    # every call is authenticated by a bearer token in a header, never by a cookie (gateway/reception.py).
    router = LimitedGraphQLRouter(schema, context_getter=get_context, graphql_ide=None, subscription_protocols=(),
                                  multipart_uploads_enabled=True)
    router.max_json_depth = LIMITS.max_json_depth
    app.include_router(router, prefix="/graphql")
    app.include_router(hsds.router(state, settings.request_timeout))  # read-only HSDS 3 API (gateway/hsds.py)
    state["clients"] = clients  # the failure throttle the offline routes' HTTP Basic shares with /oauth/token
    app.include_router(offline.router(state, settings.request_timeout))  # Kobo/ODK, sync, the XLSForm
    app.include_router(manifests.router(state, settings.request_timeout))  # POST /manifests (gateway/manifests.py)

    async def publish_revocations() -> None:
        """Tell every process now; if NATS is unreachable, the background loop retries."""
        try:
            await state["publisher"].publish_pending()
        except Exception as exc:
            log.warning("revocations not published yet; retrying", extra={"error": type(exc).__name__})

    async def logged(client_id: str) -> dict[str, str]:
        """A registered client is named in logs; anything else (a secret typed in the wrong field?) is not."""
        registered = bool(client_id) and await run_in_threadpool(state["oauth"].is_registered, client_id)
        return client_fields(state["secret"], client_id, registered)

    async def oauth_endpoint(request: Request, endpoint: str, call: OAuthCall) -> JSONResponse:
        """Run one of authlib's token-style endpoints in a worker thread, throttling repeated failures."""
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        basic_id, basic_secret = extract_basic_authorization(request.headers)
        client_id = (basic_id or dict(form).get("client_id") or "")[:128]
        secret_sent = bool(basic_secret if basic_id else dict(form).get("client_secret"))
        ip = request.client.host if request.client else "unknown"
        source = source_of(request)
        retry_after = clients.retry_after(client_id, source)
        if (retry_after and client_id and clients.retry_after(client_id, source, known=True) is None
                and await run_in_threadpool(state["known"].known, "client", client_id, source)):
            retry_after = None  # only the address's budget refuses, and this client works from here
        if retry_after:
            log_throttled(endpoint, ip, retry_after, **await logged(client_id))
            return JSONResponse({"error": "temporarily_unavailable",
                                 "error_description": f"Too many failed attempts; retry after {retry_after} s."},
                                status_code=429, headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"})
        oauth_request = {"method": "POST", "url": str(request.url), "headers": request.headers, "form": form}
        status, body, headers = await run_in_threadpool(call, oauth_request)
        error = body.get("error") if isinstance(body, dict) else None
        if error in ("invalid_client", "invalid_grant"):
            # A wrong code or refresh token is not a guess at the client's secret: the address pays.
            clients.failed(client_id if error == "invalid_client" else None, source)
            log_failure(endpoint, ip, error, **await logged(client_id))
            if error == "invalid_grant":
                await publish_revocations()  # a replayed code or refresh token revokes its grant
        elif status == 200 and client_id:
            clients.succeeded(client_id, source)
            if endpoint == "token" or secret_sent:  # a public client's id alone at /revoke proves nothing
                await run_in_threadpool(state["known"].remember, "client", client_id, source)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        return await oauth_endpoint(request, "token", state["oauth"].create_token_response)

    @app.post("/oauth/introspect")
    async def introspect(request: Request) -> JSONResponse:
        """RFC 7662: a client learns about tokens of its own organisation only."""
        return await oauth_endpoint(request, "introspect",
                                    lambda r: state["oauth"].create_endpoint_response("introspection", r))

    @app.post("/oauth/revoke")
    async def revoke(request: Request) -> JSONResponse:
        """RFC 7009: the token stops working at once here, and in every service within moments."""
        response = await oauth_endpoint(request, "revoke",
                                        lambda r: state["oauth"].create_endpoint_response("revocation", r))
        if response.status_code == 200:
            await publish_revocations()
        return response

    @app.get("/oauth/authorize")
    async def authorize(request: Request) -> Response:
        return await state["login"].show(request)

    @app.post("/oauth/authorize")
    async def sign_in(request: Request) -> Response:
        return await state["login"].submit(request)

    @app.get("/.well-known/oauth-authorization-server")
    async def authorization_server_metadata() -> dict[str, Any]:
        return metadata(settings.issuer)

    @app.get("/.well-known/openid-configuration")
    async def openid_provider_metadata() -> dict[str, Any]:
        return openid_configuration(settings.issuer)

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
            await ping(state["pool"])
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

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMITS.max_body_bytes)
    app.add_middleware(GraphQLHttpMiddleware)  # outer to the body limit: its no-store covers the 413 too
    trust_forwarding_from(app, settings.forwarded_allow_ips)  # outermost: every part sees the same address
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz", server_request_hook=_no_query_in_spans)
    return app
