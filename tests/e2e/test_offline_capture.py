"""Offline capture through the public HTTP routes, with real requests: the XLSForm, Kobo's REST-service
submissions (HTTP Basic with the organisation's client), batches and corrections as GraphQL mutations."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from pyxform import xls2xform

from tests.e2e.conftest import ARRIVED_ON, Api, arrival
from tests.unit.test_kobo_mapping import kobo

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id givenName familyName placeOfOrigin version phoneNumbers } }"
SUBMISSIONS = ("query($status: SubmissionStatus) { offlineSubmissions(status: $status, first: 100) { nodes { "
               "submissionId status caseId attempts answers problems { field message } } } }")
UPDATE = ("mutation($case: ID!, $version: Int!, $input: CaseChangesInput!) { updateCase(caseId: $case, "
          "version: $version, input: $input) { id version givenName placeOfOrigin } }")
SYNC = ("mutation($items: [SyncItemInput!]!) { syncOffline(items: $items) { results { clientId status caseId "
        "version errors { code field message currentVersion changedFields } } } }")


def submission(**answers: Any) -> dict[str, Any]:
    """A realistic Kobo body: this run's own instance id, arrived twelve days ago."""
    return kobo(**{"meta/instanceID": f"uuid:{uuid.uuid4()}", "_uuid": str(uuid.uuid4()),
                   "arrival/arrival_date": ARRIVED_ON, **answers})


def post_kobo(api: Api, body: Any, auth: tuple[str, str] | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{api.platform.base_url}/offline/kobo/submissions", json=body, auth=auth, headers=headers,
                      timeout=30)


def stored(api: Api, submission_id: str) -> int:
    with psycopg.connect(api.platform.database_url) as conn:
        row = conn.execute("select count(*) from intake.offline_submissions where submission_id = %s",
                           (submission_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_arrival_form_is_served_and_converts_with_pyxform(api: Api) -> None:
    response = httpx.get(f"{api.platform.base_url}/offline/arrival-form.xlsx", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    xform = xls2xform.convert(io.BytesIO(response.content), file_type=".xlsx").xform
    assert "<given_name" in xform and "UNACCOMPANIED_CHILD" in xform


def test_the_same_kobo_submission_sent_three_times_registers_once(api: Api) -> None:
    family = f"Kobo{uuid.uuid4().hex[:6]}"
    body = submission(**{"identity/family_name": family})
    auth = api.platform.client_credentials("dgme")
    answers = [post_kobo(api, body, auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200], [a.text for a in answers]
    assert [a.json()["status"] for a in answers] == ["ACCEPTED", "DUPLICATE", "DUPLICATE"]
    case_id = answers[0].json()["case_id"]
    assert {a.json()["case_id"] for a in answers} == {case_id}
    case = api.gql("dgme", CASE, {"id": case_id})["data"]["case"]
    assert (case["familyName"], case["phoneNumbers"]) == (family, ["+22376123456"])
    with psycopg.connect(api.platform.database_url) as conn:
        row = conn.execute("select count(*) from intake.cases where family_name = %s", (family,)).fetchone()
    assert row == (1,)
    listed = api.gql("dgme", SUBMISSIONS)["data"]["offlineSubmissions"]["nodes"]
    mine = {n["status"]: n for n in listed if n["submissionId"] == body["meta/instanceID"]}
    assert mine["ACCEPTED"]["caseId"] == case_id and mine["DUPLICATE"]["attempts"] == 2


def test_a_wrong_secret_is_refused_and_nothing_is_stored(api: Api) -> None:
    body = submission()
    client_id, _ = api.platform.client_credentials("dgme")
    refused = post_kobo(api, body, (client_id, "not-the-secret"))
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    assert post_kobo(api, body).status_code == 401
    assert stored(api, body["meta/instanceID"]) == 0


def test_a_bearer_token_works_too(api: Api) -> None:
    body = submission()
    answer = post_kobo(api, body, headers={"Authorization": f"Bearer {api.token('ame')}"})
    assert answer.status_code == 201 and answer.json()["status"] == "ACCEPTED"


def test_an_organisation_without_cases_write_cannot_submit(api: Api) -> None:
    body = submission()
    answer = post_kobo(api, body, api.platform.client_credentials("unicef"))
    assert answer.status_code == 403 and stored(api, body["meta/instanceID"]) == 0


def test_a_rejected_submission_is_a_4xx_kobo_logs_and_it_is_listed_with_its_reason(api: Api) -> None:
    body = submission(**{"identity/estimated_age": "140", "arrival/arrival_point": "TIMBUKTU"})
    answer = post_kobo(api, body, api.platform.client_credentials("dgme"))
    assert answer.status_code == 422
    assert {p["field"] for p in answer.json()["problems"]} == {"estimated_age", "arrival_point"}
    listed = api.gql("dgme", SUBMISSIONS, {"status": "REJECTED"})["data"]["offlineSubmissions"]["nodes"]
    [row] = [n for n in listed if n["submissionId"] == body["meta/instanceID"]]
    assert {p["field"] for p in row["problems"]} == {"estimated_age", "arrival_point"}
    assert row["answers"]["arrival_point"] == "TIMBUKTU" and row["caseId"] is None
    others = api.gql("ame", SUBMISSIONS)["data"]["offlineSubmissions"]["nodes"]
    assert body["meta/instanceID"] not in str(others)


def test_a_body_that_is_not_a_submission_is_a_400(api: Api) -> None:
    answer = httpx.post(f"{api.platform.base_url}/offline/kobo/submissions", content=b"[1, 2]",
                        auth=api.platform.client_credentials("dgme"), headers={"Content-Type": "application/json"},
                        timeout=30)
    assert answer.status_code == 400


def test_update_case_conflict_names_the_current_version_and_changed_fields(api: Api) -> None:
    case_id = api.register("dgme", arrival(givenName="Offline"))["data"]["registerArrival"]["id"]
    done = api.gql("dgme", UPDATE, {"case": case_id, "version": 1, "input": {"givenName": "Awa"}})
    assert done["data"]["updateCase"]["version"] == 2, done
    stale = api.gql("dgme", UPDATE, {"case": case_id, "version": 1, "input": {"placeOfOrigin": "Kati"}})
    assert stale["data"] is None
    [error] = stale["errors"]
    assert error["extensions"]["code"] == "CONFLICT" and error["extensions"]["field"] == "version"
    assert error["extensions"]["currentVersion"] == 2 and error["extensions"]["changedFields"] == ["givenName"]
    bad = api.gql("dgme", UPDATE, {"case": case_id, "version": 2, "input": {"estimatedAge": 121}})
    assert bad["errors"][0]["extensions"]["field"] == "input.estimatedAge"
    assert api.gql("dgme", CASE, {"id": case_id})["data"]["case"]["placeOfOrigin"] is None


def test_sync_offline_applies_each_item_once_and_reports_conflicts(api: Api) -> None:
    case_id = api.register("dgme", arrival(givenName="Synchro"))["data"]["registerArrival"]["id"]
    new, bad, edit_a, edit_b = (str(uuid.uuid4()) for _ in range(4))
    items = [
        {"clientId": new, "command": "REGISTER_ARRIVAL", "arrival": arrival(givenName="Hors-ligne")},
        {"clientId": bad, "command": "REGISTER_ARRIVAL", "arrival": arrival(estimatedAge=300)},
        {"clientId": edit_a, "command": "UPDATE_CASE", "caseId": case_id, "baseVersion": 1,
         "changes": {"placeOfOrigin": "Kati"}},
        {"clientId": edit_b, "command": "UPDATE_CASE", "caseId": case_id, "baseVersion": 1,
         "changes": {"placeOfOrigin": "Ségou"}},
    ]
    body = api.gql("dgme", SYNC, {"items": items})
    results = body["data"]["syncOffline"]["results"]
    assert [r["status"] for r in results] == ["APPLIED", "REJECTED", "APPLIED", "CONFLICT"], body
    assert results[1]["errors"][0]["field"] == "arrival.estimatedAge"
    assert results[3]["version"] == 2 and results[3]["errors"][0]["changedFields"] == ["placeOfOrigin"]
    replay = api.gql("dgme", SYNC, {"items": items})["data"]["syncOffline"]["results"]
    assert [r["status"] for r in replay] == ["ALREADY_APPLIED", "REJECTED", "ALREADY_APPLIED", "CONFLICT"]
    assert replay[0]["caseId"] == results[0]["caseId"]
    case = api.gql("dgme", CASE, {"id": case_id})["data"]["case"]
    assert (case["placeOfOrigin"], case["version"]) == ("Kati", 2)


def test_the_sync_route_takes_the_same_batch_as_json(api: Api) -> None:
    client_id = str(uuid.uuid4())
    payload = {"items": [{"client_id": client_id, "command": "REGISTER_ARRIVAL", "arrival": {
        "given_name": "Route", "family_name": "Sync", "sex": "MALE", "estimated_age": 30,
        "country_returned_from": "NE", "arrival_point": "GAO", "arrival_date": ARRIVED_ON,
        "destination_region": "07", "consent": {"given": False}}}]}
    headers = {"Authorization": f"Bearer {api.token('dgme')}"}
    first = httpx.post(f"{api.platform.base_url}/offline/sync", json=payload, headers=headers, timeout=30)
    again = httpx.post(f"{api.platform.base_url}/offline/sync", json=payload, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["results"][0]["status"] == "APPLIED"
    assert again.json()["results"][0]["status"] == "ALREADY_APPLIED"
    assert httpx.post(f"{api.platform.base_url}/offline/sync", json=payload, timeout=30).status_code == 401
    unknown = {"client_id": str(uuid.uuid4()), "command": "REGISTER_ARRIVAL", "arrival": {
        **payload["items"][0]["arrival"], "consent": {"given": True, "recipient_org_ids": ["nobody"]}}}
    mixed = httpx.post(f"{api.platform.base_url}/offline/sync", headers=headers, timeout=30,
                       json={"items": [unknown, payload["items"][0]]}).json()["results"]
    assert [r["status"] for r in mixed] == ["REJECTED", "ALREADY_APPLIED"]
    assert mixed[0]["errors"][0]["field"] == "arrival.consent.recipient_org_ids"
