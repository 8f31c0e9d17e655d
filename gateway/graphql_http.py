"""GraphQL-over-HTTP media types on top of Strawberry's router.

Clients that accept ``application/graphql-response+json`` get it, with the status codes the
specification gives that type (4xx when the request itself fails: unparsable or invalid
document); others get ``application/json`` with 200, the legacy behaviour. A request error
carries no ``data`` entry, as the specification requires.

Every answer says ``Cache-Control: no-store`` (it may carry personal data), and the plain-text
refusals of Strawberry's router (body not JSON, nested too deeply, no query) become JSON errors
with the code ``BAD_REQUEST``, like every other refusal.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GRAPHQL_RESPONSE = "application/graphql-response+json"


def _wants_graphql_response(scope: Scope) -> bool:
    accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1").lower()
    return GRAPHQL_RESPONSE in accept


def _is_request_error(body: dict[str, Any]) -> bool:
    """No data at all, and errors not tied to a field path: the request never executed."""
    errors = body.get("errors") or []
    return body.get("data") is None and bool(errors) and all(not e.get("path") for e in errors)


class GraphQLHttpMiddleware:
    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._finish(scope, start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, capture)

    async def _finish(self, scope: Scope, start: Message | None, body: bytes, send: Send) -> None:
        assert start is not None
        dropped = (b"content-length", b"content-type", b"cache-control")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in dropped]
        status = start["status"]
        content_type = dict(start.get("headers", [])).get(b"content-type", b"application/json")
        if content_type.startswith(b"text/plain") and 400 <= status < 500:  # not a GraphQL request at all: keep 4xx
            message = body.decode("utf-8", "replace")[:200]
            body = json.dumps({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}).encode()
            content_type = b"application/json"
        elif content_type.startswith(b"application/json") and status in (200, 400):
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                request_error = _is_request_error(payload)
                if request_error:
                    payload.pop("data", None)
                if _wants_graphql_response(scope):
                    content_type = f"{GRAPHQL_RESPONSE}; charset=utf-8".encode()
                    status = 400 if request_error else 200
                else:
                    status = 200 if status == 400 and request_error else status
                body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store")]
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
