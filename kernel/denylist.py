"""Revoked access tokens, known to every process within moments of their revocation.

Access tokens are self-contained JWTs: a service verifies them without asking the gateway, so
revoking one needs a message to every process. The gateway (and ``python -m gateway.admin``)
writes an entry to the JetStream key-value bucket ``REVOKED_TOKENS``; each process watches the
bucket into memory, and ``kernel.tokens.TokenVerifier`` refuses what the entries name:

- ``jti.<jti>`` → ``{"exp": …}``: that one token (until it would have expired anyway);
- ``client.<base64url client id>`` → ``{"not_before": …}``: every token of that client issued
  at or before that instant (a revoked client's live tokens).

Entries outlive the tokens they name (``RETENTION``), then the bucket drops them (``max_age``);
nothing newer than nats-server 2.9 is used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

BUCKET = "REVOKED_TOKENS"
ACCESS_TOKEN_LIFETIME = 900  # RFC 9068 access tokens live at most 15 minutes
LEEWAY = 30  # clock skew every verifier tolerates
RETENTION = ACCESS_TOKEN_LIFETIME + LEEWAY + 90  # an entry outlives every token it can name
_PRUNE_EVERY = 30.0


def jti_entry(jti: str, exp: float) -> tuple[str, bytes]:
    """The bucket entry revoking one token until ``exp``."""
    return f"jti.{_key_safe(jti)}", json.dumps({"exp": exp}).encode()


def client_entry(client_id: str, not_before: float) -> tuple[str, bytes]:
    """The bucket entry revoking every token of a client issued at or before ``not_before``."""
    return f"client.{_key_safe(client_id)}", json.dumps({"not_before": not_before}).encode()


def _key_safe(value: str) -> str:
    """KV keys allow only ``[-/_=.a-zA-Z0-9]``: base64url keeps any id inside that set."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


async def open_bucket(js: JetStreamContext, *, replicas: int = 1) -> KeyValue:
    """The bucket, created on first use by whichever process comes first (creation is idempotent)."""
    try:
        return await js.key_value(BUCKET)
    except BucketNotFoundError:
        pass
    config = KeyValueConfig(bucket=BUCKET, description="Revoked access tokens (jti) and clients (not before)",
                            history=1, ttl=float(RETENTION), storage=StorageType.FILE, replicas=replicas)
    try:
        return await js.create_key_value(config)
    except Exception:
        return await js.key_value(BUCKET)  # another process created it first, maybe with other settings


class DenyList:
    """The in-memory copy of the bucket that ``TokenVerifier`` consults on every token.

    Thread-safe: the gateway's authorization server (run in worker threads) adds entries directly.
    """

    def __init__(self) -> None:
        self._jtis: dict[str, float] = {}  # jti -> exp
        self._clients: dict[str, float] = {}  # client id -> not before
        self._lock = threading.Lock()
        self._pruned_at = time.monotonic()
        self.loaded = asyncio.Event()

    def deny_jti(self, jti: str, exp: float) -> None:
        with self._lock:
            self._jtis[jti] = max(exp, self._jtis.get(jti, 0.0))

    def deny_client(self, client_id: str, not_before: float) -> None:
        with self._lock:
            self._clients[client_id] = max(not_before, self._clients.get(client_id, 0.0))

    def refusal(self, claims: Mapping[str, Any]) -> str | None:
        """Why these (already verified) claims must be refused, or None."""
        if str(claims.get("jti", "")) in self._jtis:
            return "the token was revoked"
        not_before = self._clients.get(str(claims.get("client_id", "")))
        if not_before is not None and float(claims.get("iat", 0)) <= not_before:
            return "the token's client was revoked"
        return None

    def apply(self, key: str, value: bytes) -> None:
        """Take one bucket entry into memory; unknown or malformed entries are ignored."""
        kind, _, encoded = key.partition(".")
        try:
            ident = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            data = json.loads(value)
            if kind == "jti":
                self.deny_jti(ident, float(data["exp"]))
            elif kind == "client":
                self.deny_client(ident, float(data["not_before"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("ignored a malformed deny-list entry", extra={"key": key[:80]})

    def prune(self, now: float | None = None) -> None:
        """Forget entries whose tokens have expired in any case (the bucket drops them too)."""
        now = time.time() if now is None else now
        with self._lock:
            self._jtis = {j: exp for j, exp in self._jtis.items() if exp + LEEWAY >= now}
            self._clients = {c: nb for c, nb in self._clients.items() if nb + RETENTION >= now}
            self._pruned_at = time.monotonic()

    async def start(self, js: JetStreamContext, stop: asyncio.Event, *, replicas: int = 1,
                    timeout: float = 10.0) -> asyncio.Task[None]:
        """Watch the bucket in the background until ``stop``; return once the current entries are in.

        A process that could not load the list in ``timeout`` still starts (it could not be
        reached over NATS either) and keeps trying.
        """
        task = asyncio.create_task(self._run(js, stop, replicas), name="deny-list-watcher")
        try:
            await asyncio.wait_for(self.loaded.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("deny list not loaded yet; continuing and retrying in the background")
        return task

    async def _run(self, js: JetStreamContext, stop: asyncio.Event, replicas: int) -> None:
        """Keep a watcher running until ``stop``, recreating it after any failure."""
        while not stop.is_set():
            try:
                await self._watch(await open_bucket(js, replicas=replicas), stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("deny-list watcher failed; retrying", extra={"error": type(exc).__name__})
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass

    async def _watch(self, kv: KeyValue, stop: asyncio.Event) -> None:
        watcher = await kv.watchall()
        try:
            while not stop.is_set():
                try:
                    entry = await watcher.updates(timeout=1.0)
                except nats.errors.TimeoutError:
                    entry = False
                if entry is None:
                    self.loaded.set()  # the watcher's marker: every current entry has been delivered
                elif entry and entry.operation not in ("DEL", "PURGE") and entry.value:
                    self.apply(entry.key, entry.value)
                if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
                    self.prune()
        finally:
            try:
                await watcher.stop()
            except Exception:
                pass
