"""Follow-up schedules as versioned data, and where a case stands against its schedule.

A programme's schedule (``schedules/<id>-<version>.yaml``, checked against ``schedule.schema.json``)
says when contacts fall due after return (by default at 1, 3, 6 and 12 months) and after how many
failed attempts in a row a person is unreachable. A case keeps the id and version it follows, so a
changed schedule (a new version) never moves the contacts already due on it.

Where a case stands is computed, never stored: from the return date, the contacts logged and
``today`` (an argument, so tests and scans move the clock). Each scheduled contact is:

- ``DONE``: a contact that reached the person counts for it (``on_time`` when made by its
  overdue date). A contact counts for the latest scheduled contact whose window has opened; if
  that one is already done, it counts for none (an extra visit);
- ``MISSED``: never done, and a later one was;
- ``UPCOMING`` before its window opens, ``DUE`` within it, ``OVERDUE`` after it.

Pure: no I/O except reading the schedule files.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from contracts.reference import ContactState
from kernel.datafile import DataFileError, Lines, Versions, dotted, load_schema, load_versions, parse, read

FOLDER = Path(str(resources.files("services.followup").joinpath("schedules")))
SCHEMA_FILE = FOLDER / "schedule.schema.json"
DEFAULT_ID = "DEFAULT"
OPENS_DAYS_BEFORE, OVERDUE_DAYS_AFTER = 14, 14  # when a schedule file does not say


class ScheduleError(DataFileError):
    """A schedule file cannot be used: every problem found, each with its line."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One contact of a schedule."""

    code: str
    months_after_return: int
    opens_days_before: int
    overdue_days_after: int


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    version: int
    title_fr: str
    title_en: str
    contacts: tuple[Planned, ...]
    unreachable_after: int  # failed attempts in a row


@dataclass(frozen=True, slots=True)
class Attempt:
    """A logged contact, as the schedule needs it: when, and whether it reached the person."""

    on: date
    reached: bool


@dataclass(frozen=True, slots=True)
class ScheduledContact:
    """Where one scheduled contact of a case stands on a given day."""

    code: str
    due_on: date
    opens_on: date
    overdue_after: date  # the last day it is on time
    state: ContactState
    done_on: date | None = None

    @property
    def on_time(self) -> bool | None:
        return None if self.done_on is None else self.done_on <= self.overdue_after


@dataclass(frozen=True, slots=True)
class Standing:
    """A case against its schedule: each contact, the next one to make, and whether unreachable."""

    contacts: tuple[ScheduledContact, ...]
    failed_in_a_row: int
    unreachable: bool

    @property
    def next(self) -> ScheduledContact | None:
        """The contact to make now or next: the first not done, not missed."""
        return next((c for c in self.contacts if c.state in (ContactState.UPCOMING, ContactState.DUE,
                                                             ContactState.OVERDUE)), None)


# --- where a case stands ----------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day (31 January + 1 month = 28/29 February)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def standing(schedule: Schedule, returned_on: date, attempts: Iterable[Attempt], today: date) -> Standing:
    """Where a case that returned on ``returned_on`` stands on ``today``, given the contacts logged."""
    windows = [(p, add_months(returned_on, p.months_after_return)) for p in schedule.contacts]
    done: dict[str, date] = {}
    failed = 0
    for attempt in sorted(attempts, key=lambda a: a.on):
        if not attempt.reached:
            failed += 1
            continue
        failed = 0
        opened = [p for p, due in windows if due - timedelta(days=p.opens_days_before) <= attempt.on]
        if opened and opened[-1].code not in done:
            done[opened[-1].code] = attempt.on
    last_done = max((i for i, (p, _) in enumerate(windows) if p.code in done), default=-1)
    contacts = []
    for i, (planned, due) in enumerate(windows):
        opens, overdue_after = due - timedelta(days=planned.opens_days_before), due + timedelta(
            days=planned.overdue_days_after)
        if planned.code in done:
            state = ContactState.DONE
        elif i < last_done:
            state = ContactState.MISSED
        elif today < opens:
            state = ContactState.UPCOMING
        elif today <= overdue_after:
            state = ContactState.DUE
        else:
            state = ContactState.OVERDUE
        contacts.append(ScheduledContact(planned.code, due, opens, overdue_after, state, done.get(planned.code)))
    return Standing(tuple(contacts), failed, failed >= schedule.unreachable_after)


# --- loading ----------------------------------------------------------------------------------------

class Schedules(Versions[Schedule]):
    """Every version of every schedule, by (id, version): a case keeps the one it started under."""

    def latest(self, id: str = DEFAULT_ID) -> Schedule:
        """The highest version of ``id``: the one a new case follows."""
        return super().latest(id)


def load_schedules(folder: Path | str = FOLDER) -> Schedules:
    """Every ``<id>-<version>.yaml`` of ``folder``, validated; the first bad file raises ScheduleError."""
    return Schedules(load_versions(folder, lambda path: parse_schedule(read(path, "schedule file", ScheduleError),
                                                                        path), ScheduleError))


def parse_schedule(text: str, file: Path | str = "<schedule>") -> Schedule:
    data, lines = parse(text, file, load_schema(SCHEMA_FILE), ScheduleError)
    return _build(data, lines, file)


def _build(data: dict[str, Any], lines: Lines, file: Path | str) -> Schedule:
    """The schedule, once its codes are unique and its contacts in order (else ScheduleError)."""
    problems: list[tuple[int, str]] = []
    planned: list[Planned] = []
    for i, raw in enumerate(data["contacts"]):
        where = ("contacts", i)
        if any(p.code == raw["code"] for p in planned):
            problems.append((lines.line((*where, "code")), f"{dotted((*where, 'code'))}: {raw['code']} is given twice"))
        if planned and raw["months_after_return"] <= planned[-1].months_after_return:
            problems.append((lines.line((*where, "months_after_return")),
                             f"{dotted((*where, 'months_after_return'))}: contacts are listed in order, each "
                             f"later than the one before ({planned[-1].months_after_return} months)"))
        planned.append(Planned(raw["code"], raw["months_after_return"],
                               raw.get("opens_days_before", OPENS_DAYS_BEFORE),
                               raw.get("overdue_days_after", OVERDUE_DAYS_AFTER)))
    if problems:
        raise ScheduleError(file, problems)
    return Schedule(data["id"], data["version"], data["title"]["fr"], data["title"]["en"], tuple(planned),
                    data["unreachable_after_failed_attempts"])


@cache
def shipped() -> Schedules:
    """The schedules packaged with the service, loaded once per process (at start: ``app.py`` asks, so
    a bad file stops the service before it serves anything)."""
    return load_schedules()
