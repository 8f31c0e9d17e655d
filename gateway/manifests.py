"""``POST /manifests``: a passenger list uploaded without GraphQL (curl, a spreadsheet macro, a sender's script).

The file comes as ``multipart/form-data`` (part ``file``) or as the whole body (``Content-Type: text/csv``
or the XLSX media type); the other fields come as form fields or query parameters:
``groupId`` for an existing group, or ``kind``, ``reference``, ``arrivalDate``, ``arrivalPoint`` and
``countryReturnedFrom`` to create it (with ``idempotencyKey``; without one, the key is derived from
the file and the group's fields, so posting the same thing twice creates one group); ``sender``; and
``mapping`` (JSON: ``[{"column": "...", "field": "FAMILY_NAME"}]`` or ``{"Patronyme": "FAMILY_NAME"}``).
A bearer token with ``cases:write``, as for GraphQL. The answer is JSON: ``{"groupId": …, "result": …}``
(what the upload did, as uploadManifest answers it, with the same camelCase names), or
``{"error": {code, message, field, problems}}``.
See docs/manifests.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from graphql import GraphQLError
from starlette.datastructures import UploadFile

from contracts import commands
from gateway.graphql_context import Context, camel
from gateway.reception import create_group, upload
from kernel.errors import SeginError, Unauthenticated
from kernel.tokens import bearer

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RAW_TYPES = ("text/csv", "text/plain", XLSX, "application/octet-stream")
GROUP_FIELDS = {"kind": "kind", "reference": "reference", "arrivalDate": "arrival_date",
                "arrivalPoint": "arrival_point", "countryReturnedFrom": "country_returned_from"}
_STATUS = {"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "INSUFFICIENT_SCOPE": 403, "FORBIDDEN": 403,
           "NOT_FOUND": 404, "CONFLICT": 409, "IDEMPOTENCY_KEY_REUSED": 409, "UNAVAILABLE": 503,
           "QUERY_TOO_COMPLEX": 400}
MAX_CALLS = 2  # create the group, upload


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _error(code: str, message: str, field: str | None = None, problems: list[Any] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"code": code, "message": message, "field": field, **({"problems": problems} if problems else {})}
    return _answer({"error": body}, _STATUS.get(code, 500), headers)


def _camel(value: Any) -> Any:
    """Keys as GraphQL spells them (``rejected_rows`` → ``rejectedRows``): one vocabulary for both routes."""
    if isinstance(value, dict):
        return {camel(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _mapping(raw: str | None) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise SeginError("mapping is not JSON.", field="mapping", code="BAD_USER_INPUT") from None
    if isinstance(value, dict):
        value = [{"column": k, "field": v} for k, v in value.items()]
    if not isinstance(value, list):
        raise SeginError("mapping must be a list of {column, field} or an object header → field.", field="mapping",
                         code="BAD_USER_INPUT")
    return value


async def _read(request: Request) -> tuple[bytes, str | None, dict[str, str]]:
    """The file's bytes, its name, and the other fields (query parameters, then form fields over them)."""
    fields = dict(request.query_params)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=20)
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise SeginError("Send the manifest as the multipart part named 'file'.", field="file",
                             code="BAD_USER_INPUT")
        fields |= {k: v for k, v in form.items() if isinstance(v, str)}
        return await part.read(commands.MAX_MANIFEST_BYTES + 1), part.filename, fields
    if media in RAW_TYPES:
        return await request.body(), fields.get("filename"), fields
    raise SeginError(f"Send the manifest as multipart/form-data (part 'file'), text/csv or {XLSX}.",
                     field="file", code="BAD_USER_INPUT")


def router(state: dict[str, Any], timeout: float) -> APIRouter:
    """``state`` holds the gateway's verifier, NATS connection, registry and internal-token minter."""
    api = APIRouter()

    @api.post("/manifests")
    async def post_manifest(request: Request) -> JSONResponse:
        token = bearer(request.headers.get("authorization"))
        try:
            principal = await state["verifier"].verify(token)
        except Unauthenticated as exc:
            return _error(exc.code, exc.message, headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"' if token else "Bearer"})
        ctx = Context(principal=principal, nats=state["nats"], registry=state["registry"],
                      service_tokens=state["service_tokens"], timeout=timeout, max_calls=MAX_CALLS)
        try:
            content, filename, fields = await _read(request)
            group_id = fields.get("groupId")
            if not group_id:
                given = {name: fields.get(param) for param, name in GROUP_FIELDS.items()}
                key = fields.get("idempotencyKey") or "manifest-" + hashlib.sha256(
                    content + json.dumps(given, sort_keys=True).encode()).hexdigest()[:48]
                group_id = (await create_group(ctx, given, key)).id
            result = await upload(ctx, group_id, fields.get("sender") or "", content,
                                  filename[:100] if filename else None, _mapping(fields.get("mapping")))
        except SeginError as exc:
            return _error(exc.code, exc.message, exc.field, exc.problems)
        except GraphQLError as exc:  # a refusal as the GraphQL resolvers raise it: same code, field and problems
            extensions = exc.extensions or {}
            field = extensions.get("field")
            return _error(str(extensions.get("code", "BAD_USER_INPUT")), exc.message,
                          field.removeprefix("input.") if isinstance(field, str) else None,
                          extensions.get("problems"))
        return _answer({"groupId": group_id, "result": _camel(result.model_dump(mode="json"))})

    return api
