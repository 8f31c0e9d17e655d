"""Configuration read from the environment, once, at process start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from kernel.natsauth import NatsAuth


@dataclass(frozen=True)
class Settings:
    """Everything a Segin process needs to find its peers.

    Only URLs and names live here; secrets (signing keys, client secrets) are generated
    at first start and kept in the database, never in the environment by default.
    """

    database_url: str
    nats_url: str
    issuer: str
    audience: str
    jwks_url: str
    log_level: str
    request_timeout: float
    stream_replicas: int
    auth_failures_per_ip: int
    coordinator_org_id: str = "dgme"  # the coordinating body: told of unmet needs and escalations
    forwarded_allow_ips: tuple[str, ...] = ()  # proxies whose X-Forwarded-For is believed (gateway)
    nats_auth: NatsAuth = field(default_factory=NatsAuth)  # NATS_USER/NATS_PASSWORD or NATS_CREDS, NATS_TLS_*

    @classmethod
    def from_env(cls) -> "Settings":
        issuer = os.environ.get("SEGIN_ISSUER", "http://127.0.0.1:8000").rstrip("/")
        return cls(
            database_url=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/segin"),
            nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
            issuer=issuer,
            audience=os.environ.get("SEGIN_AUDIENCE", "segin-api"),
            jwks_url=os.environ.get("SEGIN_JWKS_URL", f"{issuer}/.well-known/jwks.json"),
            log_level=os.environ.get("SEGIN_LOG_LEVEL", "INFO"),
            request_timeout=float(os.environ.get("SEGIN_REQUEST_TIMEOUT", "10")),
            stream_replicas=int(os.environ.get("SEGIN_STREAM_REPLICAS", "1")),
            auth_failures_per_ip=int(os.environ.get("SEGIN_AUTH_FAILURES_PER_IP", "100")),
            forwarded_allow_ips=tuple(
                v.strip() for v in os.environ.get("SEGIN_FORWARDED_ALLOW_IPS", "").split(",") if v.strip()),
            coordinator_org_id=coordinator_org_id(),
            nats_auth=NatsAuth.from_env(),
        )


def coordinator_org_id() -> str:
    """The coordinating body (``SEGIN_COORDINATOR_ORG``, default ``dgme``): told of unmet needs and
    escalations, sees every organisation's overdue counts. Read at each use, not cached."""
    return os.environ.get("SEGIN_COORDINATOR_ORG", "dgme")


DEFAULT_PLAN_DUE_DAYS = 30  # "preferably within one month of return" (DOMAIN.md, Suivi)


def plan_due_days() -> int:
    """Days after arrival within which a case's reintegration plan is due (``SEGIN_PLAN_DUE_DAYS``,
    default 30). Read at each use, like the coordinating body; a value that is not a positive whole
    number is refused with its name rather than silently replaced."""
    raw = os.environ.get("SEGIN_PLAN_DUE_DAYS", str(DEFAULT_PLAN_DUE_DAYS))
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"SEGIN_PLAN_DUE_DAYS must be a whole number of days, not {raw!r}") from None
    if days < 1:
        raise ValueError("SEGIN_PLAN_DUE_DAYS must be at least 1")
    return days


def positive(text: str, kind: type[float] | type[int]) -> float:
    """``text`` as a number > 0 of ``kind`` (ValueError otherwise)."""
    value = kind(text.strip())
    if not value > 0:
        raise ValueError(text)
    return value


def positive_setting(environ: Mapping[str, str], name: str, default: str, kind: type[float] | type[int]) -> float:
    """A setting that must be a number > 0 (a scan interval, a batch size): a bad value refuses to start,
    naming the variable, rather than being silently replaced by the default."""
    try:
        return positive(environ.get(name, default), kind)
    except ValueError:
        raise ValueError(f"{name}: '{environ.get(name)}' is not a number > 0") from None
