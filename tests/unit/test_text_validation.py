"""The constrained text and date types of contracts/commands.py (findings 10 and 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.commands import (
    ConsentInput,
    Cursor,
    Identifier,
    Name,
    PageRequest,
    RecordLegalBasis,
    ReferralAction,
    RegisterArrival,
)
from kernel.errors import field_problems
from tests.unit.test_validation import problems_of, valid

TODAY = datetime.now(UTC).date()


@pytest.mark.parametrize("value", ["\u200b", "\u200b\u200d\ufeff", "\u3000\u00a0", " - . ' ", "", "a\u0000b",
                                   "a\u0007b", "x" * 201, "\u2028"])
def test_implausible_names_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Name).validate_python(value)


@pytest.mark.parametrize("value,kept", [("  Aïssata ", "Aïssata"), ("N'Golo", "N'Golo"), ("ߞߏߟߌߓߊߟߌ", "ߞߏߟߌߓߊߟߌ"),
                                        ("Fatoumata\u200b", "Fatoumata"), ("محمد", "محمد")])
def test_real_names_are_kept(value: str, kept: str) -> None:
    assert TypeAdapter(Name).validate_python(value) == kept


@pytest.mark.parametrize("kind", [Identifier, Cursor])
@pytest.mark.parametrize("value", ["", "a" * 2_000_000, "ab\u0000cd", "ab\ncd"])
def test_identifiers_and_cursors_are_bounded_and_printable(kind: Any, value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(value)


def test_every_string_field_of_every_request_refuses_nul() -> None:
    cases: list[tuple[type, dict[str, Any], str]] = [
        (RegisterArrival, valid(given_name="A\u0000"), "given_name"),
        (RegisterArrival, valid(consent={"given": True, "recipient_org_ids": ["o\u0000"]}),
         "consent.recipient_org_ids.0"),
        (ConsentInput, {"given": True, "recipient_org_ids": ["a"], "language": "f\u0000r"}, "language"),
        (ConsentInput, {"given": True, "recipient_org_ids": ["a"], "given_by": "GUARDIAN",
                        "guardian_name": "Mo\u0000"}, "guardian_name"),
        (RecordLegalBasis, {"case_id": "c", "legal_basis": "LEGAL_OBLIGATION", "purposes": ["FOLLOW_UP"],
                            "recipient_org_ids": ["a"], "justification": "ab\u0000cd"}, "justification"),
        (RecordLegalBasis, {"case_id": "c\u0000", "legal_basis": "LEGAL_OBLIGATION", "purposes": ["FOLLOW_UP"],
                            "recipient_org_ids": ["a"], "justification": "abcd"}, "case_id"),
        (ReferralAction, {"referral_id": "r" * 1000}, "referral_id"),
        (PageRequest, {"after": "c" * 100_000}, "after"),
    ]
    for model, data, field in cases:
        assert field in problems_of(data, model), (model, field)


def test_arrival_before_birth_is_refused_on_the_arrival_date() -> None:
    problems = problems_of(valid(date_of_birth="2010-05-01", arrival_date="2009-12-31"))
    assert "arrival_date" in problems, problems


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31"])
def test_arrival_dates_before_the_floor_are_refused(day: str) -> None:
    assert "arrival_date" in problems_of(valid(arrival_date=day))


def test_date_of_birth_in_year_one_is_refused() -> None:
    assert "date_of_birth" in problems_of(valid(date_of_birth="0001-01-01"))


def test_a_plausible_arrival_is_accepted() -> None:
    RegisterArrival.model_validate(valid(date_of_birth="2000-01-01", arrival_date=(TODAY - timedelta(days=3)).isoformat()))


def test_problems_never_echo_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        RegisterArrival.model_validate(valid(given_name="Secretname\u0000"))
    assert "Secretname" not in str([p.message for p in field_problems(caught.value)])
