"""Intake rules, free of I/O."""

from __future__ import annotations

from datetime import date

from contracts.commands import RegisterArrival
from contracts.reference import CHILD_VULNERABILITIES

ADULT_AGE = 18


def is_child(arrival: RegisterArrival, today: date) -> bool:
    """A child by age, or by a screening flag that only applies to children."""
    return arrival.age_on(today) < ADULT_AGE or bool(CHILD_VULNERABILITIES & set(arrival.vulnerabilities))
