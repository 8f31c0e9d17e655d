"""Who is calling: the socket peer, unless that peer is a proxy the operator named.

Forwarding headers (``X-Forwarded-For``/``-Proto``) are written by whoever sends the request, so
they are believed only from the addresses in ``SEGIN_FORWARDED_ALLOW_IPS`` (empty by default: the
headers are ignored). Otherwise any caller could pick a new address per request and escape every
per-address limit. The throttles key on :func:`source_of`, which groups an IPv6 caller's /64: one
subscriber usually holds a whole /64 and could otherwise change address as freely.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

IPV6_SOURCE_PREFIX = 64
FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
log = logging.getLogger(__name__)


def trusted_proxies(values: Iterable[str]) -> list[str]:
    """The configured proxy addresses or networks, checked at start (a typo must not pass silently)."""
    trusted = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        try:
            trusted.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            raise ValueError(f"SEGIN_FORWARDED_ALLOW_IPS: '{value}' is not an IP address or network"
                             " ('*' is refused: name the proxies)") from None
    return trusted


def trust_forwarding_from(app: FastAPI, values: Iterable[str]) -> None:
    """Rewrite the client address from forwarding headers, only for requests from configured proxies."""
    trusted = trusted_proxies(values)
    if trusted:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
    else:
        app.add_middleware(ForwardingHeadersWarning)


class ForwardingHeadersWarning:
    """With no proxy configured, says once per process that forwarding headers arrive and are ignored.

    Behind a reverse proxy the operator has not named, every caller shares the proxy's address and
    its budget of failures: a few callers' mistakes would refuse everyone. The line names the
    setting, never an address or a header's value.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.warned and scope["type"] == "http" and any(
                name in FORWARDING_HEADERS for name, _ in scope.get("headers", ())):
            self.warned = True
            log.warning("forwarding headers ignored: SEGIN_FORWARDED_ALLOW_IPS is unset, so every caller"
                        " behind a proxy shares the proxy's address and its budget of failures",
                        extra={"event": "proxy.headers_ignored", "setting": "SEGIN_FORWARDED_ALLOW_IPS"})
        await self.app(scope, receive, send)


def source_of(request: Request) -> str:
    """The caller's address as the throttles count it: an IPv4 address, or an IPv6 /64 network."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_SOURCE_PREFIX}", strict=False))
    return str(address)
