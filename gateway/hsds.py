"""A read-only Open Referral HSDS 3 API over the service directory: ``/hsds/…``.

Other directories and referral tools speak HSDS; this lets them read Segin's with no adapter.
The referral service owns the directory and builds the HSDS documents (``svc.referral.hsds_*``);
this module only authenticates the caller, asks, and answers with HSDS status codes. A bearer
token with ``directory:read`` is required, unlike most public HSDS feeds: the directory lists
shelters and GBV services whose addresses must not be public, and what a token may see is the
directory's rule (sensitive categories need their scope). Paging is HSDS's: ``page`` (from 1) and
``per_page``; answers carry ``total_items``, ``total_pages``, ``page_number``, ``size``,
``first_page``, ``last_page``, ``empty`` and ``contents``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kernel import rpc
from kernel.errors import SeginError
from kernel.tokens import bearer

HSDS_VERSION = "3.1"
PROFILE = "https://docs.openreferral.org/en/latest/hsds/overview.html"
_STATUS = {"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "INSUFFICIENT_SCOPE": 403, "FORBIDDEN": 403,
           "NOT_FOUND": 404, "UNAVAILABLE": 503}
_PAGING = ("page", "per_page", "organization_id")


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _refusal(exc: SeginError, token_sent: bool) -> JSONResponse:
    status = _STATUS.get(exc.code, 500)
    headers = {}
    if status == 401:  # RFC 6750 §3.1: no error code when no credentials were sent at all
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if token_sent else "Bearer"
    return _answer({"error": exc.to_dict()}, status, headers)


def router(state: dict[str, Any], timeout: float) -> APIRouter:
    """The ``/hsds`` routes; ``state`` holds the gateway's verifier, NATS connection and internal-token minter."""
    api = APIRouter(prefix="/hsds")

    async def ask(request: Request, subject: str, payload: dict[str, Any]) -> JSONResponse:
        token = bearer(request.headers.get("authorization"))
        try:
            principal = await state["verifier"].verify(token)
            internal = state["service_tokens"].for_subject(principal, subject)
            return _answer(await rpc.call(state["nats"], subject, payload, internal, timeout=timeout))
        except SeginError as exc:
            return _refusal(exc, token_sent=token is not None)

    def paging(request: Request) -> dict[str, Any]:
        """Query parameters as given: the service's request model validates them and names the one at fault."""
        return {k: v for k, v in request.query_params.items() if k in _PAGING}

    @api.get("/")
    async def about() -> JSONResponse:
        """HSDS's required meta endpoint: which version this API speaks."""
        return _answer({"version": HSDS_VERSION, "profile": PROFILE,
                        "description": "Segin: the national referral network's service directory (Mali). "
                                       "Bearer token with directory:read required."})

    @api.get("/services")
    async def services(request: Request) -> JSONResponse:
        return await ask(request, "svc.referral.hsds_services", paging(request))

    @api.get("/services/{service_id}")
    async def service(request: Request, service_id: str) -> JSONResponse:
        return await ask(request, "svc.referral.hsds_service", {"id": service_id})

    @api.get("/organizations")
    async def organizations(request: Request) -> JSONResponse:
        return await ask(request, "svc.referral.hsds_organizations", paging(request))

    @api.get("/organizations/{organization_id}")
    async def organization(request: Request, organization_id: str) -> JSONResponse:
        return await ask(request, "svc.referral.hsds_organization", {"id": organization_id})

    return api
