"""A KoboToolbox REST-service submission becomes a RegisterArrival payload: answers by their question's
name whatever the group, Kobo's metadata dropped, values converted (the contract validates)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.commands import RegisterArrival
from contracts.xlsform import read_submission


def kobo(**answers: Any) -> dict[str, Any]:
    """A submission as KoboToolbox's REST service posts it (JSON format)."""
    body: dict[str, Any] = {
        "_id": 150250, "_uuid": "2a11435f-8eaf-44f9-bd75-00a4bac8fbcd", "formhub/uuid": "799705ba0bd54b4d97bc",
        "meta/instanceID": "uuid:2a11435f-8eaf-44f9-bd75-00a4bac8fbcd", "_submission_time": "2026-11-30T17:19:15",
        "_xform_id_string": "segin_arrival", "_status": "submitted_via_web", "_geolocation": [None, None],
        "_attachments": [], "_tags": [], "_notes": [], "_submitted_by": "agent_gao", "__version__": "vabc",
        "_validation_status": {}, "start": "2026-11-30T17:00:00.000+00:00",
        "identity/given_name": "Awa", "identity/family_name": "Keïta", "identity/sex": "FEMALE",
        "identity/dob_known": "no", "identity/estimated_age": "24", "identity/phone_number": "76 12 34 56",
        "identity/place_of_origin": "Kati", "arrival/country_returned_from": "LY", "arrival/arrival_point": "GAO",
        "arrival/arrival_date": "2026-11-29", "arrival/destination_region": "07",
        "screening/vulnerabilities": "PREGNANT SINGLE_PARENT",
        "consent/consent_given": "yes", "consent/consent_purposes": "REFERRAL FOLLOW_UP",
        "consent/consent_recipient_types": "NGO STATE", "consent/consent_given_by": "PERSON",
        "consent/consent_language": "bm",
    }
    body.update(answers)
    return {k: v for k, v in body.items() if v is not None}


def test_a_submission_maps_onto_the_command() -> None:
    read = read_submission(kobo())
    assert read.submission_id == "uuid:2a11435f-8eaf-44f9-bd75-00a4bac8fbcd"
    assert read.submitted_at == "2026-11-30T17:19:15"
    arrival = RegisterArrival.model_validate(read.arrival)
    assert arrival.given_name == "Awa" and arrival.estimated_age == 24 and arrival.date_of_birth is None
    assert arrival.phone_numbers == ["+22376123456"]
    assert [v.value for v in arrival.vulnerabilities] == ["PREGNANT", "SINGLE_PARENT"]
    assert arrival.consent.given and [p.value for p in arrival.consent.purposes] == ["REFERRAL", "FOLLOW_UP"]
    assert [t.value for t in arrival.consent.recipient_org_types] == ["NGO", "STATE"]
    assert arrival.consent.language == "bm"


def test_kobo_metadata_is_not_kept() -> None:
    arrival = read_submission(kobo()).arrival
    assert not [k for k in arrival if k.startswith("_") or "/" in k]
    assert "start" not in arrival and "dob_known" not in arrival


def test_groups_do_not_matter_only_question_names() -> None:
    body = {k.rsplit("/", 1)[-1] if not k.startswith(("_", "meta/")) else k: v for k, v in kobo().items()}
    assert read_submission(body).arrival == read_submission(kobo()).arrival


def test_the_answer_not_relevant_is_left_out() -> None:
    read = read_submission(kobo(**{"identity/dob_known": "yes", "identity/date_of_birth": "2001-05-04"}))
    assert read.arrival["date_of_birth"] == "2001-05-04" and "estimated_age" not in read.arrival


def test_a_refusal_drops_the_questions_asked_only_on_consent() -> None:
    arrival = read_submission(kobo(**{"consent/consent_given": "no"})).arrival
    assert arrival["consent"] == {"given": False, "given_by": "PERSON", "language": "bm"}
    RegisterArrival.model_validate(arrival)


def test_without_instance_id_the_uuid_names_the_submission() -> None:
    assert read_submission(kobo(**{"meta/instanceID": None})).submission_id == \
        "uuid:2a11435f-8eaf-44f9-bd75-00a4bac8fbcd"
    assert read_submission({"identity/given_name": "X"}).submission_id is None


def test_bad_values_are_passed_on_for_the_contract_to_name() -> None:
    arrival = read_submission(kobo(**{"identity/estimated_age": "vingt", "arrival/destination_region": "99"})).arrival
    with pytest.raises(ValidationError) as caught:
        RegisterArrival.model_validate(arrival)
    assert {e["loc"][0] for e in caught.value.errors()} == {"estimated_age", "destination_region"}


def test_empty_answers_are_absent() -> None:
    arrival = read_submission(kobo(**{"identity/place_of_origin": "  ", "identity/phone_number": ""})).arrival
    assert "place_of_origin" not in arrival and "phone_numbers" not in arrival
