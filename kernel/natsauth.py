"""Who may do what on NATS: each process's credentials, and the subject permissions each role gets.

NATS is not an open bus: forged events would open cases to anyone, request headers carry bearer
tokens, and the ``REVOKED_TOKENS`` bucket decides which tokens still work. So every process
connects with credentials of its own, and each role is allowed only what it does:

- a service publishes its own events (``evt.<service>.>``) and dead letters of its own consumers,
  answers its own endpoints (``svc.<service>.>``, replies through ``allow_responses``) and its
  ``$SRV`` monitoring subjects, uses the JetStream API for its own consumers only, and reads (never
  writes) ``REVOKED_TOKENS``;
- the gateway only makes requests (``svc.>``, ``$SRV.PING``) and writes ``REVOKED_TOKENS``; it
  cannot subscribe to ``svc.>``, so only the owning service ever sees a request's token (an
  internal token valid at that service alone: ``gateway/service_tokens.py``);
- every process receives replies on an inbox prefix of its own (``_INBOX.segin-<role>``), so no
  process can read another's replies; the operator role (CLIs, provisioning) is unrestricted.

Streams and the bucket are created by the operator (``segin nats-provision``, or ``make run``),
not by services: a role able to create or update a stream could make it capture ``svc.>``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from contracts.channels import CONSUMERS, DEAD_LETTER_STREAM, SERVICES, STREAMS, dead_letter_subject, event_producer

GATEWAY = "gateway"
OPERATOR = "operator"
ROLES = (*SERVICES, GATEWAY, OPERATOR)
BUCKET = "REVOKED_TOKENS"  # kernel.denylist.BUCKET; repeated so that this module imports no NATS client
_KV_STREAM = f"KV_{BUCKET}"
_API = "$JS.API"


def inbox_prefix(connection_name: str) -> str:
    """Replies to a process arrive under this prefix; its permissions allow no other inbox."""
    return f"_INBOX.{connection_name}"


def connection_name(role: str) -> str:
    return f"segin-{role}"


def servers(url: str) -> list[str]:
    """``NATS_URL`` may list several servers of a cluster, separated by commas."""
    found = [part.strip() for part in url.split(",") if part.strip()]
    if not found:
        raise ValueError("NATS_URL names no server")
    return found


def redact(url: str) -> str:
    """A NATS (or any) URL list fit for logs: user and password removed."""
    out = []
    for part in servers(url):
        split = urlsplit(part)
        host = split.hostname or ""
        netloc = f"{host}:{split.port}" if split.port else host
        out.append(urlunsplit(split._replace(netloc=netloc)) if split.netloc else part)
    return ",".join(out)


@dataclass(frozen=True)
class NatsAuth:
    """A process's NATS credentials: a user and password, or a ``.creds`` file (JWT + nkey seed) for
    production accounts; optionally TLS (a CA to trust, and a client certificate for mutual TLS)."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_env(cls) -> "NatsAuth":
        get = os.environ.get
        return cls(user=get("NATS_USER") or None, password=get("NATS_PASSWORD") or None,
                   creds=get("NATS_CREDS") or None, tls_ca=get("NATS_TLS_CA") or None,
                   tls_cert=get("NATS_TLS_CERT") or None, tls_key=get("NATS_TLS_KEY") or None)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        options: dict[str, Any] = {}
        if self.creds:
            options["user_credentials"] = self.creds
        elif self.user:
            options.update(user=self.user, password=self.password or "")
        if self.tls_ca or self.tls_cert:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            options["tls"] = context
        return options

    def env(self) -> dict[str, str]:
        """The environment variables that give a child process these credentials."""
        names = {"NATS_USER": self.user, "NATS_PASSWORD": self.password, "NATS_CREDS": self.creds,
                 "NATS_TLS_CA": self.tls_ca, "NATS_TLS_CERT": self.tls_cert, "NATS_TLS_KEY": self.tls_key}
        return {name: value or "" for name, value in names.items()}


# --- permissions ----------------------------------------------------------------------------------


def _revocation_reader() -> list[str]:
    """Watching the bucket: its stream info, an ephemeral ordered consumer, flow-control replies."""
    return [f"{_API}.STREAM.INFO.{_KV_STREAM}", f"{_API}.CONSUMER.CREATE.{_KV_STREAM}",
            f"{_API}.CONSUMER.CREATE.{_KV_STREAM}.>", f"{_API}.CONSUMER.INFO.{_KV_STREAM}.*",
            f"$JS.FC.{_KV_STREAM}.>"]


def _durable(stream: str, durable: str) -> list[str]:
    """One durable pull consumer: create it (2.9+ and legacy subjects), look at it, fetch, ack."""
    return [f"{_API}.CONSUMER.INFO.{stream}.{durable}",
            f"{_API}.CONSUMER.CREATE.{stream}.{durable}", f"{_API}.CONSUMER.CREATE.{stream}.{durable}.>",
            f"{_API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"{_API}.CONSUMER.MSG.NEXT.{stream}.{durable}", f"$JS.ACK.{stream}.{durable}.>"]


def permissions(role: str) -> dict[str, Any] | None:
    """The nats-server ``permissions`` block of a role; None for the unrestricted operator."""
    if role == OPERATOR:
        return None
    inbox = f"{inbox_prefix(connection_name(role))}.>"
    if role == GATEWAY:
        # Writes entries, never creates the bucket's stream: a missing stream created by the gateway
        # could be made to capture ``svc.>`` (every forwarded request); the operator provisions it.
        publish = ["svc.>", "$SRV.PING.*", f"$KV.{BUCKET}.>", *_revocation_reader()]
        return {"publish": {"allow": publish}, "subscribe": {"allow": [inbox]}}
    if role not in SERVICES:
        raise ValueError(f"unknown NATS role {role!r}")
    own_streams = [s.name for s in STREAMS if any(event_producer(subject) == role for subject in s.subjects)]
    publish = [f"evt.{role}.>", *_revocation_reader()]
    publish += [f"{_API}.STREAM.INFO.{name}" for name in [*own_streams, DEAD_LETTER_STREAM.name]]
    for consumer in CONSUMERS:
        if consumer.service == role:
            publish += [dead_letter_subject(consumer.durable), *_durable(consumer.stream, consumer.durable)]
    monitoring = [f"$SRV.{verb}" for verb in ("PING", "INFO", "STATS")]
    monitoring += [f"$SRV.*.{connection_name(role)}", f"$SRV.*.{connection_name(role)}.*"]
    return {"publish": {"allow": publish}, "subscribe": {"allow": [f"svc.{role}.>", *monitoring, inbox]},
            "allow_responses": True}


def authorization(passwords: dict[str, str]) -> dict[str, Any]:
    """The ``authorization`` block of a nats-server configuration: one user per role."""
    users = []
    for role, password in passwords.items():
        user: dict[str, Any] = {"user": role, "password": password}
        perms = permissions(role)
        if perms is not None:
            user["permissions"] = perms
        users.append(user)
    return {"users": users}
