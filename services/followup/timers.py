"""Follow-up timers, durable and exactly once (issue 9, item 3): a scheduled contact whose window
opens (DUE) or passes (OVERDUE) is told to the managing organisation once each, and a case still
without a plan past its due day once (decision records 0015 and 0018).

Timers are rows, as for referral deadlines (``services/referral/deadlines.py``): a scan claims the
open cases whose ``next_check_on`` has come (``FOR UPDATE SKIP LOCKED``), computes where each stands
(``schedule.standing``, with ``now`` as an argument: tests pass it, nothing sleeps), records a mark
per (case, contact, kind) in ``contact_marks`` and writes its event in the same transaction, then
moves ``next_check_on`` to the next day something may fire. A mark already there never fires again,
so a crash anywhere, a second replica or a second scan fires nothing twice. Closed cases are skipped.
A manager no basis covers any more (consent withdrawn) is told nothing: its marks are set silently,
and the owner that takes the case back finds it in its work lists.
Of several contacts overdue at once (a case first looked at long after its return) only the latest
is told (``domain.marks_told``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import CONTACT_DUE, CONTACT_OVERDUE, PLAN_OVERDUE, EventChannel
from contracts.events import ContactDueV1, ContactOverdueV1, PlanOverdueV1
from kernel.audit import AuditPurpose, service_principal
from kernel.config import plan_due_days, positive_setting
from kernel.db import Connection
from kernel.outbox import add_events
from services.followup import contacts, domain, store

log = logging.getLogger(__name__)

SCAN_SECONDS_ENV = "SEGIN_FOLLOWUP_SCAN_SECONDS"
BATCH_ENV = "SEGIN_FOLLOWUP_SCAN_BATCH"
CHANNELS: Mapping[domain.Mark, EventChannel] = {domain.Mark.DUE: CONTACT_DUE, domain.Mark.OVERDUE: CONTACT_OVERDUE}
EVENTS = {domain.Mark.DUE: ContactDueV1, domain.Mark.OVERDUE: ContactOverdueV1}
OPERATIONS = {domain.Mark.DUE: "followup.contact_due", domain.Mark.OVERDUE: "followup.contact_overdue"}


@dataclass(frozen=True)
class TimerSettings:
    """How often to scan and how many cases per transaction."""

    batch: int = 500
    scan_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "TimerSettings":
        """``SEGIN_FOLLOWUP_SCAN_SECONDS`` (default 60) and ``SEGIN_FOLLOWUP_SCAN_BATCH`` (500); a bad
        value refuses to start, naming the variable."""
        return cls(batch=int(positive_setting(environ, BATCH_ENV, "500", int)),
                   scan_seconds=positive_setting(environ, SCAN_SECONDS_ENV, "60", float))


async def _contact_batch(conn: Connection, today: date, batch: int) -> tuple[int, dict[domain.Mark, int]]:
    """One transaction: claim up to a batch of cases, fire the marks their standing calls for, move
    their next look on. Returns (cases claimed, marks fired per kind)."""
    fired = dict.fromkeys(domain.Mark, 0)
    async with conn.transaction():
        rows = await store.claim_contact_checks(conn, today, batch)
        if not rows:
            return 0, fired
        attempts = await store.attempts_of(conn, [r["case_id"] for r in rows])
        wanted: list[tuple[uuid.UUID, str, str]] = []
        facts: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        told: set[tuple[uuid.UUID, str, str]] = set()
        for row in rows:
            standing = contacts.stand(row, attempts[row["case_id"]], today)
            schedule = contacts.schedule_of(row)
            due = domain.marks_due(standing)
            if store.to_case(row).manager_covered():  # a manager no basis covers any more is told nothing
                told |= {(row["case_id"], code, mark.value) for code, mark in domain.marks_told(due)}
            for code, mark in due:
                wanted.append((row["case_id"], code, mark.value))
                contact = next(c for c in standing.contacts if c.code == code)
                facts[(row["case_id"], code)] = {
                    "case_id": str(row["case_id"]), "manager_org_id": row["manager_org_id"],
                    "schedule_id": schedule.id, "schedule_version": schedule.version, "contact_code": code,
                    "opens_on": contact.opens_on, "due_on": contact.due_on, "overdue_after": contact.overdue_after}
            await store.save_standing(conn, row["case_id"], standing, last_attempt_on=contacts.last_attempt(
                attempts[row["case_id"]]), unreachable=None, next_check_on=domain.next_check_on(standing, today))
        new = await store.set_marks(conn, wanted)  # only marks not there before fire
        for mark in domain.Mark:
            payloads = [(EVENTS[mark](**facts[(case_id, code)]), str(case_id))
                        for case_id, code, kind in wanted
                        if kind == mark.value and (case_id, code, kind) in new & told]
            if payloads:
                await add_events(conn, store.SCHEMA, CHANNELS[mark], payloads)
                fired[mark] = len(payloads)
                # Last in the transaction: the audit chain's lock is held until commit.
                await store.TRAIL.allowed(conn, service_principal("followup"), OPERATIONS[mark],
                                          sorted({p.case_id for p, _ in payloads}), ["follow_up"],
                                          AuditPurpose.FOLLOW_UP)
        return len(rows), fired


async def _plan_batch(conn: Connection, today: date, batch: int) -> tuple[int, int]:
    """One transaction: open cases without a plan past its due day and not yet told, told once."""
    due_days = plan_due_days()
    async with conn.transaction():
        rows = await store.claim_plan_overdue(conn, today - timedelta(days=due_days), batch)
        late = [r for r in rows if domain.plan_overdue(domain.OPEN, r["has_plan"],
                                                       domain.plan_due_on(r["arrival_date"], due_days), today)]
        if late:
            await store.flag_plan_overdue(conn, [r["case_id"] for r in late])
        # Flagged once; a manager no basis covers any more is not told (the owner finds it in its work lists).
        told = [r for r in late if store.to_case(r).manager_covered()]
        if told:
            await add_events(conn, store.SCHEMA, PLAN_OVERDUE, [
                (PlanOverdueV1(case_id=str(r["case_id"]), manager_org_id=r["manager_org_id"],
                               plan_due_on=domain.plan_due_on(r["arrival_date"], due_days)), str(r["case_id"]))
                for r in told])
            await store.TRAIL.allowed(conn, service_principal("followup"), "followup.plan_overdue",
                                      sorted({str(r["case_id"]) for r in told}), ["follow_up"], AuditPurpose.FOLLOW_UP)
        return len(rows), len(late)


async def scan_timers(conn: Connection, now: datetime, settings: TimerSettings | None = None) -> dict[str, int]:
    """Fire every follow-up timer due at ``now``, a bounded batch per transaction, until none is left.

    Returns how many of each kind fired. Safe to run in several processes at once, and again after a
    crash at any point: what committed is not fired again, what did not commit fires next time.
    """
    settings = settings or TimerSettings()
    today = now.astimezone(UTC).date()  # Mali keeps UTC all year
    fired = {mark.value: 0 for mark in domain.Mark} | {"PLAN_OVERDUE": 0}
    while True:
        claimed, count = await _contact_batch(conn, today, settings.batch)
        for mark, n in count.items():
            fired[mark.value] += n
        if claimed < settings.batch:
            break
    while True:
        claimed, n = await _plan_batch(conn, today, settings.batch)
        fired["PLAN_OVERDUE"] += n
        if claimed < settings.batch or n == 0:
            break
    return fired


# --- the periodic task the follow-up service declares (services/followup/app.py) -----------------

@cache
def settings_from_env() -> TimerSettings:
    """Read once per process (at start: ``scan_seconds`` is asked for before the service is ready)."""
    return TimerSettings.from_env()


def scan_seconds() -> float:
    return settings_from_env().scan_seconds


async def scan_due(pool: AsyncConnectionPool) -> dict[str, int]:
    """One tick: scan at the current time with the process's settings; log what fired (counts only)."""
    async with pool.connection() as conn:
        fired = await scan_timers(conn, datetime.now(UTC), settings_from_env())
    if any(fired.values()):
        log.info("follow-up timers fired", extra={k.lower(): v for k, v in fired.items()})
    return fired
