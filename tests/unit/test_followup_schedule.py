"""Follow-up schedules (services/followup/schedule.py): the shipped schedule loads; contacts fall due
1, 3, 6 and 12 months after return and move through their states as the clock moves; a contact counts
for one scheduled contact; failed attempts in a row make a person unreachable and a reached contact
clears it; a bad file is refused with its line and reason."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from services.followup.schedule import (
    FOLDER,
    Attempt,
    ContactState,
    ScheduleError,
    add_months,
    load_schedules,
    parse_schedule,
    standing,
)

SCHEDULES = load_schedules()
DEFAULT = SCHEDULES.latest()
RETURNED = date(2026, 1, 31)  # a month's last day: the due dates clamp
S = ContactState
TEXT = (FOLDER / "default-1.yaml").read_text(encoding="utf-8")


def states(on: date, *attempts: Attempt) -> dict[str, ContactState]:
    return {c.code: c.state for c in standing(DEFAULT, RETURNED, attempts, on).contacts}


def refused(text: str) -> ScheduleError:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, "default-1.yaml")
    return caught.value


def test_the_default_schedule_has_contacts_at_1_3_6_and_12_months() -> None:
    assert (DEFAULT.id, DEFAULT.version, DEFAULT.unreachable_after) == ("DEFAULT", 1, 3)
    assert [(p.code, p.months_after_return) for p in DEFAULT.contacts] == [("M1", 1), ("M3", 3), ("M6", 6),
                                                                            ("M12", 12)]
    due = [c.due_on for c in standing(DEFAULT, RETURNED, [], RETURNED).contacts]
    assert due == [date(2026, 2, 28), date(2026, 4, 30), date(2026, 7, 31), date(2027, 1, 31)]


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2028, 1, 31), 1, date(2028, 2, 29)),
    (date(2026, 11, 15), 3, date(2027, 2, 15)), (date(2026, 12, 1), 12, date(2027, 12, 1))])
def test_months_after_return_keep_the_day_or_take_the_months_last(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_a_contact_is_upcoming_then_due_then_overdue_as_the_clock_moves() -> None:
    # M1 is due 28 February, opens 7 days before, is on time until 14 March.
    assert states(date(2026, 2, 20))["M1"] == S.UPCOMING
    assert states(date(2026, 2, 21))["M1"] == S.DUE
    assert states(date(2026, 3, 14))["M1"] == S.DUE
    assert states(date(2026, 3, 15))["M1"] == S.OVERDUE
    assert states(date(2026, 3, 15))["M3"] == S.UPCOMING


def test_a_reached_contact_counts_for_the_latest_opened_contact_and_earlier_ones_are_missed() -> None:
    on_time = standing(DEFAULT, RETURNED, [Attempt(date(2026, 3, 2), True)], date(2026, 3, 20))
    [m1, m3, *_] = on_time.contacts
    assert (m1.state, m1.done_on, m1.on_time, m3.state) == (S.DONE, date(2026, 3, 2), True, S.UPCOMING)
    assert on_time.next == m3
    late = standing(DEFAULT, RETURNED, [Attempt(date(2026, 3, 30), True)], date(2026, 4, 1))
    assert (late.contacts[0].state, late.contacts[0].on_time) == (S.DONE, False)
    # Nobody reached at one month; reached at three: M1 is missed, M3 done, and a second visit
    # the same month is an extra one, not a late M1.
    skipped = states(date(2026, 5, 20), Attempt(date(2026, 4, 28), True), Attempt(date(2026, 5, 5), True))
    assert skipped == {"M1": S.MISSED, "M3": S.DONE, "M6": S.UPCOMING, "M12": S.UPCOMING}
    # A contact before the first window opens counts for nothing.
    assert states(date(2026, 2, 1), Attempt(date(2026, 2, 1), True))["M1"] == S.UPCOMING


def test_failed_attempts_in_a_row_make_a_person_unreachable_and_a_reached_contact_clears_it() -> None:
    failed = [Attempt(date(2026, 2, 25), False), Attempt(date(2026, 3, 1), False)]
    two = standing(DEFAULT, RETURNED, failed, date(2026, 3, 2))
    assert (two.failed_in_a_row, two.unreachable, two.contacts[0].state) == (2, False, S.DUE)
    three = standing(DEFAULT, RETURNED, [*failed, Attempt(date(2026, 3, 3), False)], date(2026, 3, 4))
    assert (three.failed_in_a_row, three.unreachable) == (3, True)
    # The order they were logged in does not matter: the dates do.
    found = standing(DEFAULT, RETURNED, [Attempt(date(2026, 3, 5), True), *failed,
                                         Attempt(date(2026, 3, 3), False)], date(2026, 3, 6))
    assert (found.failed_in_a_row, found.unreachable, found.contacts[0].state) == (0, False, S.DONE)


def test_a_new_version_is_loaded_beside_the_old_one(tmp_path: Path) -> None:
    shutil.copy(FOLDER / "default-1.yaml", tmp_path)
    (tmp_path / "default-2.yaml").write_text(TEXT.replace("version: 1", "version: 2").replace(
        "unreachable_after_failed_attempts: 3", "unreachable_after_failed_attempts: 5"), encoding="utf-8")
    both = load_schedules(tmp_path)
    assert (both[("DEFAULT", 1)].unreachable_after, both.latest().unreachable_after) == (3, 5)
    (tmp_path / "default-3.yaml").write_text(TEXT.replace("version: 1", "version: 4"), encoding="utf-8")
    with pytest.raises(ScheduleError) as misnamed:
        load_schedules(tmp_path)
    assert "must be named default-4.yaml" in misnamed.value.reason


@pytest.mark.parametrize(("change", "line", "reason"), [
    (("months_after_return: 3", "months_after_return: 1"), 26, "contacts[1].months_after_return: contacts are "
                                                               "listed in order"),
    (("code: M3", "code: M1"), 25, "contacts[1].code: M1 is given twice"),
    (("unreachable_after_failed_attempts: 3", "unreachable_after_failed_attempts: 0"), 32,
     "unreachable_after_failed_attempts: 0 is less than the minimum of 1"),
    (("    overdue_days_after: 30", "    overdue_after: 30"), 31, "contacts[3].overdue_after: unknown field"),
    (("version: 1", "version: 1\nversion: 2"), 17, "version: given twice"),
])
def test_a_bad_schedule_is_refused_with_its_line_and_reason(change: tuple[str, str], line: int, reason: str) -> None:
    error = refused(TEXT.replace(*change, 1))
    assert error.line == line and error.reason.startswith(reason), str(error)
    assert str(error).startswith(f"default-1.yaml:{line}: ")
