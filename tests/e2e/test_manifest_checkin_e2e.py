"""Reception of a group through the public edge: a manifest uploaded by a GraphQL multipart request (CSV)
and by the plain HTTP route (XLSX made with openpyxl, and raw CSV), then check-in, a walk-in, closing the
group, and what another organisation sees."""

from __future__ import annotations

import io
import json
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from tests.e2e.conftest import ARRIVED_ON, Api

pytestmark = pytest.mark.e2e

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GROUP = """mutation($key: String!) { createArrivalGroup(idempotencyKey: $key, input: {kind: FLIGHT, reference: "UJ3214",
  arrivalDate: "%s", arrivalPoint: BAMAKO_AIRPORT, countryReturnedFrom: "LY"}) { id status } }""" % ARRIVED_ON
UPLOAD = """mutation($group: ID!, $file: Upload!) { uploadManifest(groupId: $group, sender: "OIM Libye", file: $file) {
  rowsRead added rejectedRows alreadyPresentRows problems { row column field reason } warnings { column }
  mapping { column field } } }"""
GROUP_READ = """query($group: ID!, $status: ExpectedStatus) { arrivalGroup(id: $group, status: $status) {
  status totals { expected checkedIn noShow addedOnArrival children vulnerable }
  people { nodes { id sourceRow givenName familyName status householdRef relationship phoneNumbers caseId } } } }"""
CHECK_IN = """mutation($group: ID!, $person: ID, $key: String!, $input: CheckInInput!) {
  checkIn(groupId: $group, expectedPersonId: $person, idempotencyKey: $key, input: $input) {
    expectedPerson { status caseId addedOnArrival } case { id givenName familyName arrivalPoint arrivalDate
    countryReturnedFrom destinationRegion { code } sharing { given } } } }"""
CONSENT = {"given": True, "recipientOrgIds": ["unicef"]}


def csv_manifest() -> bytes:
    text = ("Nom;Prénom(s);Sexe;Date de naissance;Âge;Téléphone;N° passeport;Lieu d'origine;Ménage/Famille;"
            "Lien de parenté;Observations\n"
            "Keïta;Awa;F;12/03/1994;;76 12 34 56;AB123456;Kayes;F1;Mère;\n"
            "Keïta;Moussa;M;;7;;;Kayes;F1;Fils;\n"
            "Traoré;;M;;30;;;;;;sans prénom\n"
            "Diallo;Issa;M;01/01/1990;;;;Nioro;;;\n")
    return ("\ufeff" + text).encode()


def xlsx_manifest(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Manifeste vol charter"])  # a title above the header, as senders write them
    sheet.append(["Surname", "Given names", "Sex", "DOB", "Age", "Phone", "Passport no", "Household", "Relationship"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def multipart(api: Api, org: str, query: str, variables: dict[str, Any], content: bytes, name: str,
              media: str) -> dict[str, Any]:
    """A GraphQL multipart request (the GraphQL multipart request specification): the file is variable ``file``."""
    response = httpx.post(api.platform.graphql_url, headers={"Authorization": f"Bearer {api.token(org)}"},
                          data={"operations": json.dumps({"query": query, "variables": {**variables, "file": None}}),
                                "map": json.dumps({"0": ["variables.file"]})},
                          files={"0": (name, content, media)}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def post_manifest(api: Api, org: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{api.platform.base_url}/manifests", headers={
        "Authorization": f"Bearer {api.token(org)}", **kwargs.pop("headers", {})}, timeout=30, **kwargs)


def test_a_manifest_by_graphql_multipart_then_check_in_walk_in_and_close(api: Api) -> None:
    group = api.gql("dgme", GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]
    uploaded = multipart(api, "dgme", UPLOAD, {"group": group["id"]}, csv_manifest(), "manifeste.csv", "text/csv")
    result = uploaded["data"]["uploadManifest"]
    assert result["rowsRead"] == 4 and result["added"] == 3 and result["rejectedRows"] == [4]
    assert result["problems"] == [{"row": 4, "column": "Prénom(s)", "field": "given_name", "reason": "missing"}]
    assert result["warnings"] == [{"column": "Observations"}]
    again = multipart(api, "dgme", UPLOAD, {"group": group["id"]}, csv_manifest(), "manifeste.csv", "text/csv")
    assert again["data"]["uploadManifest"] == result, "the same file again: the same answer, nothing added"

    read = api.gql("dgme", GROUP_READ, {"group": group["id"]})["data"]["arrivalGroup"]
    mother, son, _ = read["people"]["nodes"]
    assert (mother["householdRef"], mother["relationship"], son["householdRef"]) == ("F1", "Mère", "F1")
    assert mother["phoneNumbers"] == ["+22376123456"] and mother["status"] == "EXPECTED"

    done = api.gql("dgme", CHECK_IN, {"group": group["id"], "person": mother["id"], "key": str(uuid.uuid4()),
                                      "input": {"consent": CONSENT, "destinationRegion": "01",
                                                "vulnerabilities": ["SINGLE_PARENT"]}})
    checked = done["data"]["checkIn"]
    assert checked["expectedPerson"]["status"] == "CHECKED_IN"
    assert checked["expectedPerson"]["caseId"] == checked["case"]["id"]
    assert (checked["case"]["familyName"], checked["case"]["arrivalPoint"], checked["case"]["arrivalDate"],
            checked["case"]["countryReturnedFrom"]) == ("Keïta", "BAMAKO_AIRPORT", ARRIVED_ON, "LY")
    case = api.gql("dgme", "query($c: ID!) { case(id: $c) { id givenName } }", {"c": checked["case"]["id"]})
    assert case["data"]["case"]["givenName"] == "Awa"

    twice = api.gql("dgme", CHECK_IN, {"group": group["id"], "person": mother["id"], "key": str(uuid.uuid4()),
                                       "input": {"consent": CONSENT, "destinationRegion": "01"}})
    assert twice["errors"][0]["extensions"]["code"] == "CONFLICT"
    missing = api.gql("dgme", CHECK_IN, {"group": group["id"], "person": son["id"], "key": str(uuid.uuid4()),
                                         "input": {"consent": CONSENT}})
    assert missing["errors"][0]["extensions"]["field"] == "input.destinationRegion"

    walk_in = api.gql("dgme", CHECK_IN, {"group": group["id"], "key": str(uuid.uuid4()), "input": {
        "consent": CONSENT, "destinationRegion": "07", "givenName": "Oumar", "familyName": "Sidibé", "sex": "MALE",
        "estimatedAge": 41}})
    assert walk_in["data"]["checkIn"]["expectedPerson"]["addedOnArrival"] is True

    closed = api.gql("dgme", "mutation($g: ID!) { closeArrivalGroup(id: $g) { status totals { expected checkedIn "
                             "noShow addedOnArrival children } } }", {"g": group["id"]})["data"]["closeArrivalGroup"]
    assert closed == {"status": "CLOSED", "totals": {"expected": 3, "checkedIn": 2, "noShow": 2, "addedOnArrival": 1,
                                                     "children": 1}}
    no_shows = api.gql("dgme", GROUP_READ, {"group": group["id"], "status": "NO_SHOW"})["data"]["arrivalGroup"]
    assert sorted(p["givenName"] for p in no_shows["people"]["nodes"]) == ["Issa", "Moussa"]

    theirs = api.gql("ame", GROUP_READ, {"group": group["id"]})
    assert theirs["data"] is None and theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listed = api.gql("ame", "{ arrivalGroups(first: 100) { nodes { id } } }")["data"]["arrivalGroups"]["nodes"]
    assert group["id"] not in [g["id"] for g in listed]


def test_a_manifest_by_the_http_route_xlsx_and_raw_csv(api: Api) -> None:
    born = (date.fromisoformat(ARRIVED_ON) - timedelta(days=365 * 9)).isoformat()
    content = xlsx_manifest([
        ["Coulibaly", "Sira", "F", date(1992, 5, 1), None, 76123457, "P1234567", "H7", "Mother"],
        ["Coulibaly", "Bakary", "M", date.fromisoformat(born), None, None, None, "H7", "Son"],
        ["Coulibaly", "Nana", "Q", None, 30, None, None, None, None],
    ])
    group_fields = {"kind": "CONVOY", "reference": f"Convoi {uuid.uuid4().hex[:6]}", "arrivalDate": ARRIVED_ON,
                    "arrivalPoint": "GAO", "countryReturnedFrom": "DZ", "sender": "Croissant-Rouge algérien"}
    response = post_manifest(api, "dgme", data=group_fields, files={"file": ("convoi.xlsx", content, XLSX)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"]["added"] == 2 and body["result"]["rejectedRows"] == [5], "header on row 2, data from 3"
    assert body["result"]["problems"][0]["column"] == "Sex"
    repeat = post_manifest(api, "dgme", data=group_fields, files={"file": ("convoi.xlsx", content, XLSX)})
    assert repeat.json() == body, "the same post again: the same group, the same answer"

    raw = "Surname,Given names,Sex,Age\nCoulibaly,Nana,F,30\n".encode()
    more = post_manifest(api, "dgme", params={"groupId": body["groupId"], "sender": "Croissant-Rouge algérien"},
                         content=raw, headers={"Content-Type": "text/csv"})
    assert more.status_code == 200, more.text
    assert more.json()["result"]["added"] == 1
    read = api.gql("dgme", GROUP_READ, {"group": body["groupId"]})["data"]["arrivalGroup"]
    assert read["totals"]["expected"] == 3 and read["totals"]["children"] == 1
    assert read["people"]["nodes"][0]["phoneNumbers"] == ["+22376123457"]
    assert read["people"]["nodes"][1]["householdRef"] == "H7" and read["people"]["nodes"][1]["relationship"] == "Son"

    odd = "Patronyme;Petit nom;Genre;Années\nCoulibaly;Fanta;F;25\n".encode()
    mapping = json.dumps({"Patronyme": "FAMILY_NAME", "Petit nom": "GIVEN_NAME", "Années": "ESTIMATED_AGE"})
    mapped = post_manifest(api, "dgme", params={"groupId": body["groupId"], "sender": "Ambassade", "mapping": mapping},
                           content=odd, headers={"Content-Type": "text/csv"})
    assert mapped.status_code == 200 and mapped.json()["result"]["added"] == 1, mapped.text
    assert [c["column"] for c in mapped.json()["result"]["mapping"]] == ["Patronyme", "Petit nom", "Genre", "Années"]

    too_big = post_manifest(api, "dgme", params={"groupId": body["groupId"], "sender": "x"},
                            content=b"Nom;Prenom;Sexe;Age\n" + b"x" * 450_000, headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 400 and too_big.json()["error"]["field"] == "file"
    assert "400000 bytes" in too_big.json()["error"]["message"]
    theirs = post_manifest(api, "ame", params={"groupId": body["groupId"], "sender": "x"}, content=raw,
                           headers={"Content-Type": "text/csv"})
    assert theirs.status_code == 404
    anonymous = httpx.post(f"{api.platform.base_url}/manifests", content=raw, headers={"Content-Type": "text/csv"})
    assert anonymous.status_code == 401
