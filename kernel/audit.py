"""The audit trail: who read or wrote which case's personal data, for what purpose, and whether allowed.

One append-only, hash-chained log per service schema (``<schema>.audit_log``, created by
``kernel/sql/audit.sql``). Each entry's hash covers all its columns and the previous entry's
hash, so altering or deleting an entry breaks the chain where it happened; ``verify`` finds it.
Entries hold identifiers and category codes only, never a name or a narrative: the trail of a
person's case must not become a second copy of their data. See docs/decisions/0009-audit-trail.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any, Literal

from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.replies import AuditEntryView, AuditVerification, Page

from kernel import pagination
from kernel.db import Connection
from kernel.errors import BadInput
from kernel.rpc import Endpoint, Route, bind
from kernel.telemetry import current_trace_id
from kernel.tokens import Principal

GENESIS = "0" * 64  # the prev_hash of a schema's first entry
SCOPE = "audit:read"
FORMAT_VERSION = 1  # part of what is hashed: a new canonical form gets a new number, old entries keep theirs
MAX_PAGE = 100

Outcome = Literal["allowed", "denied", "restricted"]
OUTCOMES: frozenset[str] = frozenset({"allowed", "denied", "restricted"})

# Codes, not prose: lowercase dotted slugs for operations, purposes and categories, upper-case
# codes for legal bases. A name ("Awa Traoré") or a sentence cannot pass.
_CODE = re.compile(r"^[a-z][a-z0-9_]*(?:[.:][a-z0-9_]+)*$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_BASIS = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MAX_CODE = 64
_MAX_CASES = 1000

_COLUMNS = ("seq", "at", "actor", "org_id", "client_id", "operation", "case_ids", "field_categories", "purpose",
            "legal_basis", "outcome", "trace_id", "prev_hash", "hash")


class AuditPurpose(StrEnum):
    """Why personal data was read or written: the ``purpose`` of every audit entry."""

    CASE_MANAGEMENT = "case_management"  # the owning organisation working its own case
    REFERRAL = "referral"  # providing or following a referral
    FOLLOW_UP = "follow_up"  # managing a case's follow-up (reintegration plan, closure)
    DATA_SUBJECT_REQUEST = "data_subject_request"  # the steward answering a person's access request
    ACCESS_CHECK = "access_check"  # a refused request has no purpose of its own
    AUDIT = "audit"  # reading the audit trail itself
    DIRECTORY = "directory"  # maintaining the service directory (no personal data; writes are accountable)


@dataclass(frozen=True)
class AuditEntry:
    """What a handler did: normalised on creation (case ids as UUIDs, codes sorted and unique).

    ``operation`` e.g. ``case.read``; ``field_categories`` the kinds of data touched (``identity``,
    ``health``…); ``purpose`` why (``case_management``, ``referral``…); ``legal_basis`` a
    LegalBasis code when one applies. Raises ``ValueError`` on anything that is not a code.
    """

    operation: str
    case_ids: Iterable[uuid.UUID | str]
    field_categories: Iterable[str]
    purpose: str
    outcome: Outcome
    legal_basis: str | None = None

    def __post_init__(self) -> None:
        _check(_CODE, self.operation, "operation")
        _check(_CODE, self.purpose, "purpose")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}")
        if self.legal_basis is not None:
            _check(_BASIS, self.legal_basis, "legal_basis")
        categories = tuple(sorted(set(self.field_categories)))
        for category in categories:
            _check(_CATEGORY, category, "field_categories")
        try:
            cases = tuple(sorted({c if isinstance(c, uuid.UUID) else uuid.UUID(str(c)) for c in self.case_ids}))
        except ValueError:
            raise ValueError("case_ids must be UUIDs") from None
        if len(cases) > _MAX_CASES:
            raise ValueError(f"at most {_MAX_CASES} case ids per entry")
        object.__setattr__(self, "case_ids", cases)
        object.__setattr__(self, "field_categories", categories)


def _check(pattern: re.Pattern[str], value: object, name: str) -> None:
    if not isinstance(value, str) or len(value) > _MAX_CODE or not pattern.match(value):
        raise ValueError(f"{name} must be a short code (identifiers and categories only, never personal data)")


@dataclass(frozen=True)
class Problem:
    """One break in a chain. ``kind``: altered | deleted | broken_link | truncated | anchor_mismatch."""

    kind: str
    seq: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def service_principal(service: str) -> Principal:
    """The actor for work a service does on its own (an event consumer), not on a caller's behalf."""
    return Principal(subject=f"service:{service}", org_id="segin", client_id=service, scopes=frozenset(), jti="",
                     token="")


@dataclass(frozen=True)
class Trail:
    """One service's audit trail: the one call a handler makes to leave its record.

    ``await TRAIL.allowed(conn, principal, "case.read", [case_id], ["identity"], AuditPurpose.REFERRAL)``;
    ``denied`` records a refusal (purpose ``access_check`` unless told). Call it last in a write
    transaction (see ``record``).
    """

    schema: str

    async def allowed(self, conn: Connection, principal: Principal, operation: str,
                      case_ids: Iterable[uuid.UUID | str], categories: Iterable[str], purpose: AuditPurpose,
                      *, legal_basis: str | None = None) -> None:
        await record(conn, self.schema, principal, AuditEntry(operation, case_ids, categories, purpose.value,
                                                              "allowed", legal_basis))

    async def denied(self, conn: Connection, principal: Principal, operation: str,
                     case_ids: Iterable[uuid.UUID | str], categories: Iterable[str] = (),
                     purpose: AuditPurpose = AuditPurpose.ACCESS_CHECK) -> None:
        await record(conn, self.schema, principal, AuditEntry(operation, case_ids, categories, purpose.value,
                                                              "denied"))


# --- the chain ---------------------------------------------------------------------------------


def entry_hash(row: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of every column but ``hash`` (including seq and prev_hash)."""
    doc = {
        "v": FORMAT_VERSION,
        "seq": int(row["seq"]),
        "at": row["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": row["actor"],
        "org_id": row["org_id"],
        "client_id": row["client_id"],
        "operation": row["operation"],
        "case_ids": [str(c) for c in row["case_ids"]],
        "field_categories": list(row["field_categories"]),
        "purpose": row["purpose"],
        "legal_basis": row["legal_basis"],
        "outcome": row["outcome"],
        "trace_id": row["trace_id"],
        "prev_hash": row["prev_hash"],
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_id(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"segin-audit:{schema}".encode()).digest()[:8], "big", signed=True)


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "audit_log")


async def record(conn: Connection, schema: str, principal: Principal, entry: AuditEntry, *,
                 trace_id: str | None = None) -> int:
    """Append ``entry`` in the caller's transaction (so a write and its record commit together); return its seq.

    Outside a transaction it opens (and commits) its own. Appending takes a transaction-scoped
    advisory lock on the schema's chain, held until the caller commits: call it last in a
    write transaction, and keep read transactions short. Needs READ COMMITTED, so that the
    previous entry read after the lock is the latest committed one.
    """
    if conn.info.transaction_status == TransactionStatus.IDLE:
        async with conn.transaction():
            return await _append(conn, schema, principal, entry, trace_id)
    return await _append(conn, schema, principal, entry, trace_id)


async def _append(conn: Connection, schema: str, principal: Principal, entry: AuditEntry,
                  trace_id: str | None) -> int:
    await conn.execute("select pg_advisory_xact_lock(%s)", (_lock_id(schema),))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                "select nextval(pg_get_serial_sequence(quote_ident(%s) || '.audit_log', 'seq')) as seq,"
                " clock_timestamp() as at, current_setting('transaction_isolation') as isolation,"
                " (select hash from {} order by seq desc limit 1) as prev_hash"
            ).format(_table(schema)),
            (schema,),
        )
        head = await cur.fetchone()
    assert head is not None
    if head["isolation"] != "read committed":
        raise RuntimeError("kernel.audit.record needs a READ COMMITTED transaction; the chain would fork otherwise")
    row: dict[str, Any] = {
        "seq": head["seq"], "at": head["at"], "actor": principal.subject, "org_id": principal.org_id,
        "client_id": principal.client_id, "operation": entry.operation, "case_ids": list(entry.case_ids),
        "field_categories": list(entry.field_categories), "purpose": entry.purpose,
        "legal_basis": entry.legal_basis, "outcome": entry.outcome,
        "trace_id": trace_id if trace_id is not None else current_trace_id(),
        "prev_hash": head["prev_hash"] or GENESIS,
    }
    row["hash"] = entry_hash(row)
    await conn.execute(
        sql.SQL("insert into {} ({}) overriding system value values ({})").format(
            _table(schema), sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(_COLUMNS)),
        ),
        [row[c] for c in _COLUMNS],
    )
    return int(row["seq"])


async def chain_head(conn: Connection, schema: str) -> tuple[int, str] | None:
    """The last entry's (seq, hash), for an operator to keep outside the database.

    Only a copy held elsewhere reveals that the newest entries were deleted: the chain itself
    still verifies after its tail is cut off.
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.SQL("select seq, hash from {} order by seq desc limit 1").format(_table(schema)))
        row = await cur.fetchone()
    return (int(row["seq"]), str(row["hash"])) if row else None


async def verify(conn: Connection, schema: str, *, expected_head: tuple[int, str] | None = None,
                 max_problems: int = 1000) -> list[Problem]:
    """Recompute the chain in seq order, streaming it through a server-side cursor.

    Gaps in seq alone are normal (a rolled-back transaction consumes a seq); a gap is reported
    only when the next entry's prev_hash shows that an entry in it existed. ``expected_head``,
    a ``chain_head`` recorded earlier, must still be in the chain with the same hash.
    """
    problems: list[Problem] = []
    prev_seq, prev_hash = 0, GENESIS
    anchor_found = False
    async with conn.transaction(), conn.cursor(name="segin_audit_verify", row_factory=dict_row) as cur:
        cur.itersize = 5000
        await cur.execute(sql.SQL("select * from {} order by seq").format(_table(schema)))
        async for row in cur:
            seq = int(row["seq"])
            if entry_hash(row) != row["hash"]:
                problems.append(Problem("altered", seq, f"entry {seq} was changed after it was written"))
            if row["prev_hash"] != prev_hash:
                if seq > prev_seq + 1:
                    problems.append(Problem("deleted", prev_seq + 1, f"at least one entry between {prev_seq + 1}"
                                            f" and {seq - 1} was deleted (entry {seq} links to one that is gone)"))
                else:
                    problems.append(Problem("broken_link", seq, f"entry {seq} does not link to entry {prev_seq}:"
                                            " that one was rewritten with a recomputed hash, or this one inserted"))
            if expected_head and seq == expected_head[0]:
                anchor_found = True
                if row["hash"] != expected_head[1]:
                    problems.append(Problem("anchor_mismatch", seq, f"entry {seq} no longer has the recorded"
                                            " head hash: the history up to it was rewritten"))
            prev_seq, prev_hash = seq, row["hash"]
            if len(problems) >= max_problems:
                break
    if expected_head and not anchor_found and len(problems) < max_problems:
        where = "the log ends at " + str(prev_seq) if prev_seq < expected_head[0] else "it was deleted"
        problems.append(Problem("truncated", expected_head[0],
                                f"the recorded head entry {expected_head[0]} is missing ({where})"))
    return problems[:max_problems]


# --- search ------------------------------------------------------------------------------------


def _encode_after(seq: int) -> str:
    return pagination.encode(["audit", seq])


def _decode_after(cursor: str) -> int:
    tag, seq = pagination.decode(cursor, 2)
    if tag != "audit" or not isinstance(seq, int):
        raise BadInput(pagination.INVALID_CURSOR, field="after")
    return seq


def entry_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as JSON-ready data."""
    return {
        "seq": int(row["seq"]), "at": row["at"].astimezone(UTC).isoformat(), "actor": row["actor"],
        "org_id": row["org_id"], "client_id": row["client_id"], "operation": row["operation"],
        "case_ids": [str(c) for c in row["case_ids"]], "field_categories": list(row["field_categories"]),
        "purpose": row["purpose"], "legal_basis": row["legal_basis"], "outcome": row["outcome"],
        "trace_id": row["trace_id"], "prev_hash": row["prev_hash"], "hash": row["hash"],
    }


async def search(conn: Connection, schema: str, *, case_id: uuid.UUID | str | None = None,
                 org_id: str | None = None, actor: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, first: int = 50, after: str | None = None) -> dict[str, Any]:
    """Entries newest first, filtered, paginated by seq: ``{"nodes": [...], "page_info": {...}}``.

    ``since`` is inclusive, ``until`` exclusive. ``after`` is the previous page's ``end_cursor``.
    """
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"'first' must be between 1 and {MAX_PAGE}.", field="first")
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if case_id is not None:
        try:
            case_uuid = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
        except ValueError:
            raise BadInput("This is not a case id.", field="case_id") from None
        conditions.append(sql.SQL("case_ids @> array[%s::uuid]"))
        params.append(case_uuid)
    for column, value in (("org_id", org_id), ("actor", actor)):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if since is not None:
        conditions.append(sql.SQL("at >= %s"))
        params.append(since)
    if until is not None:
        conditions.append(sql.SQL("at < %s"))
        params.append(until)
    if after:
        conditions.append(sql.SQL("seq < %s"))
        params.append(_decode_after(after))
    query = sql.SQL("select * from {} where {} order by seq desc limit %s").format(
        _table(schema), sql.SQL(" and ").join(conditions))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, [*params, first + 1])
        rows = await cur.fetchall()
    nodes = [entry_view(r) for r in rows[:first]]
    end = _encode_after(nodes[-1]["seq"]) if nodes else None
    return {"nodes": nodes, "page_info": {"has_next_page": len(rows) > first, "end_cursor": end}}


# --- request/reply endpoints for the platform steward -------------------------------------------


class AuditSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID | None = None
    org_id: str | None = Field(None, max_length=64)
    actor: str | None = Field(None, max_length=256)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    first: int = Field(50, ge=1, le=MAX_PAGE)
    after: str | None = Field(None, max_length=200)


class ChainHead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class AuditVerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_head: ChainHead | None = None


async def _audit_search(schema: str, pool: AsyncConnectionPool, principal: Principal,
                        request: AuditSearchRequest) -> dict[str, Any]:
    async with pool.connection() as conn, conn.transaction():
        page = await search(conn, schema, case_id=request.case_id, org_id=request.org_id, actor=request.actor,
                            since=request.since, until=request.until, first=request.first, after=request.after)
        await Trail(schema).allowed(conn, principal, "audit.search", [request.case_id] if request.case_id else [],
                                    ["audit_trail"], AuditPurpose.AUDIT)
    return page


async def _audit_verify(schema: str, pool: AsyncConnectionPool, principal: Principal,
                        request: AuditVerifyRequest) -> AuditVerification:
    expected = (request.expected_head.seq, request.expected_head.hash) if request.expected_head else None
    async with pool.connection() as conn:
        head = await chain_head(conn, schema)  # read first: every entry up to it is then verified
        problems = await verify(conn, schema, expected_head=expected)
        await Trail(schema).allowed(conn, principal, "audit.verify", [], ["audit_trail"], AuditPurpose.AUDIT)
    return AuditVerification.model_validate({
        "schema": schema, "ok": not problems, "head": {"seq": head[0], "hash": head[1]} if head else None,
        "problems": [p.to_dict() for p in problems]})


def audit_endpoints(schema: str, service: str, pool: AsyncConnectionPool) -> list[Route]:
    """``svc.<service>.audit_search`` and ``svc.<service>.audit_verify``, for holders of ``audit:read``.

    Reading the trail is itself recorded (operation ``audit.search`` / ``audit.verify``, purpose
    ``audit``), and so is a refused attempt, with outcome ``denied``.
    """

    def refused_as(operation: str) -> Callable[[Principal, str, dict[str, Any]], Awaitable[None]]:
        async def record_refusal(principal: Principal, subject: str, payload: dict[str, Any]) -> None:
            async with pool.connection() as conn:
                await Trail(schema).denied(conn, principal, operation, _case_ids_in(payload), ["audit_trail"],
                                           AuditPurpose.AUDIT)
        return record_refusal

    search_endpoint = Endpoint(partial(_audit_search, schema), AuditSearchRequest, SCOPE, Page[AuditEntryView])
    verify_endpoint = Endpoint(partial(_audit_verify, schema), AuditVerifyRequest, SCOPE, AuditVerification)
    return [
        bind(f"svc.{service}.audit_search", search_endpoint, pool, refused_as("audit.search")),
        bind(f"svc.{service}.audit_verify", verify_endpoint, pool, refused_as("audit.verify")),
    ]


def _case_ids_in(payload: dict[str, Any]) -> list[uuid.UUID]:
    """The case a refused search was about, when the payload names a valid one."""
    try:
        return [uuid.UUID(str(payload["case_id"]))] if payload.get("case_id") else []
    except ValueError:
        return []


def refusal_recorder(schema: str, pool: AsyncConnectionPool) -> Callable[[Principal, str, Any], Awaitable[None]]:
    """Record requests refused for lack of scope (kernel.rpc calls it), so refusals are in the trail
    even when the handler never ran."""

    async def record_refusal(principal: Principal, subject: str, payload: Any) -> None:
        case_ids = _case_ids_in(payload) if isinstance(payload, dict) else []
        operation = subject.removeprefix("svc.")
        async with pool.connection() as conn:
            await Trail(schema).denied(conn, principal, operation, case_ids)

    return record_refusal
