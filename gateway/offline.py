"""Plain HTTP routes for offline capture: ``/offline/…`` (docs/offline-capture.md).

- ``GET /offline/arrival-form.xlsx``: the arrival XLSForm (``contracts/xlsform.py``) to upload to
  KoboToolbox or ODK Central. Public: it holds no personal data (questions, codes and region names), and
  Kobo's "import from URL" cannot send credentials.
- ``POST /offline/kobo/submissions``: what a KoboToolbox REST service posts (JSON format), one submission a
  request. Authenticated per organisation: HTTP Basic with one of the organisation's OAuth clients
  (``client_id:client_secret``, the client-credentials grant is run for it, so a revoked client or a
  wrong secret is refused exactly as at ``/oauth/token``, and failures are throttled the same way), or a
  bearer token. 201: registered; 200: already registered (the same case id, so Kobo stops retrying);
  422: rejected (the reasons by form question; kept and listed by ``offlineSubmissions``).
- ``POST /offline/sync``: a batch of offline commands for clients other than Kobo (bearer token), the
  request and answer of ``svc.intake.sync`` as JSON (snake_case), the same as the ``syncOffline`` mutation.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from contracts import xlsform
from contracts.commands import SYNC_MAX_ITEMS
from gateway.addresses import source_of
from gateway.auth.throttle import log_failure
from kernel import rpc
from kernel.errors import SeginError, Unauthenticated
from kernel.tokens import Principal, bearer

_STATUS = {"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "INSUFFICIENT_SCOPE": 403, "FORBIDDEN": 403,
           "NOT_FOUND": 404, "CONFLICT": 409, "RATE_LIMITED": 429, "UNAVAILABLE": 503}
_SUBMISSION_STATUS = {"ACCEPTED": 201, "DUPLICATE": 200, "REJECTED": 422}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOKEN_MARGIN = 60  # a cached token is not used in its last minute
MAX_CACHED = 1000


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _refusal(exc: SeginError, challenge: str) -> JSONResponse:
    status = _STATUS.get(exc.code, 500)
    headers = {"WWW-Authenticate": challenge} if status == 401 else {}
    return _answer({"error": exc.to_dict()}, status, headers)


class ClientTokens:
    """Access tokens obtained for (client id, secret) pairs presented with HTTP Basic, reused until shortly
    before they expire: Kobo sends one request per submission, and a secret check costs an argon2 hash.
    Keyed by a hash of the secret, never the secret; every use is verified again (revocation applies)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, client_id: str, secret: str) -> str | None:
        found = self._tokens.get((client_id, hashlib.sha256(secret.encode()).hexdigest()))
        return found[0] if found and found[1] - TOKEN_MARGIN > time.time() else None

    def put(self, client_id: str, secret: str, token: str, expires_in: int) -> None:
        if len(self._tokens) >= MAX_CACHED:
            self._tokens.clear()
        self._tokens[(client_id, hashlib.sha256(secret.encode()).hexdigest())] = (token, time.time() + expires_in)


def router(state: dict[str, Any], timeout: float) -> APIRouter:
    """The ``/offline`` routes; ``state`` holds the gateway's verifier, authorization server, NATS connection,
    internal-token minter and failure throttle."""
    api = APIRouter(prefix="/offline")
    tokens = ClientTokens()

    async def basic_principal(request: Request, client_id: str, secret: str) -> Principal:
        """The client's organisation, as a client-credentials token for it would name it."""
        source, guard = source_of(request), state["clients"]
        if guard.retry_after(client_id, source):
            raise SeginError("Too many failed attempts; retry later.", code="RATE_LIMITED")
        token = tokens.get(client_id, secret)
        if token is None:
            oauth_request = {"method": "POST", "url": str(request.url), "headers": request.headers,
                             "form": [("grant_type", "client_credentials")]}
            status, body, _ = await run_in_threadpool(state["oauth"].create_token_response, oauth_request)
            if status != 200 or not isinstance(body, dict) or "access_token" not in body:
                guard.failed(client_id, source)
                log_failure("offline_kobo", request.client.host if request.client else "unknown", "invalid_client")
                raise Unauthenticated("Client authentication failed.")
            guard.succeeded(client_id, source)
            token = str(body["access_token"])
            tokens.put(client_id, secret, token, int(body.get("expires_in", 0)))
        return await state["verifier"].verify(token)

    async def caller(request: Request, *, basic: bool) -> Principal:
        client_id, secret = extract_basic_authorization(request.headers) if basic else (None, None)
        if client_id and secret:
            return await basic_principal(request, client_id, secret)
        return await state["verifier"].verify(bearer(request.headers.get("authorization")))

    async def body_object(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise SeginError("The request body is not JSON.", code="BAD_USER_INPUT") from None
        if not isinstance(body, dict):
            raise SeginError("The request body must be a JSON object.", code="BAD_USER_INPUT")
        return body

    async def ask(principal: Principal, subject: str, payload: dict[str, Any]) -> Any:
        internal = state["service_tokens"].for_subject(principal, subject)
        return await rpc.call(state["nats"], subject, payload, internal, timeout=timeout)

    form: list[bytes] = []  # made once: anyone may ask for it, and making it costs ~60 ms of CPU

    @api.get("/arrival-form.xlsx")
    async def arrival_form() -> Response:
        if not form:
            form.append(await run_in_threadpool(xlsform.workbook_bytes))
        return Response(form[0], media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="segin-arrival-{xlsform.form_version()}.xlsx"',
            "Cache-Control": "public, max-age=300"})

    @api.post("/kobo/submissions")
    async def kobo_submission(request: Request) -> JSONResponse:
        try:
            principal = await caller(request, basic=True)
            submission = await body_object(request)
            result = await ask(principal, "svc.intake.offline_submission", {"source": "KOBO", "submission": submission})
        except SeginError as exc:
            return _refusal(exc, 'Basic realm="segin"')
        return _answer(result, _SUBMISSION_STATUS.get(result.get("status"), 200))

    async def unknown_recipients(item: Any) -> bool:
        """An arrival whose consent names an organisation the registry does not know (the gateway's check)."""
        consent = (item.get("arrival") or {}).get("consent") if isinstance(item, dict) else None
        named = consent.get("recipient_org_ids") if isinstance(consent, dict) else None
        if not isinstance(named, list):
            return False
        for org_id in named[:50]:
            if not isinstance(org_id, str) or await state["registry"].organisation(org_id) is None:
                return True
        return False

    @api.post("/sync")
    async def sync(request: Request) -> JSONResponse:
        try:
            principal = await caller(request, basic=False)
            batch = await body_object(request)
            items = batch.get("items")
            local: dict[int, dict[str, Any]] = {}
            if isinstance(items, list) and len(items) <= SYNC_MAX_ITEMS:
                for index, item in enumerate(items):
                    if await unknown_recipients(item):
                        local[index] = {"client_id": str(item.get("client_id")), "status": "REJECTED", "case_id": None,
                                        "version": None, "errors": [{
                                            "code": "BAD_USER_INPUT", "message": "unknown organisation",
                                            "field": "arrival.consent.recipient_org_ids"}]}
                if local and len(local) == len(items):
                    return _answer({"results": [local[i] for i in range(len(items))]})
                batch = {**batch, "items": [item for i, item in enumerate(items) if i not in local]}
            result = await ask(principal, "svc.intake.sync", batch)
        except SeginError as exc:
            return _refusal(exc, "Bearer")
        if local:
            answered = iter(result["results"])
            result = {"results": [local[i] if i in local else next(answered) for i in range(len(items))]}
        return _answer(result)

    return api
