"""A person's phone numbers are stored in E.164, whatever way the agent wrote them."""

import pytest
from pydantic import ValidationError

from contracts.commands import RegisterArrival

BASE = {"given_name": "Awa", "family_name": "Keïta", "sex": "FEMALE", "estimated_age": 30,
        "country_returned_from": "LY", "arrival_point": "BAMAKO_AIRPORT", "arrival_date": "2026-11-01",
        "destination_region": "01", "consent": {"given": False}}


@pytest.mark.parametrize("written", ["76 12 34 56", "+223 76 12 34 56", "00223-76-12-34-56", "(+223) 76123456"])
def test_malian_numbers_in_any_writing_are_stored_in_e164(written: str) -> None:
    arrival = RegisterArrival.model_validate({**BASE, "phone_numbers": [written]})
    assert arrival.phone_numbers == ["+22376123456"]


def test_a_foreign_number_keeps_its_country_and_duplicates_collapse() -> None:
    arrival = RegisterArrival.model_validate({**BASE, "phone_numbers": ["+218 91 234 5678", "+218912345678"]})
    assert arrival.phone_numbers == ["+218912345678"]


@pytest.mark.parametrize("written", ["12", "+223 12", "not a phone", "+999 1234567"])
def test_an_invalid_number_is_refused_naming_the_field(written: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RegisterArrival.model_validate({**BASE, "phone_numbers": [written]})
    error = caught.value.errors()[0]
    assert error["loc"][:2] == ("phone_numbers", 0)


def test_place_of_origin_must_name_a_place() -> None:
    assert RegisterArrival.model_validate({**BASE, "place_of_origin": "Kita"}).place_of_origin == "Kita"
    with pytest.raises(ValidationError):
        RegisterArrival.model_validate({**BASE, "place_of_origin": "  "})
