"""Surveys end to end, through GraphQL with the real processes: IOM, managing a returnee's follow-up,
reads the survey's form, records one survey under instrument version 1 and one under version 2 and
reads the history with the version-1 scores unchanged; bad answers are refused with every problem
named; who may record and read; no event carries an answer or a name; statistics for the
coordinating body, with small cells hidden and the caller's own cases not counted."""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Any

import psycopg
import pytest

from contracts.channels import SURVEY_RECORDED
from tests.e2e.conftest import Api, arrival, eventually
from tests.survey_answers import RSS_VISIT as VISIT

pytestmark = pytest.mark.e2e

FORM = """query($version: Int) { surveyInstrument(id: "RSS", version: $version) { id version latestVersion digest
  titleFr indicators { code dimension questionFr questionEn options { code labelFr labelEn } } } }"""
RECORD = """mutation($case: ID!, $key: String!, $input: SurveyInput!) { recordSurvey(caseId: $case, input: $input,
  idempotencyKey: $key) { id takenOn instrumentVersion economic social psychosocial composite compositeBand } }"""
HISTORY = """query($case: ID!) { followupCase(caseId: $case) { surveys { id takenOn instrumentId instrumentVersion
  instrumentDigest economic social psychosocial composite economicBand socialBand psychosocialBand compositeBand
  answers { indicator dimension option } psychosocialAnswers { indicator option } recordedByOrgId } } }"""
ASSIGN = """mutation($case: ID!) { assignCaseManagement(caseId: $case, organizationId: "iom",
  reason: SPECIALISED_SUPPORT) { managerOrgId } }"""
STATISTICS = """{ followupStatistics { planDueDays minimumCell contactsOnTime { keys count }
  plansByRegion { keys count } plansByArrivalMonth { keys count } compositeByRegion { keys count }
  compositeByMonthsSinceReturn { keys count } } }"""


def survey(version: int | None, taken_on: str, visit: dict[str, str] | None = None) -> dict[str, Any]:
    return {"takenOn": taken_on, **({"instrumentVersion": version} if version else {}),
            "answers": [{"indicator": k, "option": v} for k, v in (visit or VISIT).items()]}


def arrival_month_cell(api: Api, org: str, month: str) -> int | None:
    """The count ``org``'s statistics show for arrivals in ``month`` without a plan on time (None: hidden)."""
    body = api.gql(org, STATISTICS)
    assert not body.get("errors"), body
    cells = body["data"]["followupStatistics"]["plansByArrivalMonth"]
    return next((c["count"] for c in cells if c["keys"] == [month, "NO_PLAN_ON_TIME"]), None)


def code(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    return error["extensions"]["code"]


@pytest.fixture(scope="module")
def returnee(api: Api) -> dict[str, str]:
    """An adult registered by DGME, consent covering IOM for follow-up; DGME hands the follow-up to IOM."""
    name = f"Seydou{uuid.uuid4().hex[:6]}"
    body = api.register("dgme", arrival(
        givenName=name, familyName="Konaté", sex="MALE", estimatedAge=31, countryReturnedFrom="NE",
        arrivalDate="2026-11-01", vulnerabilities=["MENTAL_HEALTH_NEEDS"],
        consent={"given": True, "recipientOrgIds": ["iom", "unicef"], "purposes": ["REFERRAL", "FOLLOW_UP"]}))
    case_id = body["data"]["registerArrival"]["id"]
    eventually(lambda: api.gql("dgme", ASSIGN, {"case": case_id}).get("data"))
    return {"case": case_id, "name": name}


def test_a_survey_under_v1_and_one_under_v2_make_a_history_whose_v1_scores_never_move(
        api: Api, returnee: dict[str, str]) -> None:
    case_id = returnee["case"]
    form = api.gql("iom", FORM, {"version": None})["data"]["surveyInstrument"]
    assert (form["id"], form["version"], form["latestVersion"], len(form["indicators"])) == ("RSS", 2, 2, 15)
    assert all(i["questionFr"] and i["questionEn"] and i["options"] for i in form["indicators"])
    v1 = api.gql("iom", FORM, {"version": 1})["data"]["surveyInstrument"]
    assert v1["version"] == 1 and v1["digest"] != form["digest"]

    first = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-s1", "input": survey(1, "2026-11-20")})
    assert not first.get("errors"), first
    first = first["data"]["recordSurvey"]
    assert (first["instrumentVersion"], first["economic"], first["social"], first["psychosocial"],
            first["composite"], first["compositeBand"]) == (1, 0.63, 0.6, 0.6, 0.61, "PARTIAL")
    second = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-s2",
                                     "input": survey(None, "2026-12-01")})["data"]["recordSurvey"]
    assert (second["instrumentVersion"], second["economic"], second["psychosocial"], second["composite"]) == (
        2, 0.68, 0.53, 0.6)
    again = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-s2", "input": survey(None, "2026-12-01")})
    assert again["data"]["recordSurvey"]["id"] == second["id"]  # the retry recorded nothing more

    for org in ("iom", "dgme"):  # the manager and the owner read the history, oldest first
        history = api.gql(org, HISTORY, {"case": case_id})
        assert not history.get("errors"), history
        surveys = history["data"]["followupCase"]["surveys"]
        assert [(s["id"], s["instrumentVersion"], s["composite"]) for s in surveys] == [
            (first["id"], 1, 0.61), (second["id"], 2, 0.6)]
        assert surveys[0]["economic"] == 0.63 and surveys[0]["recordedByOrgId"] == "iom"
        assert {a["indicator"]: a["option"] for a in surveys[0]["answers"] + surveys[0]["psychosocialAnswers"]} == (
            VISIT)


def test_bad_answers_are_refused_with_every_problem_named_and_nothing_recorded(
        api: Api, returnee: dict[str, str]) -> None:
    case_id = returnee["case"]
    before = len(api.gql("iom", HISTORY, {"case": case_id})["data"]["followupCase"]["surveys"])
    visit = dict(VISIT, ECO_DEBT="SOMETIMES")
    del visit["PSY_SAFETY"]
    body = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-bad",
                                   "input": survey(1, "2026-11-21", visit)})
    assert body["data"] is None and code(body) == "BAD_USER_INPUT", body
    [error] = body["errors"]
    assert {(p["indicator"], p["field"]) for p in error["extensions"]["problems"]} == {
        ("ECO_DEBT", "input.answers.2.option"), ("PSY_SAFETY", "input.answers")}
    assert error["extensions"]["field"] == "input.answers.2.option"
    free_text = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-bad2",
                                        "input": survey(1, "2026-11-21", dict(VISIT, ECO_DEBT="il doit 50 000 F"))})
    assert code(free_text) == "BAD_USER_INPUT" and free_text["errors"][0]["extensions"]["field"] == (
        "input.answers.2.option")
    future = api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-bad3", "input": survey(1, "2099-01-01")})
    assert code(future) == "BAD_USER_INPUT" and future["errors"][0]["extensions"]["field"] == "input.takenOn"
    assert len(api.gql("iom", HISTORY, {"case": case_id})["data"]["followupCase"]["surveys"]) == before


@pytest.mark.parametrize("org,expected", [
    ("dgme", "FORBIDDEN"),              # the owner reads, only the manager writes
    ("unicef", "NOT_FOUND"),            # a referral recipient: the follow-up is not its
    ("ame", "NOT_FOUND"),               # uninvolved
    ("cnrm", "INSUFFICIENT_SCOPE"),     # statistics only
    ("segin-steward", "NOT_FOUND"),     # the steward hands cases over but does not follow them
])
def test_only_the_manager_records_a_survey(api: Api, returnee: dict[str, str], org: str, expected: str) -> None:
    body = api.gql(org, RECORD, {"case": returnee["case"], "key": f"{org}-{uuid.uuid4()}",
                                 "input": survey(1, "2026-11-22")})
    assert body["data"] is None and code(body) == expected, body


@pytest.mark.parametrize("org,expected", [("unicef", "NOT_FOUND"), ("ame", "NOT_FOUND"),
                                          ("cnrm", "INSUFFICIENT_SCOPE"), ("segin-steward", "INSUFFICIENT_SCOPE")])
def test_only_the_owner_and_the_manager_read_the_surveys(api: Api, returnee: dict[str, str], org: str,
                                                         expected: str) -> None:
    body = api.gql(org, HISTORY, {"case": returnee["case"]})
    assert body["data"] is None and code(body) == expected, body


def test_no_event_carries_an_answer_or_a_name(api: Api, returnee: dict[str, str]) -> None:
    case_id = returnee["case"]

    def sent() -> list[dict[str, Any]]:
        with psycopg.connect(api.platform.database_url) as conn:
            rows = conn.execute("select envelope from followup.outbox where envelope->>'subject' = %s"
                                " and published_at is not null order by created_at", (case_id,)).fetchall()
        return [r[0] for r in rows]

    recorded = eventually(lambda: [e for e in sent() if e["type"] == SURVEY_RECORDED.event_type])
    assert recorded and set(recorded[0]["data"]) == {
        "survey_id", "case_id", "manager_org_id", "instrument_id", "instrument_version", "taken_on", "economic",
        "social", "psychosocial", "composite"}
    text = json.dumps(sent(), ensure_ascii=False)
    for private in (returnee["name"], "Konaté", *set(VISIT.values())):
        assert private not in text, private
    logged = (api.platform.log_dir / "followup.log").read_text()
    assert "DISTRESS_SUPPORTED" not in logged and returnee["name"] not in logged


MONTH = "2024-07"  # an arrival month no other test uses


def test_statistics_hide_small_cells_and_never_count_the_callers_own_cases(api: Api) -> None:
    def person(**overrides: Any) -> dict[str, Any]:
        return arrival(givenName=f"Oumar{uuid.uuid4().hex[:6]}", estimatedAge=35, arrivalDate=f"{MONTH}-10",
                       vulnerabilities=[], consent={"given": False}, **overrides)

    month_cell = partial(arrival_month_cell, api, month=MONTH)

    ids = [api.register("iom", person())["data"]["registerArrival"]["id"] for _ in range(4)]  # IOM's own
    ids.append(api.register("ame", person())["data"]["registerArrival"]["id"])  # one case IOM may not read
    with psycopg.connect(api.platform.database_url) as conn:  # until follow-up has heard of all five
        eventually(lambda: conn.execute("select count(*) from followup.cases where case_id = any(%s::uuid[])",
                                        (ids,)).fetchone() == (5,))
    assert month_cell("cnrm") == 5   # the observatory registered none of them
    assert month_cell("iom") is None  # four of the five are IOM's: one other person is not a cell
    stats = api.gql("cnrm", STATISTICS)["data"]["followupStatistics"]
    assert (stats["planDueDays"], stats["minimumCell"]) == (30, 5)
    assert all(c["keys"][1] in ("ON_TIME", "LATE", "NOT_MADE") for c in stats["contactsOnTime"])
    for table in ("plansByRegion", "plansByArrivalMonth", "compositeByRegion", "compositeByMonthsSinceReturn",
                  "contactsOnTime"):
        assert all(c["count"] >= 5 and c["count"] % 5 == 0 for c in stats[table]), table
    assert code(api.gql("ame", STATISTICS)) == "INSUFFICIENT_SCOPE"


DSAR = """query($id: ID!) { subjectAccessRequest(caseId: $id) { followup accessLog { orgId operation outcome } } }"""


def test_the_steward_export_holds_every_answer_and_who_recorded_and_read_them(
        api: Api, returnee: dict[str, str]) -> None:
    """After the surveys above (same case): the answers and scores, and the audit entries."""
    body = api.gql("segin-steward", DSAR, {"id": returnee["case"]})
    assert not body.get("errors"), body
    export = body["data"]["subjectAccessRequest"]
    [held] = export["followup"]
    assert [s["instrument_version"] for s in held["surveys"]] == [1, 2]
    first = held["surveys"][0]
    assert {a["indicator"]: a["option"] for a in first["answers"] + first["psychosocial_answers"]} == VISIT
    log = {(e["orgId"], e["operation"], e["outcome"]) for e in export["accessLog"]}
    assert {("iom", "followup.record_survey", "allowed"), ("dgme", "followup.record_survey", "denied"),
            ("dgme", "followup.read", "allowed")} <= log
