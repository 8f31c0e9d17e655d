"""The worked example, end to end: an unaccompanied girl returned from Libya lands at Bamako airport.

DGME registers her (15, going home to Gao, medical needs, consent to UNICEF and the Gao CSRef);
the platform refers her to UNICEF for child protection (urgent) and to the CSRef for health care
(high), and tells each recipient. Like every returnee she also gets the immediate reception package
(food, shelter, non-food items, onward transport, cash: test_unmet_needs.py); the tests here look
at her protection and care referrals (``protection``). Around it: consent rules, idempotent retries, notification
paging and marking, and what other organisations may (not) see.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVAL_MUTATION, Api, arrival, eventually
from tests.e2e.helpers_tokens import ask_service, internal_token
from tests.survey_answers import RSS_VISIT as HER_ANSWERS

pytestmark = pytest.mark.e2e

CASE = """
query Case($id: ID!) {
  case(id: $id) {
    id givenName familyName sex dateOfBirth estimatedAge countryReturnedFrom arrivalPoint arrivalDate
    destinationRegion { code name } vulnerabilities sharing { legalBasis given recipientOrgIds language }
    ownerOrganisation { id }
    referrals {
      id caseId serviceCategory priority status legalBasis reasonCode dueAt createdAt
      fromOrganisation { id } toOrganisation { id }
    }
  }
}
"""
INCOMING = """
query Incoming($first: Int!, $after: String) {
  incomingReferrals(first: $first, after: $after) {
    nodes { id caseId serviceCategory priority status legalBasis fromOrganisation { id } toOrganisation { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
NOTIFICATIONS = """
query Notifications($first: Int!, $after: String, $unreadOnly: Boolean! = false) {
  notifications(first: $first, after: $after, unreadOnly: $unreadOnly) {
    nodes { id kind priority title titleEn: title(lang: "en") referralId caseId createdAt readAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MARK_READ = "mutation Read($id: ID!) { markNotificationRead(id: $id) { id readAt kind } }"
MAX_PAGES = 50


# --- helpers --------------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(UTC).date()


def born_years_ago(years: int) -> str:
    """A date of birth making the person exactly ``years`` old today (1 January of that year)."""
    return date(today().year - years, 1, 1).isoformat()


def gql_with(api: Api, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.post(query, variables, token=token)
    assert response.status_code == 200, response.text
    return response.json()


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    return body["data"]


def register(api: Api, org: str, person: dict[str, Any], key: str | None = None) -> str:
    return data(api.register(org, person, key))["registerArrival"]["id"]


def protection(referrals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The referrals the screening called for, without the immediate package every arrival gets."""
    return [r for r in referrals if not r["reasonCode"].startswith("IMMEDIATE_")]


def case_referrals(api: Api, org: str, case_id: str) -> list[dict[str, Any]]:
    return protection(data(api.gql(org, CASE, {"id": case_id}))["case"]["referrals"])


def about(notices: list[dict[str, Any]], referrals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notices about these referrals (not those about the immediate package)."""
    ids = {r["id"] for r in referrals}
    return [n for n in notices if n["referralId"] in ids]


def all_pages(api: Api, org: str, query: str, field: str, **variables: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(MAX_PAGES):
        page = data(api.gql(org, query, {"first": 100, "after": after, **variables}))[field]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"more than {MAX_PAGES} pages of {field} for {org}")


def notifications_for(api: Api, org: str, case_id: str, **variables: Any) -> list[dict[str, Any]]:
    return [n for n in all_pages(api, org, NOTIFICATIONS, "notifications", **variables) if n["caseId"] == case_id]


def incoming_for(api: Api, org: str, case_id: str) -> list[dict[str, Any]]:
    return [r for r in all_pages(api, org, INCOMING, "incomingReferrals") if r["caseId"] == case_id]


def summary(referral: dict[str, Any]) -> tuple[str, str, str, str | None, str]:
    return (referral["serviceCategory"], referral["priority"], referral["toOrganisation"]["id"],
            referral["legalBasis"], referral["status"])


def cases_named(platform: Platform, given_name: str) -> int:
    with psycopg.connect(platform.database_url) as conn:
        (count,) = conn.execute("select count(*) from intake.cases where given_name = %s", (given_name,)).fetchone()
    return count


async def nats_ask(platform: Platform, token: str, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Ask a service directly as ``token``'s holder, with the internal token the gateway would send it."""
    return await ask_service(platform, subject, payload, internal_token(platform, token, subject.split(".")[1]))


def at_least(count: int, fetch: Any) -> list[dict[str, Any]]:
    """Poll ``fetch`` until it returns at least ``count`` items; return them."""
    def check() -> list[dict[str, Any]] | None:
        items = fetch()
        return items if len(items) >= count else None

    return eventually(check)


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


# --- the worked example ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def girl(api: Api, platform: Platform) -> dict[str, Any]:
    """DGME gets its own token by client_credentials and registers her; returns token, input and case."""
    client_id, secret = platform.client_credentials("dgme")
    issued = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, secret), timeout=10)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"].lower() == "bearer"
    token = issued.json()["access_token"]

    person = {
        "givenName": unique("Fatoumata"),
        "familyName": "Traoré",
        "sex": "FEMALE",
        "dateOfBirth": born_years_ago(15),
        "countryReturnedFrom": "LY",
        "arrivalPoint": "BAMAKO_AIRPORT",
        "arrivalDate": (today() - timedelta(days=1)).isoformat(),
        "destinationRegion": "07",
        "vulnerabilities": ["UNACCOMPANIED_CHILD", "MEDICAL_NEEDS"],
        "consent": {"given": True, "recipientOrgIds": ["unicef", "csref-gao"], "language": "fr"},
    }
    body = gql_with(api, token, ARRIVAL_MUTATION, {"input": person, "key": f"dgme-{uuid.uuid4()}"})
    case = data(body)["registerArrival"]
    return {"token": token, "input": person, "case": case, "case_id": case["id"]}


@pytest.fixture(scope="module")
def girl_referrals(api: Api, girl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Her referrals once routed, by recipient organisation (as DGME, the case owner, sees them)."""
    referrals = at_least(2, lambda: protection(data(gql_with(api, girl["token"], CASE, {"id": girl["case_id"]}))
                                               ["case"]["referrals"]))
    return {r["toOrganisation"]["id"]: r for r in referrals}


def test_registration_answers_with_the_case(girl: dict[str, Any]) -> None:
    case, person = girl["case"], girl["input"]
    uuid.UUID(case["id"])
    assert case["givenName"] == person["givenName"]
    assert case["familyName"] == "Traoré"
    assert case["destinationRegion"] == {"code": "07", "name": "Gao"}
    assert sorted(case["vulnerabilities"]) == ["MEDICAL_NEEDS", "UNACCOMPANIED_CHILD"]
    [sharing] = case["sharing"]
    assert {k: sharing[k] for k in ("legalBasis", "given", "recipientOrgIds")} == {
        "legalBasis": "CONSENT", "given": True, "recipientOrgIds": ["unicef", "csref-gao"]}


def test_case_reads_back_as_registered(api: Api, girl: dict[str, Any]) -> None:
    case = data(gql_with(api, girl["token"], CASE, {"id": girl["case_id"]}))["case"]
    person = girl["input"]
    assert case["ownerOrganisation"] == {"id": "dgme"}
    assert case["dateOfBirth"] == person["dateOfBirth"]
    assert case["estimatedAge"] is None
    assert case["sex"] == "FEMALE"
    assert case["countryReturnedFrom"] == "LY"
    assert case["arrivalPoint"] == "BAMAKO_AIRPORT"
    assert case["arrivalDate"] == person["arrivalDate"]
    assert case["sharing"][0]["language"] == "fr"


def test_case_shows_the_two_referrals(girl: dict[str, Any], girl_referrals: dict[str, dict[str, Any]]) -> None:
    assert sorted(summary(r) for r in girl_referrals.values()) == [
        ("CHILD_PROTECTION", "URGENT", "unicef", "CONSENT", "PENDING"),
        ("HEALTH_CARE", "HIGH", "csref-gao", "CONSENT", "PENDING"),
    ]
    for referral in girl_referrals.values():
        assert referral["caseId"] == girl["case_id"]
        assert referral["fromOrganisation"] == {"id": "dgme"}
    child, health = girl_referrals["unicef"], girl_referrals["csref-gao"]
    assert child["reasonCode"] == "UNACCOMPANIED_OR_SEPARATED_CHILD"
    assert health["reasonCode"] == "MEDICAL_NEEDS"
    # Urgent work is due sooner than high-priority work.
    assert datetime.fromisoformat(child["dueAt"]) < datetime.fromisoformat(health["dueAt"])
    for referral in (child, health):
        assert datetime.fromisoformat(referral["dueAt"]) > datetime.fromisoformat(referral["createdAt"])


def test_unicef_receives_the_child_protection_referral(api: Api, girl: dict[str, Any],
                                                       girl_referrals: dict[str, dict[str, Any]]) -> None:
    incoming = eventually(lambda: incoming_for(api, "unicef", girl["case_id"]))
    assert len(incoming) == 1
    (referral,) = incoming
    assert referral["id"] == girl_referrals["unicef"]["id"]
    assert (referral["serviceCategory"], referral["priority"], referral["status"]) == (
        "CHILD_PROTECTION", "URGENT", "PENDING")
    assert referral["fromOrganisation"] == {"id": "dgme"}
    assert referral["toOrganisation"] == {"id": "unicef"}


def test_unicef_is_notified_once_in_french_and_english(api: Api, girl: dict[str, Any],
                                                       girl_referrals: dict[str, dict[str, Any]]) -> None:
    notices = eventually(lambda: notifications_for(api, "unicef", girl["case_id"]))
    received = [n for n in notices if n["kind"] == "referral.received"]
    assert len(received) == 1, notices
    assert len(notices) == 1, notices
    (notice,) = received
    assert notice["priority"] == "URGENT"
    assert notice["referralId"] == girl_referrals["unicef"]["id"]
    assert "protection de l'enfant" in notice["title"]
    assert "child protection" in notice["titleEn"].lower()
    assert "protection de l'enfant" not in notice["titleEn"]
    assert notice["readAt"] is None
    # Titles name the kind of work, never the person.
    for title in (notice["title"], notice["titleEn"]):
        assert girl["input"]["givenName"] not in title and "Traoré" not in title


def test_csref_gao_receives_the_health_care_referral(api: Api, girl: dict[str, Any],
                                                     girl_referrals: dict[str, dict[str, Any]]) -> None:
    incoming = eventually(lambda: incoming_for(api, "csref-gao", girl["case_id"]))
    assert [(r["id"], r["serviceCategory"], r["priority"]) for r in incoming] == [
        (girl_referrals["csref-gao"]["id"], "HEALTH_CARE", "HIGH")]
    notices = eventually(lambda: notifications_for(api, "csref-gao", girl["case_id"]))
    assert len(notices) == 1, notices
    assert notices[0]["kind"] == "referral.received"
    assert notices[0]["priority"] == "HIGH"
    assert "soins de santé" in notices[0]["title"]
    assert "health care" in notices[0]["titleEn"].lower()


def test_uninvolved_organisations_get_nothing(api: Api, girl: dict[str, Any],
                                              girl_referrals: dict[str, dict[str, Any]]) -> None:
    # Both recipients' notifications exist, so every event about this case has been handled.
    eventually(lambda: notifications_for(api, "unicef", girl["case_id"]))
    eventually(lambda: notifications_for(api, "csref-gao", girl["case_id"]))
    for org in ("iom", "ame", "unhcr", "croix-rouge", "csref-bamako"):
        assert incoming_for(api, org, girl["case_id"]) == [], org
        assert notifications_for(api, org, girl["case_id"]) == [], org
    # Nothing awaits DGME's action about them either: consent covered both recipients.
    assert about(notifications_for(api, "dgme", girl["case_id"]), list(girl_referrals.values())) == []


def test_other_organisations_cannot_read_the_case(api: Api, girl: dict[str, Any]) -> None:
    """Same answer as for a case that does not exist: the case's existence does not leak."""
    absent = api.gql("ame", CASE, {"id": str(uuid.uuid4())})
    for org in ("ame", "iom"):
        body = api.gql(org, CASE, {"id": girl["case_id"]})
        assert not body.get("data"), body
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["message"] == absent["errors"][0]["message"]
        assert girl["input"]["givenName"] not in json.dumps(body)


def test_another_organisations_own_case_shows_only_its_referrals(api: Api, girl: dict[str, Any],
                                                                  girl_referrals: dict[str, dict[str, Any]]) -> None:
    ame_case = register(api, "ame", arrival(givenName=unique("Awa"), vulnerabilities=["UNACCOMPANIED_CHILD"],
                                            consent={"given": True, "recipientOrgIds": ["unicef"]}))
    referrals = eventually(lambda: case_referrals(api, "ame", ame_case))
    assert [summary(r) for r in referrals] == [("CHILD_PROTECTION", "URGENT", "unicef", "CONSENT", "PENDING")]
    assert all(r["caseId"] == ame_case and r["fromOrganisation"]["id"] == "ame" for r in referrals)
    assert not {r["id"] for r in referrals} & {r["id"] for r in girl_referrals.values()}
    # And DGME's case still shows only its own two.
    assert {r["id"] for r in case_referrals(api, "dgme", girl["case_id"])} == {
        r["id"] for r in girl_referrals.values()}


async def test_referral_service_shows_each_organisation_only_its_share(
        api: Api, platform: Platform, girl: dict[str, Any], girl_referrals: dict[str, dict[str, Any]]) -> None:
    """Asked directly (past the gateway's case check), the referral service still filters by organisation."""
    payload = {"case_id": girl["case_id"]}
    ame = await nats_ask(platform, api.token("ame"), "svc.referral.case_referrals", payload)
    assert ame == {"data": []}
    unicef = await nats_ask(platform, api.token("unicef"), "svc.referral.case_referrals", payload)
    assert [r["id"] for r in unicef["data"]] == [girl_referrals["unicef"]["id"]]
    csref = await nats_ask(platform, api.token("csref-gao"), "svc.referral.case_referrals", payload)
    assert [r["id"] for r in csref["data"]] == [girl_referrals["csref-gao"]["id"]]


# --- consent --------------------------------------------------------------------------------------


def test_adult_without_consent_waits_for_consent(api: Api) -> None:
    case_id = register(api, "dgme", arrival(givenName=unique("Moussa"), sex="MALE", estimatedAge=34,
                                            vulnerabilities=["MEDICAL_NEEDS"], consent={"given": False}))
    (referral,) = eventually(lambda: case_referrals(api, "dgme", case_id))
    waiting = eventually(lambda: about(notifications_for(api, "dgme", case_id), [referral]))
    assert [(n["kind"], n["priority"]) for n in waiting] == [("referral.awaiting_consent", "HIGH")]
    # The owner is told consent is needed, without naming a sensitive service (health) to all its staff.
    assert "Consentement" in waiting[0]["title"] and "soins de santé" not in waiting[0]["title"]
    assert "consent" in waiting[0]["titleEn"].lower() and "health care" not in waiting[0]["titleEn"]

    assert summary(referral) == ("HEALTH_CARE", "HIGH", "csref-gao", None, "AWAITING_CONSENT")
    assert waiting[0]["referralId"] == referral["id"]
    # The would-be recipient is told nothing and sees nothing (same transaction as DGME's notice).
    assert notifications_for(api, "csref-gao", case_id) == []
    assert incoming_for(api, "csref-gao", case_id) == []


def test_child_without_consent_still_gets_urgent_child_protection(api: Api) -> None:
    case_id = register(api, "dgme", arrival(givenName=unique("Oumou"), estimatedAge=12,
                                            vulnerabilities=["UNACCOMPANIED_CHILD"], consent={"given": False}))
    referrals = eventually(lambda: case_referrals(api, "dgme", case_id))
    assert [summary(r) for r in referrals] == [
        ("CHILD_PROTECTION", "URGENT", "unicef", "VITAL_INTEREST", "PENDING")]
    notices = eventually(lambda: notifications_for(api, "unicef", case_id))
    assert [(n["kind"], n["priority"]) for n in notices] == [("referral.received", "URGENT")]
    assert [r["id"] for r in incoming_for(api, "unicef", case_id)] == [referrals[0]["id"]]
    assert about(notifications_for(api, "dgme", case_id), referrals) == []


def test_consent_to_some_recipients_only(api: Api) -> None:
    """Consent to UNICEF only: child protection goes ahead, health care waits for consent."""
    person = arrival(givenName=unique("Kadiatou"), vulnerabilities=["SEPARATED_CHILD", "MEDICAL_NEEDS"],
                     consent={"given": True, "recipientOrgIds": ["unicef"]})
    case_id = register(api, "dgme", person)
    referrals = at_least(2, lambda: case_referrals(api, "dgme", case_id))
    assert sorted(summary(r) for r in referrals) == [
        ("CHILD_PROTECTION", "URGENT", "unicef", "CONSENT", "PENDING"),
        ("HEALTH_CARE", "HIGH", "csref-gao", None, "AWAITING_CONSENT"),
    ]
    waiting = eventually(lambda: about(notifications_for(api, "dgme", case_id), referrals))
    assert [n["kind"] for n in waiting] == ["referral.awaiting_consent"]
    eventually(lambda: notifications_for(api, "unicef", case_id))
    assert notifications_for(api, "csref-gao", case_id) == []


# --- idempotency ----------------------------------------------------------------------------------


def test_same_key_same_input_registers_once(api: Api, platform: Platform) -> None:
    person = arrival(givenName=unique("Mariam"), vulnerabilities=["UNACCOMPANIED_CHILD", "MEDICAL_NEEDS"],
                     consent={"given": True, "recipientOrgIds": ["unicef", "csref-gao"]})
    key = f"retry-{uuid.uuid4()}"
    first = register(api, "dgme", person, key)
    second = register(api, "dgme", person, key)
    assert second == first
    assert cases_named(platform, person["givenName"]) == 1

    referrals = at_least(2, lambda: case_referrals(api, "dgme", first))
    assert len(referrals) == 2
    for org in ("unicef", "csref-gao"):
        assert len(eventually(lambda org=org: notifications_for(api, org, first))) == 1
        assert len(incoming_for(api, org, first)) == 1
    # One arrival event only: nothing can produce a second set later.
    with psycopg.connect(platform.database_url) as conn:
        (events,) = conn.execute("select count(*) from intake.outbox where envelope->>'subject' = %s",
                                 (first,)).fetchone()
    assert events == 1
    # A third retry, after routing, still answers with the same case.
    assert register(api, "dgme", person, key) == first


def test_concurrent_retries_with_one_key_register_once(api: Api, platform: Platform) -> None:
    person = arrival(givenName=unique("Rokia"), vulnerabilities=[], consent={"given": False})
    key = f"burst-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=5) as pool:
        ids = list(pool.map(lambda _: register(api, "dgme", person, key), range(5)))
    assert len(set(ids)) == 1
    assert cases_named(platform, person["givenName"]) == 1


def test_same_key_different_input_is_refused(api: Api, platform: Platform) -> None:
    person = arrival(givenName=unique("Bintou"))
    key = f"reuse-{uuid.uuid4()}"
    case_id = register(api, "dgme", person, key)

    changed = dict(person, familyName="Diarra")
    body = api.register("dgme", changed, key)
    assert not body.get("data"), body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert error["extensions"]["field"] == "idempotencyKey"
    # The first registration stands, unchanged.
    case = data(api.gql("dgme", CASE, {"id": case_id}))["case"]
    assert case["familyName"] == person["familyName"]
    assert cases_named(platform, person["givenName"]) == 1


def test_idempotency_keys_belong_to_one_organisation(api: Api) -> None:
    """Another organisation using the same key gets its own case, never DGME's."""
    key = f"shared-{uuid.uuid4()}"
    person = arrival(givenName=unique("Salif"), sex="MALE", estimatedAge=25, vulnerabilities=[],
                     consent={"given": False})
    dgme_case = register(api, "dgme", person, key)
    ame_case = register(api, "ame", person, key)
    assert ame_case != dgme_case
    assert data(api.gql("ame", CASE, {"id": ame_case}))["case"]["ownerOrganisation"] == {"id": "ame"}


# --- notifications: paging and marking read --------------------------------------------------------


def test_notification_pages_are_distinct_and_complete(api: Api) -> None:
    """UNHCR only hears of international-protection cases, so its list is short enough to walk."""
    cases = [register(api, "dgme", arrival(givenName=unique("Ibrahim"), sex="MALE", estimatedAge=28,
                                           vulnerabilities=["INTERNATIONAL_PROTECTION"],
                                           consent={"given": True, "recipientOrgIds": ["unhcr"]}))
             for _ in range(3)]
    mine = {eventually(lambda case_id=case_id: notifications_for(api, "unhcr", case_id))[0]["id"]
            for case_id in cases}
    everything = [n["id"] for n in all_pages(api, "unhcr", NOTIFICATIONS, "notifications")]
    assert mine <= set(everything)

    walked: list[dict[str, Any]] = []
    after = None
    for _ in range(len(everything) + 5):
        page = data(api.gql("unhcr", NOTIFICATIONS, {"first": 1, "after": after}))["notifications"]
        assert len(page["nodes"]) == 1, page
        walked += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"]
        after = page["pageInfo"]["endCursor"]
    else:
        raise AssertionError("hasNextPage never became false")

    ids = [n["id"] for n in walked]
    assert len(ids) == len(set(ids)), "a notification appeared on two pages"
    assert set(everything) <= set(ids), "paging skipped notifications"
    assert mine <= set(ids)
    created = [datetime.fromisoformat(n["createdAt"]) for n in walked]
    assert created == sorted(created, reverse=True), "not newest first"

    # After the last item there is nothing more.
    beyond = data(api.gql("unhcr", NOTIFICATIONS, {"first": 1, "after": page["pageInfo"]["endCursor"]}))
    assert beyond["notifications"]["nodes"] == []
    assert beyond["notifications"]["pageInfo"]["hasNextPage"] is False

    # Two pages of one are the same as one page of two.
    two = data(api.gql("unhcr", NOTIFICATIONS, {"first": 2}))["notifications"]
    assert two["pageInfo"]["hasNextPage"] is (len(everything) > 2)
    one = data(api.gql("unhcr", NOTIFICATIONS, {"first": 1}))["notifications"]
    following = data(api.gql("unhcr", NOTIFICATIONS, {"first": 1, "after": one["pageInfo"]["endCursor"]}))
    assert [n["id"] for n in one["nodes"] + following["notifications"]["nodes"]] == [n["id"] for n in two["nodes"]]


def test_invalid_cursor_is_refused(api: Api) -> None:
    body = api.gql("unicef", NOTIFICATIONS, {"first": 1, "after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "after"


def test_mark_notification_read(api: Api, girl: dict[str, Any]) -> None:
    (notice,) = eventually(lambda: notifications_for(api, "csref-gao", girl["case_id"]))

    # Another organisation cannot mark it, nor learn that it exists.
    for org in ("unicef", "dgme"):
        body = api.gql(org, MARK_READ, {"id": notice["id"]})
        assert not body.get("data"), body
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert notifications_for(api, "csref-gao", girl["case_id"])[0]["readAt"] is None
    assert notifications_for(api, "csref-gao", girl["case_id"], unreadOnly=True) != []

    marked = data(api.gql("csref-gao", MARK_READ, {"id": notice["id"]}))["markNotificationRead"]
    assert marked["id"] == notice["id"]
    assert marked["readAt"] is not None
    assert notifications_for(api, "csref-gao", girl["case_id"])[0]["readAt"] == marked["readAt"]
    assert notifications_for(api, "csref-gao", girl["case_id"], unreadOnly=True) == []

    # Marking again keeps the first reading time.
    again = data(api.gql("csref-gao", MARK_READ, {"id": notice["id"]}))["markNotificationRead"]
    assert again["readAt"] == marked["readAt"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_mark_unknown_notification_is_not_found(api: Api, bad_id: str) -> None:
    body = api.gql("unicef", MARK_READ, {"id": bad_id})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# --- follow-up: who accompanies her home, and her plan (README, "Follow-up") ----------------------

FOLLOW_UP_CONSENT = """mutation($case: ID!) { recordConsent(caseId: $case, consent: {given: true,
  recipientOrgIds: ["unicef"], purposes: [FOLLOW_UP], givenBy: GUARDIAN, guardianName: "Mariam Traoré"}) { caseId } }"""
ASSIGN = """mutation($case: ID!) { assignCaseManagement(caseId: $case, organizationId: "unicef",
  reason: CHILD_PROTECTION_MANDATE) { managerOrgId version } }"""
PLANS_MISSING = "{ plansMissing(first: 100) { nodes { caseId planDueOn overdue } } }"
SAVE_PLAN = """mutation Plan($case: ID!, $version: Int!, $goals: [PlanGoalInput!]!, $key: String!) {
  savePlan(caseId: $case, version: $version, goals: $goals, idempotencyKey: $key) { managerOrgId version planOverdue
  plan { goals { dimension actions { id status targetDate referralId } } } } }"""


def test_unicef_takes_over_her_follow_up_and_saves_her_plan(api: Api, girl: dict[str, Any],
                                                            girl_referrals: dict[str, dict[str, Any]]) -> None:
    case_id, token = girl["case_id"], girl["token"]
    data(gql_with(api, token, FOLLOW_UP_CONSENT, {"case": case_id}))
    # The consent reaches the follow-up service as an event: the hand-over waits for it, as a person would retry.
    assigned = eventually(lambda: gql_with(api, token, ASSIGN, {"case": case_id}).get("data"))["assignCaseManagement"]
    assert assigned == {"managerOrgId": "unicef", "version": 1}

    due = date.fromisoformat(girl["input"]["arrivalDate"]) + timedelta(days=30)
    missing = [n for n in data(api.gql("unicef", PLANS_MISSING))["plansMissing"]["nodes"] if n["caseId"] == case_id]
    assert missing == [{"caseId": case_id, "planDueOn": due.isoformat(), "overdue": False}]

    health = girl_referrals["csref-gao"]["id"]
    goals = [{"dimension": "SOCIAL", "description": "Retour à l'école à Gao",
              "actions": [{"description": "Inscription au collège de Château", "targetDate": "2027-01-06"}]},
             {"dimension": "PSYCHOSOCIAL", "description": "Soutien psychosocial",
              "actions": [{"description": "Séances d'écoute au centre de santé", "targetDate": "2026-12-20",
                           "referralId": health}]}]
    variables = {"case": case_id, "version": 1, "goals": goals, "key": f"unicef-{case_id}-plan-1"}
    saved = data(api.gql("unicef", SAVE_PLAN, variables))["savePlan"]
    assert (saved["managerOrgId"], saved["version"], saved["planOverdue"]) == ("unicef", 2, False)
    assert [(g["dimension"], [a["status"] for a in g["actions"]]) for g in saved["plan"]["goals"]] == [
        ("SOCIAL", ["PLANNED"]), ("PSYCHOSOCIAL", ["PLANNED"])]
    assert saved["plan"]["goals"][1]["actions"][0]["referralId"] == health
    assert data(api.gql("unicef", SAVE_PLAN, variables))["savePlan"]["version"] == 2  # the same request again
    stale = api.gql("unicef", SAVE_PLAN, {**variables, "key": f"unicef-{case_id}-plan-2"})
    assert stale["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert not [n for n in data(api.gql("unicef", PLANS_MISSING))["plansMissing"]["nodes"] if n["caseId"] == case_id]


LOG_CONTACT = """mutation($case: ID!, $key: String!, $on: Date!) { logContact(caseId: $case, idempotencyKey: $key,
  input: {date: $on, mode: PHONE, reached: true, nextStep: "Visite à Gao avec sa tante",
  note: "Elle dort mal ; sa tante demande un rendez-vous au CSRef"}) { failedInARow unreachable
  schedule { code dueOn state } contacts { date mode reached note } } }"""
DUE_SOON = "{ followupsDue(withinDays: 30) { nodes { caseId contactCode dueOn state } } }"
OWNER_CONTACTS = "query($case: ID!) { followupCase(caseId: $case) { contacts { note } } }"


def test_unicef_logs_a_first_contact_and_sees_her_schedule(api: Api, girl: dict[str, Any]) -> None:
    """README, "Follow-up": the schedule (1, 3, 6, 12 months), a phone call logged, the note behind the
    sensitive scopes of her categories (UNICEF lacks sensitive:health), the contact due soon listed."""
    case_id = girl["case_id"]
    if api.gql("unicef", OWNER_CONTACTS, {"case": case_id}).get("errors"):  # run alone: the hand-over above first
        data(gql_with(api, girl["token"], FOLLOW_UP_CONSENT, {"case": case_id}))
        eventually(lambda: gql_with(api, girl["token"], ASSIGN, {"case": case_id}).get("data"))
    key = f"unicef-{case_id}-contact-1"
    body = api.gql("unicef", LOG_CONTACT, {"case": case_id, "key": key, "on": today().isoformat()})
    logged = body["data"]["logContact"]
    arrived = date.fromisoformat(girl["input"]["arrivalDate"])
    assert [s["code"] for s in logged["schedule"]] == ["M1", "M3", "M6", "M12"]
    assert logged["schedule"][0]["state"] == "UPCOMING" and (logged["failedInARow"], logged["unreachable"]) == (0, False)
    assert date.fromisoformat(logged["schedule"][0]["dueOn"]) - arrived in (timedelta(days=d) for d in range(28, 32))
    assert logged["contacts"] == [{"date": today().isoformat(), "mode": "PHONE", "reached": True, "note": None}]
    assert [(e["extensions"]["code"], e["extensions"]["scope"]) for e in body["errors"]] == [
        ("RESTRICTED", "sensitive:health")]
    again = api.gql("unicef", LOG_CONTACT, {"case": case_id, "key": key, "on": today().isoformat()})
    assert len(again["data"]["logContact"]["contacts"]) == 1  # the same request again logs nothing more
    owner = data(gql_with(api, girl["token"], OWNER_CONTACTS, {"case": case_id}))  # DGME holds every sensitive scope
    assert owner["followupCase"]["contacts"] == [{"note": "Elle dort mal ; sa tante demande un rendez-vous au CSRef"}]
    due = [n for n in data(api.gql("unicef", DUE_SOON))["followupsDue"]["nodes"] if n["caseId"] == case_id]
    assert [(n["contactCode"], n["state"]) for n in due] == [("M1", "UPCOMING")]


# --- her first Reintegration Sustainability Survey (README, "Follow-up") -----------------------------

FORM = "{ surveyInstrument { id version indicators { code dimension questionFr options { code labelFr } } } }"
RECORD_SURVEY = """mutation Survey($case: ID!, $input: SurveyInput!, $key: String!) {
  recordSurvey(caseId: $case, input: $input, idempotencyKey: $key) { instrumentId instrumentVersion economic social
  psychosocial composite compositeBand } }"""
SURVEYS = """query($case: ID!) { followupCase(caseId: $case) { surveys { takenOn instrumentVersion composite
  compositeBand psychosocialAnswers { indicator option } } } }"""


def test_unicef_records_her_first_survey_and_her_psychosocial_answers_need_the_health_scope(
        api: Api, girl: dict[str, Any]) -> None:
    """After her plan (the test above): UNICEF reads the form, records the survey, reads the scores."""
    case_id = girl["case_id"]
    form = data(api.gql("unicef", FORM))["surveyInstrument"]
    assert (form["id"], form["version"], len(form["indicators"])) == ("RSS", 2, 15)
    survey = {"takenOn": today().isoformat(),
              "answers": [{"indicator": k, "option": v} for k, v in HER_ANSWERS.items()]}
    variables = {"case": case_id, "input": survey, "key": f"unicef-{case_id}-rss-1"}
    recorded = data(api.gql("unicef", RECORD_SURVEY, variables))["recordSurvey"]
    assert recorded == {"instrumentId": "RSS", "instrumentVersion": 2, "economic": 0.68, "social": 0.6,
                        "psychosocial": 0.53, "composite": 0.6, "compositeBand": "PARTIAL"}
    assert data(api.gql("unicef", RECORD_SURVEY, variables))["recordSurvey"] == recorded  # the same request again
    # UNICEF holds no sensitive:health: the scores, but not her answers on distress and safety.
    seen = api.gql("unicef", SURVEYS, {"case": case_id})
    assert seen["data"]["followupCase"]["surveys"][0]["psychosocialAnswers"] is None
    assert [e["extensions"]["code"] for e in seen["errors"]] == ["RESTRICTED"]
    owner = data(gql_with(api, girl["token"], SURVEYS, {"case": case_id}))["followupCase"]["surveys"]
    assert [(s["instrumentVersion"], s["composite"], s["compositeBand"]) for s in owner] == [(2, 0.6, "PARTIAL")]
    assert len(owner[0]["psychosocialAnswers"]) == 5  # DGME's token holds sensitive:health


CLOSE = """mutation($case: ID!, $version: Int!) { closeCase(caseId: $case, reason: REINTEGRATED, version: $version) {
  status closureReason version plan { goals { actions { status } } } } }"""
REOPEN = """mutation($case: ID!, $version: Int!) { reopenCase(caseId: $case, reason: RETURNED_AGAIN, version: $version) {
  status closureReason version } }"""
VERSION = "query($case: ID!) { followupCase(caseId: $case) { version } }"


def test_unicef_closes_her_follow_up_and_re_opens_it(api: Api, girl: dict[str, Any]) -> None:
    """README, "Follow-up: closing and re-opening" (after the steps above): closing cancels the open
    actions; a closed follow-up takes no contact; re-opening takes it up again."""
    case_id = girl["case_id"]
    version = data(api.gql("unicef", VERSION, {"case": case_id}))["followupCase"]["version"]  # 2, after her plan
    closed = data(api.gql("unicef", CLOSE, {"case": case_id, "version": version}))["closeCase"]
    assert (closed["status"], closed["closureReason"], closed["version"]) == ("CLOSED", "REINTEGRATED", version + 1)
    assert {a["status"] for g in closed["plan"]["goals"] for a in g["actions"]} == {"CANCELLED"}
    late = api.gql("unicef", LOG_CONTACT, {"case": case_id, "key": f"unicef-{case_id}-contact-closed",
                                           "on": today().isoformat()})
    assert [e["extensions"]["code"] for e in late["errors"]] == ["CASE_CLOSED"]
    reopened = data(api.gql("unicef", REOPEN, {"case": case_id, "version": version + 1}))["reopenCase"]
    assert reopened == {"status": "OPEN", "closureReason": None, "version": version + 2}
