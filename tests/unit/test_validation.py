"""Input validation of contracts/commands.py and the error shaping of kernel/errors.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.commands import ConsentInput, RegisterArrival, RegisterArrivalRequest
from contracts.reference import Vulnerability, regions
from kernel.errors import BadInput, bad_input_from, field_problems

TODAY = datetime.now(UTC).date()


def valid(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "given_name": "Aminata",
        "family_name": "Traoré",
        "sex": "FEMALE",
        "date_of_birth": "1995-04-12",
        "country_returned_from": "LY",
        "arrival_point": "BAMAKO_AIRPORT",
        "arrival_date": (TODAY - timedelta(days=1)).isoformat(),
        "destination_region": "00",
        "vulnerabilities": [],
        "consent": {"given": True, "recipient_org_ids": ["org-a"]},
    }
    data.update(overrides)
    return data


def problems_of(data: dict[str, Any], model: type = RegisterArrival) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {p.field: p.message for p in field_problems(caught.value)}


def test_valid_arrival_is_accepted() -> None:
    arrival = RegisterArrival.model_validate(valid())
    assert arrival.given_name == "Aminata"
    assert arrival.destination_region == "00"
    assert arrival.consent.language == "fr"


def test_future_date_of_birth_is_refused() -> None:
    tomorrow = (TODAY + timedelta(days=2)).isoformat()
    problems = problems_of(valid(date_of_birth=tomorrow))
    assert list(problems) == ["date_of_birth"]
    assert "future" in problems["date_of_birth"]


def test_date_of_birth_today_is_accepted() -> None:
    # A baby born today arrives today at the earliest (an arrival before birth is refused).
    arrival = RegisterArrival.model_validate(valid(date_of_birth=TODAY.isoformat(), arrival_date=TODAY.isoformat()))
    assert arrival.age_on(TODAY) == 0


def test_future_arrival_date_is_refused() -> None:
    problems = problems_of(valid(arrival_date=(TODAY + timedelta(days=2)).isoformat()))
    assert list(problems) == ["arrival_date"]


def test_unknown_region_is_refused_with_the_field_named() -> None:
    assert "99" not in regions()
    problems = problems_of(valid(destination_region="99"))
    assert list(problems) == ["destination_region"]
    assert "unknown region" in problems["destination_region"]
    error = bad_input_from(pytest.raises(ValidationError, RegisterArrival.model_validate,
                                         valid(destination_region="99")).value)
    assert isinstance(error, BadInput)
    assert error.field == "destination_region"
    assert error.code == "BAD_USER_INPUT"


def test_region_name_instead_of_code_is_refused() -> None:
    assert list(problems_of(valid(destination_region="Gao"))) == ["destination_region"]


@pytest.mark.parametrize("field", ["given_name", "family_name"])
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_or_whitespace_names_are_refused(field: str, value: str) -> None:
    assert list(problems_of(valid(**{field: value}))) == [field]


def test_names_are_stripped() -> None:
    arrival = RegisterArrival.model_validate(valid(given_name="  Aminata "))
    assert arrival.given_name == "Aminata"


def test_neither_date_of_birth_nor_estimated_age_is_refused() -> None:
    data = valid()
    del data["date_of_birth"]
    problems = problems_of(data)
    assert list(problems) == ["estimated_age"]
    assert "date of birth" in problems["estimated_age"] and "estimated age" in problems["estimated_age"]


def test_invalid_date_of_birth_is_not_also_reported_as_missing_age() -> None:
    data = valid(date_of_birth="2999-01-01")
    assert list(problems_of(data)) == ["date_of_birth"]


def test_estimated_age_alone_is_enough() -> None:
    data = valid(estimated_age=16)
    del data["date_of_birth"]
    arrival = RegisterArrival.model_validate(data)
    assert arrival.age_on(TODAY) == 16


@pytest.mark.parametrize("age", [-1, 121])
def test_estimated_age_out_of_range_is_refused(age: int) -> None:
    data = valid(estimated_age=age)
    del data["date_of_birth"]
    assert "estimated_age" in problems_of(data)


def test_duplicate_vulnerabilities_are_removed() -> None:
    arrival = RegisterArrival.model_validate(
        valid(vulnerabilities=["PREGNANT", "MEDICAL_NEEDS", "PREGNANT", "MEDICAL_NEEDS", "PREGNANT"])
    )
    assert sorted(arrival.vulnerabilities) == [Vulnerability.MEDICAL_NEEDS, Vulnerability.PREGNANT]
    assert len(arrival.vulnerabilities) == len(set(arrival.vulnerabilities))


def test_unknown_vulnerability_is_refused_with_its_index() -> None:
    problems = problems_of(valid(vulnerabilities=["PREGNANT", "HUNGRY"]))
    assert list(problems) == ["vulnerabilities.1"]


def test_consent_recipients_without_consent_are_refused() -> None:
    problems = problems_of(valid(consent={"given": False, "recipient_org_ids": ["org-a"]}))
    assert list(problems) == ["consent"]
    assert "consent" in problems["consent"]
    with pytest.raises(ValidationError):
        ConsentInput(given=False, recipient_org_ids=["org-a"])


def test_refused_consent_without_recipients_is_fine() -> None:
    arrival = RegisterArrival.model_validate(valid(consent={"given": False}))
    assert arrival.consent.given is False
    assert arrival.consent.recipient_org_ids == []


def test_extra_fields_are_refused() -> None:
    problems = problems_of(valid(nickname="Ami"))
    assert list(problems) == ["nickname"]


def test_extra_fields_in_nested_consent_are_refused() -> None:
    problems = problems_of(valid(consent={"given": True, "signed_by": "x"}))
    assert list(problems) == ["consent.signed_by"]


def test_extra_fields_in_request_envelope_are_refused() -> None:
    problems = problems_of({"idempotency_key": "k" * 16, "arrival": valid(), "admin": True}, RegisterArrivalRequest)
    assert list(problems) == ["admin"]


def test_country_must_be_an_iso_alpha2_code() -> None:
    assert list(problems_of(valid(country_returned_from="ly"))) == ["country_returned_from"]
    assert list(problems_of(valid(country_returned_from="LBY"))) == ["country_returned_from"]


# --- age_on ------------------------------------------------------------------------------------


def born(day: date) -> RegisterArrival:
    return RegisterArrival.model_validate(valid(date_of_birth=day.isoformat()))


def test_age_on_the_day_before_the_birthday() -> None:
    assert born(date(2007, 6, 15)).age_on(date(2025, 6, 14)) == 17


def test_age_on_the_birthday() -> None:
    assert born(date(2007, 6, 15)).age_on(date(2025, 6, 15)) == 18


def test_age_on_the_day_after_the_birthday() -> None:
    assert born(date(2007, 6, 15)).age_on(date(2025, 6, 16)) == 18


def test_age_across_year_end() -> None:
    person = born(date(2006, 12, 31))
    assert person.age_on(date(2024, 12, 30)) == 17
    assert person.age_on(date(2024, 12, 31)) == 18
    assert person.age_on(date(2025, 1, 1)) == 18


def test_age_of_someone_born_on_29_february() -> None:
    person = born(date(2004, 2, 29))
    assert person.age_on(date(2022, 2, 28)) == 17
    assert person.age_on(date(2022, 3, 1)) == 18
    assert person.age_on(date(2024, 2, 29)) == 20


def test_date_of_birth_wins_over_estimated_age() -> None:
    arrival = RegisterArrival.model_validate(valid(date_of_birth="2000-01-01", estimated_age=40))
    assert arrival.age_on(date(2020, 1, 1)) == 20


# --- field_problems --------------------------------------------------------------------------------


def test_field_problems_gives_dotted_paths() -> None:
    data = valid(consent={"given": "perhaps", "recipient_org_ids": [1, "org-b"]})
    problems = problems_of(data)
    assert "consent.given" in problems
    assert "consent.recipient_org_ids.0" in problems


def test_field_problems_never_echo_input_values() -> None:
    secret_name = "Zz" + "SECRETNAME" * 30  # too long: refused, and must not be echoed
    data = valid(
        given_name=secret_name,
        family_name=["Diarra-SECRETFAMILY"],
        destination_region="SECRETREGION",
        country_returned_from="SECRETCOUNTRY",
        date_of_birth="SECRET-DOB",
        nickname="SECRETNICK",
        consent={"given": True, "recipient_org_ids": ["SECRETORG"], "note": "SECRETNOTE"},
    )
    with pytest.raises(ValidationError) as caught:
        RegisterArrival.model_validate(data)
    problems = field_problems(caught.value)
    assert {p.field for p in problems} >= {
        "given_name", "family_name", "destination_region", "country_returned_from", "date_of_birth",
        "nickname", "consent.note",
    }
    for problem in problems:
        assert "SECRET" not in problem.message, problem
        assert "Diarra" not in problem.message, problem
    assert "SECRET" not in bad_input_from(caught.value).message


def test_field_problems_strip_the_value_error_prefix() -> None:
    problems = problems_of(valid(destination_region="99"))
    assert not problems["destination_region"].startswith("Value error")


def test_model_level_problem_has_a_field_name() -> None:
    data = valid()
    del data["date_of_birth"]
    with pytest.raises(ValidationError) as caught:
        RegisterArrival.model_validate(data)
    (problem,) = field_problems(caught.value)
    assert problem.field  # never an empty path


def test_statistics_group_by_distinct_known_dimensions() -> None:
    from contracts.commands import StatisticsRequest

    assert StatisticsRequest.model_validate({"group_by": ["REGION", "SEX"]}).group_by == ["REGION", "SEX"]
    assert list(problems_of({"group_by": ["REGION", "REGION"]}, StatisticsRequest)) == ["group_by"]
    assert list(problems_of({"group_by": ["NAME"]}, StatisticsRequest)) == ["group_by.0"]
    assert list(problems_of({"group_by": []}, StatisticsRequest)) == ["group_by"]
