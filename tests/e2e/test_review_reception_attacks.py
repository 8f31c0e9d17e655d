"""Adversarial review of issue 10 through the public edge: a hostile manifest posted by an organisation,
an outsider guessing Kobo credentials, a check-in key or a family walk used by another organisation."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.e2e.conftest import Api, arrival
from tests.e2e.test_manifest_checkin_e2e import CHECK_IN, CONSENT, GROUP, XLSX, post_manifest
from tests.e2e.test_offline_capture import post_kobo, submission
from tests.integration.test_review_reception_attacks import HEADER_ROW, workbook

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id givenName } }"
FAMILY = """query($id: ID!) { family(caseId: $id) { members { caseId ownerOrganisation { id } person { givenName } }
  links { caseId relation linkedCaseId } } }"""


def test_a_1_kb_workbook_posted_to_manifests_is_refused_at_once_and_the_platform_keeps_answering(api: Api) -> None:
    """A row declared a million lines down: before the fix, intake's event loop spent seconds producing
    empty rows (every organisation's registrations waited)."""
    group = api.gql("dgme", GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]
    hostile = workbook(HEADER_ROW + '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>')
    started = time.perf_counter()
    refused = post_manifest(api, "dgme", params={"groupId": group["id"], "sender": "OIM"}, content=hostile,
                            headers={"Content-Type": XLSX})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["field"] == "file"
    assert time.perf_counter() - started < 3.0


def test_an_unknown_kobo_client_and_a_wrong_secret_get_the_same_refusal(api: Api) -> None:
    """An outsider cannot tell a client id that exists from one that does not (the answer, its status and
    challenge are the same; the argon2 check runs either way: gateway/auth/passwords.py)."""
    client_id, _ = api.platform.client_credentials("ame")
    body = submission()
    wrong = post_kobo(api, body, (client_id, "not-the-secret"))
    unknown = post_kobo(api, body, (f"nobody-{uuid.uuid4().hex[:8]}", "not-the-secret"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


def test_another_organisations_check_in_key_replays_nothing_of_dgmes(api: Api) -> None:
    """ame reuses the idempotency key dgme checked a person in with, on ame's own group: it registers ame's own
    person and learns nothing of dgme's (keys belong to the organisation and client that sent them)."""
    key = str(uuid.uuid4())
    dgme_group = api.gql("dgme", GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]
    name = f"Dgme{uuid.uuid4().hex[:6]}"
    made = api.gql("dgme", CHECK_IN, {"group": dgme_group["id"], "person": None, "key": key, "input": {
        "givenName": name, "familyName": "Keïta", "sex": "FEMALE", "estimatedAge": 30, "consent": CONSENT,
        "destinationRegion": "07"}})
    assert not made.get("errors"), made
    ame_group = api.gql("ame", GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]
    replay = api.gql("ame", CHECK_IN, {"group": ame_group["id"], "person": None, "key": key, "input": {
        "givenName": "Ame", "familyName": "Keïta", "sex": "FEMALE", "estimatedAge": 30, "consent": CONSENT,
        "destinationRegion": "07"}})
    assert not replay.get("errors"), replay
    assert replay["data"]["checkIn"]["case"]["id"] != made["data"]["checkIn"]["case"]["id"]
    assert name not in str(replay)
    # dgme's group: NOT_FOUND for ame, as a group that does not exist.
    foreign = api.gql("ame", CHECK_IN, {"group": dgme_group["id"], "person": None, "key": str(uuid.uuid4()),
                                        "input": {"givenName": "X", "familyName": "Y", "sex": "MALE",
                                                  "estimatedAge": 30, "consent": CONSENT}})
    absent = api.gql("ame", CHECK_IN, {"group": str(uuid.uuid4()), "person": None, "key": str(uuid.uuid4()),
                                       "input": {"givenName": "X", "familyName": "Y", "sex": "MALE",
                                                 "estimatedAge": 30, "consent": CONSENT}})
    assert [(e["message"], e["extensions"]["code"]) for e in foreign["errors"]] == [
        (e["message"], e["extensions"]["code"]) for e in absent["errors"]]


def test_a_merged_cases_id_answers_an_outsider_exactly_as_an_absent_one(api: Api) -> None:
    """The redirect of a merged id is decided under the survivor's access rules: ame, which reads neither,
    gets the same NOT_FOUND for the merged id, the survivor and an id that never existed."""
    first = api.register("dgme", arrival(givenName="Mahamadou", familyName="Keïta", vulnerabilities=[]))
    second = api.register("dgme", arrival(givenName="Mohamed", familyName="Keita", vulnerabilities=[]))
    survivor, merged = first["data"]["registerArrival"]["id"], second["data"]["registerArrival"]["id"]
    done = api.gql("dgme", """mutation($s: ID!, $m: ID!) { mergeCases(survivorId: $s, mergedId: $m,
      reason: "Same person, same passport") { id } }""", {"s": survivor, "m": merged})
    assert not done.get("errors"), done
    answers = [api.gql("ame", CASE, {"id": i}) for i in (merged, survivor, str(uuid.uuid4()))]
    shapes = [(a["data"], [(e["message"], e["extensions"]["code"]) for e in a["errors"]]) for a in answers]
    assert shapes[0] == shapes[1] == shapes[2]
    assert "Mahamadou" not in str(answers) and survivor not in str(answers[0])


def test_an_anonymous_sync_or_manifest_is_refused_before_anything_is_read(api: Api) -> None:
    base = api.platform.base_url
    assert httpx.post(f"{base}/offline/sync", json={"items": []}, timeout=30).status_code == 401
    assert httpx.post(f"{base}/manifests", content=b"Nom;Prenom\n", headers={"Content-Type": "text/csv"},
                      timeout=30).status_code == 401


def test_guessing_a_kobo_secret_is_slowed_down_even_once_the_real_secret_is_cached(api: Api) -> None:
    """The Kobo route caches a token per (client, secret): a guesser must not get around the failure throttle
    through it, and must not lock the real Kobo server out."""
    from tests.e2e.test_auth_abuse import caller
    from tests.e2e.test_oauth_lifecycle import confidential_client

    auth = confidential_client(api.platform, "dgme", "cases:write cases:read")
    with caller(api.platform) as kobo_server:
        first = kobo_server.post("/offline/kobo/submissions", json=submission(), auth=auth)
        assert first.status_code == 201, first.text  # the real secret: its token is now cached
    with caller(api.platform, "127.0.0.41") as guesser:
        answers = [guesser.post("/offline/kobo/submissions", json=submission(), auth=(auth[0], f"guess-{i}"))
                   for i in range(7)]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 2
        assert guesser.post("/offline/kobo/submissions", json=submission(), auth=auth).status_code == 429
    with caller(api.platform) as kobo_server:
        assert kobo_server.post("/offline/kobo/submissions", json=submission(), auth=auth).status_code == 201
