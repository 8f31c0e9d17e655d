"""Offline capture: correcting a case as of the version read, Kobo/ODK submissions, and batches of commands
from offline clients (decision record 0024, docs/offline-capture.md).

- ``update_case``: the owner corrects identity or screening as of the version it read. A stale version is
  a CONFLICT naming the current version and the fields changed since (names only, those the caller may
  see), and nothing is written: two offline edits of one case never overwrite each other silently.
- ``receive_submission``: one Kobo/ODK submission, idempotent per (organisation, submission id). Every
  receipt is kept: ACCEPTED (registered through the same path as registerArrival), DUPLICATE (sent again:
  the same case), REJECTED (the problems, and the answers needed to fix them, kept for a limited time).
- ``sync``: a batch of REGISTER_ARRIVAL / UPDATE_CASE commands, each in its own transaction, each keyed by
  the client's id: a replayed batch changes nothing, one bad item never stops the others.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from contracts import xlsform
from contracts.channels import CASE_CORRECTED
from contracts.commands import (
    CaseChanges,
    OfflineSubmission,
    OfflineSubmissionsRequest,
    RegisterArrival,
    SyncBatch,
    SyncItem,
    UpdateCase,
)
from contracts.events import CaseCorrectedV1
from contracts.reference import (
    SENSITIVE_VULNERABILITIES,
    SensitiveCategory,
    SubmissionStatus,
    SyncCommand,
    SyncStatus,
    Vulnerability,
)
from contracts.replies import (
    CaseView,
    ItemError,
    OfflineSubmissionView,
    Page,
    SubmissionResult,
    SyncItemResult,
    SyncResult,
)
from kernel.audit import AuditPurpose
from kernel.db import Connection, idempotent, request_hash
from kernel.errors import BadInput, Conflict, NotFound, SeginError, bad_input_from, field_problems, parse_id
from kernel.outbox import add_event
from kernel.runtime import PeriodicTask
from kernel.tokens import Principal
from services.intake import domain, family, handlers, matches, offline_store, store, views

log = logging.getLogger(__name__)

# How long a rejected submission's answers are kept for someone to fix them (the receipt itself stays).
REJECTED_ANSWERS_DAYS = int(os.environ.get("SEGIN_OFFLINE_REJECTED_DAYS", "90"))
UPDATE_OPERATION = "update_case"  # idempotency operation of corrections (updateCase's key, a sync item's client id)
SUBMISSION_OPERATION = "offline_submission"  # idempotency operation of Kobo/ODK submissions (per organisation)


# --- hooks: the one place each rule added later goes --------------------------------------------------


async def validate_correction(conn: Connection, case: dict[str, Any], corrected: RegisterArrival) -> None:
    """Rules on a corrected case beyond RegisterArrival's own, checked before anything is written: raise
    BadInput naming the field."""
    await family.check_flags(conn, case["id"], list(corrected.vulnerabilities))


# What the match index's keys are made of (matching.blocking_keys): correcting one re-indexes the case.
IDENTITY_FIELDS = frozenset({"given_name", "family_name", "date_of_birth", "estimated_age", "phone_numbers"})


async def case_corrected(conn: Connection, case_id: uuid.UUID, corrected: RegisterArrival, fields: list[str]) -> None:
    """What follows a correction in its transaction: the case is found under its corrected names from now on."""
    if IDENTITY_FIELDS & set(fields):
        await matches.reindex(conn, case_id)


# --- corrections ------------------------------------------------------------------------------------


def _category(code: str) -> SensitiveCategory | None:
    try:
        return SENSITIVE_VULNERABILITIES.get(Vulnerability(code))
    except ValueError:
        return None


def _flag_field(code: str) -> str:
    category = _category(code)
    return f"vulnerabilities.{category.value}" if category else "vulnerabilities"


def visible_fields(fields: list[str], visible: frozenset[SensitiveCategory]) -> list[str]:
    """The changed fields a caller may be told of: a sensitive category's only with its scope (as ``vulnerabilities``)."""
    shown = set()
    for name in fields:
        head, _, category = name.partition(".")
        if head == "vulnerabilities" and category and SensitiveCategory(category) not in visible:
            continue
        shown.add(head)
    return sorted(shown)


def screening_after(current: set[str], requested: list[str] | None, visible: frozenset[SensitiveCategory]) -> set[str]:
    """The flags after a correction: those requested, plus those of categories the caller may not see (it
    cannot remove what it cannot see; whether there were any is not revealed)."""
    if requested is None:
        return set(current)
    hidden = {c for c in current if (cat := _category(c)) is not None and cat not in visible}
    return hidden | set(requested)


def _as_sent(case: dict[str, Any]) -> dict[str, Any]:
    """The case as a RegisterArrival payload (consent aside: corrections do not touch it)."""
    return {
        "given_name": case["given_name"], "family_name": case["family_name"], "sex": case["sex"],
        "date_of_birth": case["date_of_birth"], "estimated_age": case["estimated_age"],
        "country_returned_from": case["country_returned_from"], "arrival_point": case["arrival_point"],
        "arrival_date": case["arrival_date"], "destination_region": case["destination_region"],
        "vulnerabilities": list(case["vulnerabilities"]), "phone_numbers": list(case["phone_numbers"]),
        "place_of_origin": case["place_of_origin"], "consent": {"given": False},
    }


def _stored(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def stale(base: int, current: int, fields: list[str]) -> Conflict:
    return Conflict(f"The case changed since version {base} (it is now at version {current}): read it again and "
                    "reapply your correction.", field="version",
                    details={"current_version": current, "changed_fields": fields})


async def _correct(conn: Connection, principal: Principal, case: dict[str, Any], version: int,
                   changes: CaseChanges) -> dict[str, Any]:
    """Check the version, validate the corrected case, write it: the response an idempotency key replays."""
    case_id, visible = case["id"], domain.visible_categories(principal.scopes)
    if case["merged_into"] is not None:  # corrected here, the partners would act on a case that stands for nobody
        raise Conflict("This case was merged into another one: correct the case it was merged into.",
                       field="caseId")
    if case["version"] != version:
        changed = await offline_store.fields_changed_since(conn, case_id, version)
        raise stale(version, case["version"], visible_fields(changed, visible))
    given = changes.model_dump(include=changes.model_fields_set)
    before = _as_sent(case)
    merged = {**before, **{k: v for k, v in given.items() if k != "vulnerabilities"}}
    requested = None if "vulnerabilities" not in given else [str(_stored(v)) for v in given["vulnerabilities"] or []]
    flags_before = set(case["vulnerabilities"])
    flags_after = screening_after(flags_before, requested, visible)
    merged["vulnerabilities"] = sorted(flags_after)
    try:
        corrected = RegisterArrival.model_validate(merged)
    except ValidationError as exc:
        raise bad_input_from(exc) from None
    await validate_correction(conn, case, corrected)
    values = {c: _stored(getattr(corrected, c)) for c in offline_store.CORRECTABLE}
    values = {c: v for c, v in values.items() if v != case[c]}
    fields = list(values) + sorted({_flag_field(c) for c in flags_before ^ flags_after})
    if not fields:  # nothing differs: the version stays
        return {"case_id": str(case_id), "version": case["version"]}
    new_version = await offline_store.correct_case(conn, case_id, values, principal.subject, fields)
    await offline_store.replace_flags(conn, case_id, flags_before - flags_after, flags_after - flags_before,
                                      principal.subject)
    today = datetime.now(UTC).date()
    await add_event(conn, store.SCHEMA, CASE_CORRECTED, CaseCorrectedV1(
        case_id=str(case_id), owner_org_id=case["owner_org_id"], version=new_version, changed_fields=sorted(fields),
        destination_region=corrected.destination_region, is_child=domain.is_child(corrected, today),
        vulnerabilities=list(corrected.vulnerabilities), sex=corrected.sex, age_years=corrected.age_on(today)),
        subject=str(case_id))
    await case_corrected(conn, case_id, corrected, fields)
    return {"case_id": str(case_id), "version": new_version}


async def _update(conn: Connection, principal: Principal, case_id: uuid.UUID, version: int, changes: CaseChanges,
                  key: str | None) -> tuple[dict[str, Any], bool] | None:
    """Correct a case the caller's organisation owns (None, the refusal recorded, for any other): the
    response and whether this call wrote it. CONFLICT and BAD_USER_INPUT roll everything back."""
    case = await offline_store.lock_case(conn, case_id)
    if case is None or case["owner_org_id"] != principal.org_id:
        await store.TRAIL.denied(conn, principal, "case.update", [case_id], handlers.IDENTITY)
        return None
    if key is None:
        return await _correct(conn, principal, case, version, changes), True
    made: list[bool] = []

    async def produce() -> dict[str, Any]:
        made.append(True)
        return await _correct(conn, principal, case, version, changes)

    response = await idempotent(conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject,
                                operation=UPDATE_OPERATION, key=key, produce=produce,
                                request={"case_id": str(case_id), "version": version,
                                         "changes": changes.model_dump(mode="json", include=changes.model_fields_set)})
    return response, bool(made)


def _not_owned() -> NotFound:
    return NotFound("No such case, or your organisation does not own it.", field="caseId")


async def update_case(pool: AsyncConnectionPool, principal: Principal, request: UpdateCase) -> CaseView:
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        outcome = await _update(conn, principal, case_id, request.version, request.changes, request.idempotency_key)
        if outcome is not None:
            case = await store.get_case(conn, case_id)
            sharing = await store.sharing_rows(conn, case_id)
            await store.TRAIL.allowed(conn, principal, "case.update" if outcome[1] else "case.read", [case_id],
                                      handlers.OWNER_CATEGORIES, AuditPurpose.CASE_MANAGEMENT)
    if outcome is None:
        raise _not_owned()
    assert case is not None
    return views.case_view(case, domain.visible_categories(principal.scopes),
                           domain.Access(True, domain.OWNER_PURPOSE), sharing)


# --- registration, as registerArrival does it ------------------------------------------------------------


async def register(conn: Connection, principal: Principal, *, operation: str, subject: str, key: str,
                   arrival: RegisterArrival) -> tuple[uuid.UUID, bool]:
    """``handlers._create_case`` inside ``kernel.db.idempotent``, as ``register_arrival``: the case and
    whether this call created it (False: the key was used before, the first case is answered)."""
    created: list[bool] = []

    async def create() -> dict[str, Any]:
        created.append(True)
        return await handlers._create_case(conn, principal, arrival)

    result = await idempotent(conn, store.SCHEMA, org_id=principal.org_id, subject=subject, operation=operation,
                              key=key, request=arrival.model_dump(mode="json"), produce=create)
    return uuid.UUID(result["case_id"]), bool(created)


# --- Kobo/ODK submissions -------------------------------------------------------------------------------


def _problems(error: ValidationError) -> list[dict[str, Any]]:
    """Each problem named by the form question the field team sees (never the value)."""
    return [{"code": "BAD_USER_INPUT", "field": xlsform.question_for(p.field), "message": p.message}
            for p in field_problems(error)]


async def receive_submission(pool: AsyncConnectionPool, principal: Principal, request: OfflineSubmission
                             ) -> SubmissionResult:
    read = xlsform.read_submission(request.submission)
    # Without an id, the content names it: the same submission sent again is still one.
    submission_id = read.submission_id or f"sha256:{request_hash(request.submission)}"[:xlsform.SUBMISSION_ID_MAX]
    problems: list[dict[str, Any]] = []
    if read.submission_id is None:
        problems.append({"code": "BAD_USER_INPUT", "field": "meta/instanceID",
                         "message": "the submission has no id (meta/instanceID or _uuid)"})
    arrival: RegisterArrival | None = None
    try:
        arrival = RegisterArrival.model_validate(read.arrival)
    except ValidationError as exc:
        problems += _problems(exc)
    org, source, actor = principal.org_id, request.source.value, principal.subject
    case_id: uuid.UUID | None = None
    async with pool.connection() as conn, conn.transaction():
        await offline_store.lock_submission(conn, org, submission_id)
        earlier = await offline_store.accepted(conn, org, submission_id)
        if earlier is not None:
            status, case_id = SubmissionStatus.DUPLICATE, earlier["case_id"]
        elif problems or arrival is None:
            status = SubmissionStatus.REJECTED
        else:
            try:
                async with conn.transaction():  # a refusal on the registration path keeps the receipt
                    case_id, created = await register(conn, principal, operation=SUBMISSION_OPERATION, subject="",
                                                      key=submission_id, arrival=arrival)
            except SeginError as exc:
                status, problems = SubmissionStatus.REJECTED, [{"code": exc.code, "message": exc.message,
                                                                "field": xlsform.question_for(exc.field or "")}]
            else:
                status = SubmissionStatus.ACCEPTED if created else SubmissionStatus.DUPLICATE
        if status == SubmissionStatus.REJECTED:
            await offline_store.receive(conn, org, submission_id, source, status.value, actor, problems=problems,
                                        answers=read.arrival)
            await store.TRAIL.allowed(conn, principal, "offline.reject", [], handlers.IDENTITY,
                                      AuditPurpose.CASE_MANAGEMENT)
        else:
            await offline_store.receive(conn, org, submission_id, source, status.value, actor, case_id=case_id)
            if status == SubmissionStatus.ACCEPTED:
                await offline_store.forget_rejected_answers(conn, org, submission_id)
            await store.TRAIL.allowed(conn, principal, "case.create" if status == SubmissionStatus.ACCEPTED
                                      else "case.read", [case_id] if case_id else [], handlers.OWNER_CATEGORIES,
                                      AuditPurpose.CASE_MANAGEMENT)
    log.info("offline submission received", extra={"status": status.value, "source": source})
    return SubmissionResult(submission_id=submission_id, status=status, case_id=str(case_id) if case_id else None,
                            problems=[ItemError(**p) for p in problems] if status == SubmissionStatus.REJECTED else [])


def _answers_seen(answers: dict[str, Any] | None, visible: frozenset[SensitiveCategory]) -> dict[str, Any] | None:
    """A rejected submission's answers without the flags of categories the caller may not see."""
    if answers is None:
        return None
    flags = answers.get("vulnerabilities")
    if isinstance(flags, list):
        answers = {**answers, "vulnerabilities": [f for f in flags if (c := _category(str(f))) is None or c in visible]}
    return answers


async def offline_submissions(pool: AsyncConnectionPool, principal: Principal, request: OfflineSubmissionsRequest
                              ) -> Page[OfflineSubmissionView]:
    visible = domain.visible_categories(principal.scopes)
    async with pool.connection() as conn, conn.transaction():
        found = await offline_store.submissions(conn, principal.org_id, request.status.value if request.status
                                                else None, request.first, request.after)
        nodes = found["nodes"]
        if any(n["answers"] is not None or n["case_id"] for n in nodes):
            await store.TRAIL.allowed(conn, principal, "offline.list", [n["case_id"] for n in nodes if n["case_id"]],
                                      handlers.IDENTITY, AuditPurpose.CASE_MANAGEMENT)
    return Page[OfflineSubmissionView](page_info=found["page_info"], nodes=[OfflineSubmissionView(
        id=str(n["id"]), submission_id=n["submission_id"], source=n["source"], status=n["status"],
        case_id=str(n["case_id"]) if n["case_id"] else None, problems=[ItemError(**p) for p in n["problems"]],
        answers=_answers_seen(n["answers"], visible), attempts=n["attempts"], received_at=n["created_at"],
        last_received_at=n["last_received_at"]) for n in nodes])


async def forget_old_answers(pool: AsyncConnectionPool) -> int:
    """Periodic: rejected submissions' answers past their retention are deleted (receipt and reasons stay)."""
    async with pool.connection() as conn:
        return await offline_store.forget_old_answers(conn, REJECTED_ANSWERS_DAYS)


# --- batches from offline clients -------------------------------------------------------------------------


def _item_error(exc: SeginError, prefix: str = "") -> list[ItemError]:
    problems = exc.problems or [{"field": exc.field, "message": exc.message}]
    return [ItemError(code=exc.code, message=p.get("message") or exc.message,
                      field=".".join(filter(None, [prefix, p.get("field")])) or None,
                      current_version=exc.details.get("current_version"),
                      changed_fields=exc.details.get("changed_fields")) for p in problems]


async def _sync_register(pool: AsyncConnectionPool, principal: Principal, item: SyncItem) -> SyncItemResult:
    if item.arrival is None:
        raise BadInput("REGISTER_ARRIVAL needs the arrival.", field="arrival")
    try:
        arrival = RegisterArrival.model_validate(item.arrival)
    except ValidationError as exc:
        raise bad_input_from(exc, "arrival") from None
    async with pool.connection() as conn, conn.transaction():
        case_id, created = await register(conn, principal, operation="register_arrival", subject=principal.subject,
                                          key=item.client_id, arrival=arrival)
        case = await store.get_case(conn, case_id)
        await store.TRAIL.allowed(conn, principal, "case.create" if created else "case.read", [case_id],
                                  handlers.OWNER_CATEGORIES, AuditPurpose.CASE_MANAGEMENT)
    assert case is not None
    return SyncItemResult(client_id=item.client_id, status=SyncStatus.APPLIED if created else SyncStatus.ALREADY_APPLIED,
                          case_id=str(case_id), version=case["version"])


async def _sync_update(pool: AsyncConnectionPool, principal: Principal, item: SyncItem) -> SyncItemResult:
    if item.case_id is None or item.base_version is None or item.changes is None:
        missing = next(f for f in ("case_id", "base_version", "changes") if getattr(item, f) is None)
        raise BadInput("UPDATE_CASE needs caseId, baseVersion and changes.", field=missing)
    case_id = parse_id(item.case_id, "case_id")
    try:
        changes = CaseChanges.model_validate(item.changes)
    except ValidationError as exc:
        raise bad_input_from(exc, "changes") from None
    async with pool.connection() as conn, conn.transaction():
        outcome = await _update(conn, principal, case_id, item.base_version, changes, item.client_id)
        if outcome is not None and outcome[1]:  # written now (a replay writes and reads nothing)
            await store.TRAIL.allowed(conn, principal, "case.update", [case_id], handlers.OWNER_CATEGORIES,
                                      AuditPurpose.CASE_MANAGEMENT)
    if outcome is None:
        raise _not_owned()
    response, made = outcome
    return SyncItemResult(client_id=item.client_id, status=SyncStatus.APPLIED if made else SyncStatus.ALREADY_APPLIED,
                          case_id=response["case_id"], version=response["version"])


async def _sync_item(pool: AsyncConnectionPool, principal: Principal, item: SyncItem) -> SyncItemResult:
    try:
        uuid.UUID(item.client_id)
    except ValueError:
        return SyncItemResult(client_id=item.client_id, status=SyncStatus.REJECTED, errors=[ItemError(
            code="BAD_USER_INPUT", message="the client id must be a UUID the client made", field="client_id")])
    try:
        if item.command == SyncCommand.REGISTER_ARRIVAL:
            return await _sync_register(pool, principal, item)
        return await _sync_update(pool, principal, item)
    except SeginError as exc:
        if exc.code == "CONFLICT" and "current_version" in exc.details:  # a stale base version
            return SyncItemResult(client_id=item.client_id, status=SyncStatus.CONFLICT, case_id=item.case_id,
                                  version=exc.details.get("current_version"), errors=_item_error(exc))
        return SyncItemResult(client_id=item.client_id, status=SyncStatus.REJECTED, case_id=None,
                              errors=_item_error(exc))


async def sync(pool: AsyncConnectionPool, principal: Principal, batch: SyncBatch) -> SyncResult:
    """Each item in its own transaction, in order: what was applied stays applied if the process dies
    mid-batch, and the client's retry of the whole batch answers ALREADY_APPLIED for those."""
    return SyncResult(results=[await _sync_item(pool, principal, item) for item in batch.items])

RETENTION_TASK = PeriodicTask("offline-answers-retention", forget_old_answers,
                              lambda: float(os.environ.get("SEGIN_OFFLINE_RETENTION_SECONDS", "3600")))
