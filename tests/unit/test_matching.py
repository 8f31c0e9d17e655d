"""Name normalisation and scoring for people already known (decision record 0022): pure rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from contracts.commands import MatchCandidatesRequest, MergeCases
from services.intake import matching
from services.intake.matching import Person, key_of_name, score

SEEN = date(2026, 10, 2)


def person(given: str = "Mahamadou", family: str = "Keïta", **facts: Any) -> Person:
    values: dict[str, Any] = {"sex": "MALE", "date_of_birth": date(1994, 5, 12), "seen_on": SEEN,
                              "destination_region": "02", **facts}
    return Person(given, family, **values)


def codes(a: Person, b: Person) -> set[str]:
    return {r.code for r in score(a, b).reasons}


@pytest.mark.parametrize("one,other", [
    ("Keïta", "Keita"), ("Keita", "Keyta"), ("Traoré", "Traore"), ("Coulibaly", "Kulibali"), ("Diarra", "Jara"),
    ("Touré", "Toure"), ("Diallo", "Jallo"), ("Cissé", "Sisse"), ("Maïga", "Maiga"), ("Sidibé", "SIDIBE"),
    ("Camara", "Kamara"), ("Moussa", "Musa"), ("Oumar", "Umar"), ("Oumar", "Omar"), ("Fatoumata", "Fatimata"),
    ("Fatoumata", "Fatouma"), ("Aïssata", "Aissata"), ("Aïssata", "Aichata"), ("Mohamed", "Mohammed"),
    ("Mohamed", "Mahamadou"), ("Djénéba", "Zeinab"), ("Bah", "Ba"), ("N'Diaye", "Ndiaye"),
])
def test_spellings_of_one_name_have_one_key(one: str, other: str) -> None:
    assert key_of_name(one) == key_of_name(other)


@pytest.mark.parametrize("one,other", [("Mamadou", "Mahamadou"), ("Mamadou", "Mohamed"), ("Aïcha", "Aïssata"),
                                       ("Traoré", "Touré"), ("Koné", "Konaté"), ("Fanta", "Fatoumata")])
def test_different_names_keep_different_keys(one: str, other: str) -> None:
    assert key_of_name(one) != key_of_name(other)


def test_the_variants_table_is_well_formed() -> None:
    table = matching.variants()
    assert table[matching.phonetic("mahamadou")] == matching.phonetic("mohamed")
    assert all(value in table for value in table.values()), "every group's key is in its group"


def test_accents_alone_are_the_same_name_shown_as_written() -> None:
    a, b = person("Aïssata", "Keïta", sex="FEMALE"), person("Aissata", "Keita", sex="FEMALE")
    assert score(a, b).score == score(a, a).score and codes(a, b) >= {"NAME_SAME", "SAME_BIRTH_DATE"}
    assert matching.Reason("NAME_SAME", "Keïta = Keita") in score(a, b).reasons


@pytest.mark.parametrize("name", ["Keïta", "N'Diaye", "Sidi-Mohamed  Ould", "Mamadou_Lamine", "x-", " Awa ", "A."])
def test_names_are_shown_word_for_word_as_written(name: str) -> None:
    assert len(matching.spelt(name)) == len(matching.tokens(name))


def test_a_transliteration_is_a_variant_with_both_spellings_in_the_reason() -> None:
    match = score(person("Mohamed"), person("Mahamadou"))
    assert match.score >= matching.THRESHOLD
    assert matching.Reason("NAME_VARIANT", "Mohamed ~ Mahamadou") in match.reasons


def test_given_and_family_names_swapped_still_match_and_say_so() -> None:
    a, b = person("Mahamadou", "Keïta"), person("Keita", "Mohamed")
    assert score(a, b).score >= matching.THRESHOLD
    assert {"NAME_VARIANT", "NAME_ORDER_SWAPPED"} <= codes(a, b)


def test_a_second_given_name_costs_little() -> None:
    one, two = person("Mamadou"), person("Mamadou Lamine")
    assert matching.THRESHOLD <= score(one, two).score < score(one, person("Mamadou")).score


def test_a_typo_is_a_typo_and_a_different_name_is_not_a_match() -> None:
    assert "NAME_TYPO" in codes(person("Boubacar"), person("Boubaacr"))
    assert score(person("Boubacar"), person("Seydou", date_of_birth=None, estimated_age=32)).score \
        < matching.THRESHOLD


@pytest.mark.parametrize("years_apart,close", [(0, True), (1, True), (2, True), (6, False)])
def test_an_estimated_age_matches_a_date_of_birth_within_a_tolerance(years_apart: int, close: bool) -> None:
    born = person()  # 1994: 32 when seen in 2026
    estimated = person("Mohamed", date_of_birth=None, estimated_age=32 + years_apart)
    found = codes(born, estimated)
    assert ("AGE_CLOSE" in found) is close
    assert (score(born, estimated).score >= matching.THRESHOLD) is close
    if years_apart > matching.AGE_FAR_YEARS:
        assert "AGE_FAR" in found


def test_same_date_of_birth_beats_a_close_one() -> None:
    same = score(person(), person())
    close = score(person(), person(date_of_birth=date(1994, 12, 5)))
    assert same.score > close.score and "BIRTH_DATE_CLOSE" in {r.code for r in close.reasons}


def test_a_shared_phone_adds_evidence_and_is_named() -> None:
    phone = "+22376123456"
    without = score(person(), person("Mohamed", date_of_birth=None, estimated_age=35))
    with_phone = score(person(phone_numbers=(phone,)),
                       person("Mohamed", date_of_birth=None, estimated_age=35, phone_numbers=(phone, "+22366000000")))
    assert with_phone.score > without.score and matching.Reason("SAME_PHONE", phone) in with_phone.reasons


def test_place_of_origin_and_sex() -> None:
    assert "SAME_PLACE_OF_ORIGIN" in codes(person(place_of_origin="Nioro du Sahel"),
                                           person(place_of_origin="nioro du sahel"))
    differs = score(person(), person(sex="FEMALE"))
    assert "SEX_DIFFERS" in {r.code for r in differs.reasons} and differs.score < score(person(), person()).score


def test_scores_stay_between_zero_and_one() -> None:
    best = person(phone_numbers=("+22376123456",), place_of_origin="Kita")
    assert score(best, best).score == 1.0
    assert score(person("Awa", "Traoré", sex="FEMALE", date_of_birth=date(1960, 1, 1)), person()).score >= 0.0


def test_blocking_keys_meet_for_variants_swaps_and_typos_and_estimated_ages() -> None:
    registered = set(matching.blocking_keys(person(phone_numbers=("+22376123456",))))
    for other in (person("Keita", "Mohamed", date_of_birth=None, estimated_age=33),
                  person("Mahamadou", "Kieta", date_of_birth=None, estimated_age=31),
                  person("Moussa", "Diarra", phone_numbers=("+22376123456",))):
        assert registered & set(matching.lookup_keys(other))
    assert not registered & set(matching.lookup_keys(person(date_of_birth=date(1980, 1, 1))))


def test_a_lookup_request_names_one_subject_and_a_merge_two_cases() -> None:
    with pytest.raises(ValueError, match="either a case id or a person"):
        MatchCandidatesRequest.model_validate({})
    with pytest.raises(ValueError, match="merged into itself"):
        MergeCases.model_validate({"survivor_case_id": "A", "merged_case_id": "a", "reason": "même personne"})
