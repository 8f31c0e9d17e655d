"""Deadlines that escalate, durable and exactly once (issue 8, item 5).

A pending referral past its due time reminds the recipient; past a grace period on top (per
priority) it escalates to the referring organisation's supervisors and the coordinating body; an
accepted referral with no outcome past its service's expected duration is flagged.

Timers are rows, not processes: each mark (``reminded_at``, ``escalated_at``,
``overdue_flagged_at``) is set in the same transaction as the outbox event announcing it, so a crash
anywhere leaves both or neither, and a restarted (or another) replica's next scan finds exactly what
is still due. Replicas claim rows with ``FOR UPDATE SKIP LOCKED`` and the claim re-checks the mark is
still unset, so two scans never fire the same mark. The rules below take ``now``: tests move the
clock, they never sleep.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import REFERRAL_DEADLINE
from contracts.events import ReferralDeadlineV1
from contracts.reference import SENSITIVE_SERVICES, DeadlineKind, LegalBasis, Priority, ReferralStatus, ServiceCategory
from kernel.audit import AuditPurpose, service_principal
from kernel.config import positive, positive_setting
from kernel.db import Connection
from kernel.outbox import add_events
from services.referral import store

log = logging.getLogger(__name__)

REMINDER, ESCALATED, OUTCOME_OVERDUE = DeadlineKind.REMINDER, DeadlineKind.ESCALATED, DeadlineKind.OUTCOME_OVERDUE

# How long past its due time a pending referral waits before it escalates, by priority.
GRACE: Mapping[Priority, timedelta] = MappingProxyType({
    Priority.URGENT: timedelta(hours=12),
    Priority.HIGH: timedelta(hours=24),
    Priority.NORMAL: timedelta(hours=72),
})
# The column holding each mark, and the audit operation recording it.
MARKS: Mapping[DeadlineKind, str] = MappingProxyType(
    {REMINDER: "reminded_at", ESCALATED: "escalated_at", OUTCOME_OVERDUE: "overdue_flagged_at"})
OPERATIONS: Mapping[DeadlineKind, str] = MappingProxyType({
    REMINDER: "referral.deadline_reminder", ESCALATED: "referral.deadline_escalated",
    OUTCOME_OVERDUE: "referral.deadline_outcome_overdue"})

SCAN_SECONDS_ENV = "SEGIN_DEADLINE_SCAN_SECONDS"
GRACE_ENV = "SEGIN_DEADLINE_GRACE_HOURS"
BATCH_ENV = "SEGIN_DEADLINE_BATCH"


@dataclass(frozen=True)
class DeadlineSettings:
    """How often to scan, how many referrals per transaction, and the grace period per priority."""

    grace: Mapping[Priority, timedelta] = field(default_factory=lambda: dict(GRACE))
    batch: int = 500
    scan_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "DeadlineSettings":
        """``SEGIN_DEADLINE_SCAN_SECONDS`` (default 60), ``SEGIN_DEADLINE_BATCH`` (500) and
        ``SEGIN_DEADLINE_GRACE_HOURS`` (e.g. ``URGENT=6,NORMAL=48``: the priorities named replace
        the defaults). A bad value refuses to start, naming the variable."""
        grace = dict(GRACE)
        for item in filter(None, (i.strip() for i in environ.get(GRACE_ENV, "").split(","))):
            name, _, hours = item.partition("=")
            try:
                grace[Priority(name.strip().upper())] = timedelta(hours=positive(hours, float))
            except ValueError:
                raise ValueError(f"{GRACE_ENV}: '{item}' is not PRIORITY=HOURS with a priority among "
                                 f"{', '.join(p.value for p in Priority)} and hours > 0") from None
        return cls(grace=grace, batch=int(positive_setting(environ, BATCH_ENV, "500", int)),
                   scan_seconds=positive_setting(environ, SCAN_SECONDS_ENV, "60", float))


# --- the rules (pure) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferralClock:
    """What the rules look at in a referral: its state, its times, and the marks already set."""

    status: ReferralStatus
    priority: Priority
    due_at: datetime
    accepted_at: datetime | None = None
    expected_duration: timedelta | None = None  # the service's; None: the outcome is never overdue
    outcome_code: str | None = None
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    overdue_flagged_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ReferralClock":
        return cls(ReferralStatus(row["status"]), Priority(row["priority"]), row["due_at"], row.get("accepted_at"),
                   row.get("expected_duration"), row.get("outcome_code"), row.get("reminded_at"),
                   row.get("escalated_at"), row.get("overdue_flagged_at"))


def deadline(kind: DeadlineKind, referral: ReferralClock, grace: Mapping[Priority, timedelta] = GRACE
             ) -> datetime | None:
    """When ``kind`` falls due for this referral in its current state; None when it never does."""
    if kind is REMINDER and referral.status == ReferralStatus.PENDING:
        return referral.due_at
    if kind is ESCALATED and referral.status == ReferralStatus.PENDING:
        return referral.due_at + grace[referral.priority]
    if (kind is OUTCOME_OVERDUE and referral.status == ReferralStatus.ACCEPTED and referral.outcome_code is None
            and referral.accepted_at is not None and referral.expected_duration is not None):
        return referral.accepted_at + referral.expected_duration
    return None


def fires(kind: DeadlineKind, referral: ReferralClock, now: datetime,
          grace: Mapping[Priority, timedelta] = GRACE) -> bool:
    """Whether ``kind`` fires now: its deadline has passed and it has not fired before."""
    when = deadline(kind, referral, grace)
    return when is not None and when <= now and getattr(referral, MARKS[kind]) is None


def due_now(referral: ReferralClock, now: datetime, grace: Mapping[Priority, timedelta] = GRACE
            ) -> list[DeadlineKind]:
    """Every mark that fires now, in the order the scan fires them (a reminder before an escalation)."""
    return [kind for kind in DeadlineKind if fires(kind, referral, now, grace)]


def escalation_cutoffs(now: datetime, grace: Mapping[Priority, timedelta] = GRACE) -> dict[Priority, datetime]:
    """Per priority, the latest due time that has escalated by ``now``."""
    return {priority: now - grace[priority] for priority in Priority}


# --- the scan -----------------------------------------------------------------------------------

# Called in the escalation's transaction for each escalated referral (e.g. re-routing it to the next
# eligible provider); none by default: escalation tells people, who re-route by hand.
EscalationHook = Callable[[Connection, dict[str, Any]], Awaitable[None]]


def _claim_query(kind: DeadlineKind, now: datetime, settings: DeadlineSettings) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"now": now, "limit": settings.batch}
    if kind is REMINDER:
        return store.CLAIM_AWAITING_REMINDER, params
    if kind is ESCALATED:
        query, cutoffs = store.claim_awaiting_escalation(escalation_cutoffs(now, settings.grace))
        return query, params | cutoffs
    return store.CLAIM_AWAITING_OUTCOME, params


def _event(kind: DeadlineKind, row: dict[str, Any], when: datetime) -> ReferralDeadlineV1:
    return ReferralDeadlineV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"],
        to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
        priority=Priority(row["priority"]), legal_basis=LegalBasis(row["legal_basis"]) if row["legal_basis"] else None,
        kind=kind, due_at=row["due_at"] if kind is not OUTCOME_OVERDUE else when)


def _categories(rows: list[dict[str, Any]]) -> list[str]:
    found = {ServiceCategory(r["service_category"]) for r in rows}
    return ["referral"] + sorted({SENSITIVE_SERVICES[c].value for c in found if c in SENSITIVE_SERVICES})


async def _fire_batch(conn: Connection, kind: DeadlineKind, now: datetime, settings: DeadlineSettings,
                      on_escalated: EscalationHook | None) -> tuple[int, int]:
    """One transaction: claim up to a batch, set the mark and write the event of each that fires.
    Returns (rows claimed, marks fired)."""
    async with conn.transaction():
        rows = await store.claim(conn, *_claim_query(kind, now, settings))
        due: list[tuple[dict[str, Any], datetime]] = []
        for row in rows:  # the rule decides; the query only narrows the search to what may fire
            clock = ReferralClock.from_row(row)
            when = deadline(kind, clock, settings.grace)
            if when is not None and fires(kind, clock, now, settings.grace):
                due.append((row, when))
        if not due:
            return len(rows), 0
        await store.set_mark(conn, MARKS[kind], [r["id"] for r, _ in due], now)
        await add_events(conn, store.SCHEMA, REFERRAL_DEADLINE,
                         [(_event(kind, row, when), str(row["id"])) for row, when in due])
        if kind is ESCALATED and on_escalated is not None:
            for row, _ in due:
                await on_escalated(conn, row)
        # Last in the transaction: the audit chain's lock is held until commit.
        await store.TRAIL.allowed(conn, service_principal("referral"), OPERATIONS[kind],
                                  sorted({str(r["case_id"]) for r, _ in due}), _categories([r for r, _ in due]),
                                  AuditPurpose.REFERRAL)
        return len(rows), len(due)


async def scan_deadlines(conn: Connection, now: datetime, settings: DeadlineSettings | None = None, *,
                         on_escalated: EscalationHook | None = None) -> dict[str, int]:
    """Fire every mark due at ``now``, a bounded batch per transaction, until none is left.

    Returns how many of each kind fired. Safe to run in several processes at once, and again after
    a crash at any point: what committed is not fired again, what did not commit fires next time.
    """
    settings = settings or DeadlineSettings()
    fired = {kind.value: 0 for kind in DeadlineKind}
    for kind in DeadlineKind:  # reminders first: a referral long overdue is reminded, then escalated
        while True:
            claimed, count = await _fire_batch(conn, kind, now, settings, on_escalated)
            fired[kind.value] += count
            if claimed < settings.batch or count == 0:
                break
    return fired


# --- the periodic task the referral service declares (services/referral/app.py) -----------------

@cache
def settings_from_env() -> DeadlineSettings:
    """Read once per process (at start: ``scan_seconds`` is asked for before the service is ready)."""
    return DeadlineSettings.from_env()


def scan_seconds() -> float:
    return settings_from_env().scan_seconds


async def scan_due(pool: AsyncConnectionPool) -> dict[str, int]:
    """One tick: scan at the current time with the process's settings; log what fired (counts only)."""
    async with pool.connection() as conn:
        fired = await scan_deadlines(conn, datetime.now(UTC), settings_from_env())
    if any(fired.values()):
        log.info("referral deadlines fired", extra={k.lower(): v for k, v in fired.items()})
    return fired
