"""Rules of group reception, free of I/O: what a check-in registers (the manifest row and the group as
defaults, the agent's corrections over them) and a group's totals. Dates are passed in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from contracts.commands import CheckInInput
from contracts.reference import CHILD_VULNERABILITIES, ExpectedStatus, SensitiveCategory, Vulnerability
from services.intake.domain import ADULT_AGE, visible_flags


def age_on(date_of_birth: date | None, estimated_age: int | None, day: date) -> int | None:
    if date_of_birth is None:
        return estimated_age
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def is_child_at(date_of_birth: date | None, estimated_age: int | None, vulnerabilities: Iterable[str],
                day: date) -> bool:
    """As ``domain.is_child``: under 18 on ``day`` (the group's arrival), or flagged as a child."""
    age = age_on(date_of_birth, estimated_age, day)
    flagged = bool({Vulnerability(v) for v in vulnerabilities} & CHILD_VULNERABILITIES)
    return (age is not None and age < ADULT_AGE) or flagged


def totals(people: Iterable[dict[str, Any]], arrival_date: date, visible: frozenset[SensitiveCategory]
           ) -> dict[str, int]:
    """Expected (on a manifest), checked in, no-show, added on arrival, children, vulnerable (checked-in
    cases with at least one flag). Only the flags of ``visible`` categories count: in a group of one, a
    count would otherwise tell a token without the scope that the person has a flag it may not see."""
    counts = dict.fromkeys(("expected", "checked_in", "no_show", "added_on_arrival", "children", "vulnerable"), 0)
    for p in people:
        status = ExpectedStatus(p["status"])
        flags = visible_flags(p["vulnerabilities"], visible)
        counts["expected"] += 0 if p["added_on_arrival"] else 1
        counts["added_on_arrival"] += 1 if p["added_on_arrival"] else 0
        counts["checked_in"] += status == ExpectedStatus.CHECKED_IN
        counts["no_show"] += status == ExpectedStatus.NO_SHOW
        counts["children"] += is_child_at(p["date_of_birth"], p["estimated_age"], flags, arrival_date)
        counts["vulnerable"] += status == ExpectedStatus.CHECKED_IN and bool(flags)
    return counts


# The fields a manifest row gives a registration, and those the group gives.
_FROM_ROW = ("given_name", "family_name", "sex", "date_of_birth", "estimated_age", "phone_numbers",
             "place_of_origin", "destination_region")
_FROM_GROUP = ("country_returned_from", "arrival_point", "arrival_date")


def arrival_data(group: dict[str, Any], person: dict[str, Any] | None, given: CheckInInput) -> dict[str, Any]:
    """The registration a check-in makes, before validation as ``RegisterArrival``: the group's arrival
    (point, date, country), the manifest row, and over them whatever the agent gave. An estimated age the
    agent gives replaces the row's date of birth (and a date of birth the row's age)."""
    data: dict[str, Any] = {f: group[f] for f in _FROM_GROUP}
    if person is not None:
        data |= {f: person[f] for f in _FROM_ROW if person.get(f) not in (None, [])}
    corrections = given.model_dump(exclude_unset=True, exclude_none=True)
    if "estimated_age" in corrections and "date_of_birth" not in corrections:
        data.pop("date_of_birth", None)
    if "date_of_birth" in corrections and "estimated_age" not in corrections:
        data.pop("estimated_age", None)
    data |= corrections
    data.setdefault("vulnerabilities", [])
    return data
