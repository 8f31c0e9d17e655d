"""Reading manifests, without I/O: headers recognised in French and English, rows checked with
registerArrival's validators, every problem named, fingerprints that survive re-typing, and the
rules of check-in defaults and group totals."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from contracts.commands import CheckInInput, RegisterArrival
from contracts.reference import ManifestField, SensitiveCategory
from kernel.errors import BadInput
from services.intake import manifests, reception_domain
from services.intake.manifests import fingerprint, read_manifest, recognise

TODAY = date(2026, 12, 1)
FR = "Nom;Prénom(s);Sexe;Date de naissance;Âge;Téléphone;N° passeport;Lieu d'origine;Ménage/Famille;Lien de parenté"


def read(text: str, explicit: dict[str, ManifestField] | None = None, bom: bool = False) -> manifests.Manifest:
    return read_manifest((("\ufeff" if bom else "") + text).encode(), explicit or {}, TODAY)


@pytest.mark.parametrize("header,field", [
    ("Nom", ManifestField.FAMILY_NAME), ("NOM DE FAMILLE", ManifestField.FAMILY_NAME),
    ("Surname", ManifestField.FAMILY_NAME), ("Prénom(s)", ManifestField.GIVEN_NAME),
    ("PRENOMS", ManifestField.GIVEN_NAME), ("Given names", ManifestField.GIVEN_NAME), ("Sexe", ManifestField.SEX),
    ("Date de naissance", ManifestField.DATE_OF_BIRTH), ("DOB", ManifestField.DATE_OF_BIRTH),
    ("Âge", ManifestField.ESTIMATED_AGE), ("Age (ans)", ManifestField.ESTIMATED_AGE),
    ("Téléphone", ManifestField.PHONE), ("Téléphone 2", ManifestField.PHONE), ("Tél.", ManifestField.PHONE),
    ("N° passeport", ManifestField.DOCUMENT_NUMBER), ("Passport no.", ManifestField.DOCUMENT_NUMBER),
    ("Lieu d'origine", ManifestField.PLACE_OF_ORIGIN), ("Ménage/Famille", ManifestField.HOUSEHOLD),
    ("Household", ManifestField.HOUSEHOLD), ("Lien de parenté", ManifestField.RELATIONSHIP),
    ("Relationship", ManifestField.RELATIONSHIP), ("Région de destination", ManifestField.DESTINATION_REGION),
])
def test_common_french_and_english_headers_are_recognised_whatever_their_case_and_accents(
        header: str, field: ManifestField) -> None:
    assert recognise(header) == field


def test_an_unknown_header_is_not_guessed() -> None:
    assert recognise("Observations") is None and recognise("Name") is None


def test_a_good_file_gives_one_person_per_row_in_e164_with_its_household() -> None:
    found = read(FR + "\nKeïta;Awa;F;12/03/1990;;76 12 34 56;ab 123456;Kayes;M1;Mère\n", bom=True)
    assert found.problems == [] and found.rows_read == 1
    [(number, row, _)] = found.rows
    assert number == 2 and row.family_name == "Keïta" and row.date_of_birth == date(1990, 3, 12)
    assert row.phone_numbers == ["+22376123456"] and row.document_number == "AB 123456"
    assert (row.household_ref, row.relationship) == ("M1", "Mère")


def test_every_problem_of_every_bad_row_is_named_and_good_rows_kept() -> None:
    found = read(FR + "\nKeïta;Awa;F;;30;;;;;\nTraoré;;X;31/02/1990;;abc;;;;\nDiallo;Ali;M;;;;;;;\n")
    assert [n for n, _, _ in found.rows] == [2] and found.rejected_rows == [3, 4]
    assert {(p["row"], p["column"], p["field"]) for p in found.problems} == {
        (3, "Prénom(s)", "given_name"), (3, "Sexe", "sex"), (3, "Date de naissance", "date_of_birth"),
        (3, "Téléphone", "phone_numbers"), (4, "Date de naissance", "date_of_birth")}
    assert all("Traoré" not in p["reason"] for p in found.problems), "reasons never echo the cell"


def test_rows_agree_with_register_arrival_on_shared_fields() -> None:
    found = read(FR + "\nKeïta;\u200b ;F;;30;;;;;\nKeïta;Awa;F;01/01/2030;;;;;;\nKeïta;Awa;F;;121;;;;;\n")
    reasons = {p["row"]: p["reason"] for p in found.problems}
    assert reasons[2] == "must contain at least one letter"  # Name, as registerArrival says it
    assert reasons[3] == "date of birth cannot be in the future"
    assert "120" in reasons[4]
    with pytest.raises(ValueError, match="at least one letter"):
        RegisterArrival.model_validate({"given_name": "\u200b ", "family_name": "K", "sex": "FEMALE",
                                        "estimated_age": 3, "country_returned_from": "LY",
                                        "arrival_point": "GAO", "arrival_date": "2026-11-01",
                                        "destination_region": "07", "consent": {"given": False}})


def test_commas_and_cp1252_files_are_read_too() -> None:
    found = read_manifest("Surname,Given names,Sex,Age\nKeita,Awa,female,30 ans\n".encode("cp1252"), {}, TODAY)
    assert found.rows[0][1].estimated_age == 30 and found.rows[0][1].sex.value == "FEMALE"
    latin = read_manifest("Nom;Prénom;Sexe;Âge\nKeïta;Awa;F;30\n".encode("cp1252"), {}, TODAY)
    assert latin.rows[0][1].family_name == "Keïta"


def test_unknown_columns_are_warnings_and_a_missing_required_column_is_one_file_error() -> None:
    found = read("Nom;Prénom;Sexe;Âge;Observations\nKeïta;Awa;F;30;rien\n")
    assert found.warnings == [{"row": 1, "column": "Observations", "field": None,
                               "reason": "column not recognised; ignored (give a mapping to read it)"}]
    with pytest.raises(BadInput) as missing:
        read("Nom;Prénom;Âge\nKeïta;Awa;30\n")
    assert missing.value.field == "file" and "sex" in missing.value.message
    with pytest.raises(BadInput):
        read("Nom;Prénom;Sexe\nKeïta;Awa;F\n")  # neither date of birth nor age


def test_an_explicit_mapping_wins_and_ignore_silences_a_column() -> None:
    explicit = {"Patronyme": ManifestField.FAMILY_NAME, "Petit nom": ManifestField.GIVEN_NAME,
                "Nom": ManifestField.IGNORE}
    found = read("Patronyme;Petit nom;Nom;Sexe;Âge\nKeïta;Awa;Ancien;F;30\n", explicit)
    assert found.rows[0][1].family_name == "Keïta" and found.warnings == []


def test_a_title_row_above_the_header_is_skipped_and_rows_keep_their_numbers() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Manifeste du vol UJ3214"])
    sheet.append(["Surname", "Given names", "Sex", "DOB", "Phone"])
    sheet.append(["Keita", "Awa", "F", datetime(1990, 3, 12), 76123456])
    out = io.BytesIO()
    book.save(out)
    found = read_manifest(out.getvalue(), {}, TODAY)
    [(number, row, _)] = found.rows
    assert number == 3 and row.date_of_birth == date(1990, 3, 12) and row.phone_numbers == ["+22376123456"]


def test_a_fingerprint_survives_case_accents_spacing_and_phone_order() -> None:
    one = read(FR + "\nKeïta;Awa;F;12/03/1990;;76123456 / 66123456;;Kayes;;\n").rows[0][1]
    two = read(FR + "\nKEITA ; awa ;f;1990-03-12;;+223 66 12 34 56, 76 12 34 56;;KAYES;;\n").rows[0][1]
    other = read(FR + "\nKeïta;Awa;F;12/03/1991;;76123456;;Kayes;;\n").rows[0][1]
    assert fingerprint(one) == fingerprint(two) != fingerprint(other)


def test_a_file_that_is_not_a_table_is_refused_clearly() -> None:
    with pytest.raises(BadInput) as empty:
        read_manifest(b"", {}, TODAY)
    assert empty.value.field == "file"
    with pytest.raises(BadInput):
        read_manifest(b"PK\x03\x04garbage", {}, TODAY)


# --- check-in defaults and totals ------------------------------------------------------------------

GROUP = {"country_returned_from": "LY", "arrival_point": "BAMAKO_AIRPORT", "arrival_date": date(2026, 11, 30)}
ROW = {"given_name": "Awa", "family_name": "Keïta", "sex": "FEMALE", "date_of_birth": date(1990, 3, 12),
       "estimated_age": None, "phone_numbers": ["+22376123456"], "place_of_origin": "Kayes",
       "destination_region": None}


def test_check_in_takes_the_row_and_the_group_and_corrections_win() -> None:
    given = CheckInInput.model_validate({"consent": {"given": False}, "destination_region": "07",
                                         "estimated_age": 35, "given_name": "Aoua"})
    data = reception_domain.arrival_data(GROUP, ROW, given)
    arrival = RegisterArrival.model_validate(data)
    assert arrival.given_name == "Aoua" and arrival.family_name == "Keïta" and arrival.arrival_point.value == \
        "BAMAKO_AIRPORT"
    assert arrival.date_of_birth is None and arrival.estimated_age == 35, "an age given replaces the row's birth date"
    assert arrival.phone_numbers == ["+22376123456"] and arrival.destination_region == "07"


def test_totals_count_children_at_the_groups_arrival_and_vulnerable_checked_in_cases() -> None:
    people = [
        {"status": "CHECKED_IN", "added_on_arrival": False, "date_of_birth": date(2008, 12, 1), "estimated_age": None,
         "vulnerabilities": []},  # 17 on arrival: a child
        {"status": "CHECKED_IN", "added_on_arrival": True, "date_of_birth": None, "estimated_age": 30,
         "vulnerabilities": ["SEPARATED_CHILD"]},  # flagged a child, and vulnerable
        {"status": "NO_SHOW", "added_on_arrival": False, "date_of_birth": date(2008, 11, 1), "estimated_age": None,
         "vulnerabilities": []},  # 18 on arrival
        {"status": "EXPECTED", "added_on_arrival": False, "date_of_birth": None, "estimated_age": 4,
         "vulnerabilities": []},
    ]
    every = frozenset(SensitiveCategory)
    assert reception_domain.totals(people, date(2026, 11, 30), every) == {
        "expected": 3, "checked_in": 2, "no_show": 1, "added_on_arrival": 1, "children": 3, "vulnerable": 1}


def test_totals_count_only_the_flags_the_token_may_see() -> None:
    """A group of one: its counts must not tell a token without child_protection that the person is flagged."""
    alone = [{"status": "CHECKED_IN", "added_on_arrival": True, "date_of_birth": None, "estimated_age": 30,
              "vulnerabilities": ["SEPARATED_CHILD"]}]
    without = frozenset(SensitiveCategory) - {SensitiveCategory.CHILD_PROTECTION}
    assert reception_domain.totals(alone, date(2026, 11, 30), without) == {
        "expected": 0, "checked_in": 1, "no_show": 0, "added_on_arrival": 1, "children": 0, "vulnerable": 0}
    assert reception_domain.totals(alone, date(2026, 11, 30), frozenset({SensitiveCategory.CHILD_PROTECTION})) == {
        "expected": 0, "checked_in": 1, "no_show": 0, "added_on_arrival": 1, "children": 1, "vulnerable": 1}
    # A flag of no sensitive category counts for every token.
    detained = [{**alone[0], "vulnerabilities": ["EX_DETAINEE", "TRAFFICKING_VICTIM"]}]
    assert reception_domain.totals(detained, date(2026, 11, 30), frozenset())["vulnerable"] == 1
