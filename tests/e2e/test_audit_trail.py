"""The audit trail, end to end: every access to a person's data is recorded, refusals included;
the platform steward can read it and export what is held on one person; tampering shows."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

from devstack.platform import ROOT, Platform
from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id } }"
DSAR = """query($id: ID!) { subjectAccessRequest(caseId: $id) { case referrals notifications accessLogComplete
  accessLog { seq orgId operation outcome purpose legalBasis caseIds fieldCategories traceId } } }"""
TRAIL = "query($id: ID) { auditTrail(service: INTAKE, caseId: $id, first: 5) { nodes { operation orgId } } }"


@pytest.fixture(scope="module")
def child(api: Api) -> str:
    name = f"Hawa{uuid.uuid4().hex[:6]}"
    case = api.register("dgme", arrival(givenName=name, vulnerabilities=["UNACCOMPANIED_CHILD"],
                                        consent={"given": True, "recipientOrgIds": ["unicef"]}))
    case_id = case["data"]["registerArrival"]["id"]
    eventually(lambda: api.gql("unicef", CASE, {"id": case_id})["data"])  # UNICEF reads it (allowed)
    api.gql("ame", CASE, {"id": case_id})  # AME tries (refused)
    return case_id


def test_steward_exports_everything_held_and_every_access(api: Api, child: str) -> None:
    body = api.gql("segin-steward", DSAR, {"id": child})
    assert not body.get("errors"), body
    export = body["data"]["subjectAccessRequest"]
    assert export["case"]["given_name"].startswith("Hawa") and export["case"]["sharing"]
    assert export["case"]["sensitive"]["child_protection"] == ["UNACCOMPANIED_CHILD"]
    # The steward holds no sensitive scope, yet the person's own export is complete: the child-protection
    # referral and the reception package's (live, awaiting consent, or unmet: no recipient yet).
    categories = {r["service_category"]: r["to_org_id"] for r in export["referrals"]}
    assert categories["CHILD_PROTECTION"] == "unicef" and {"FOOD", "CASH_ALLOWANCE"} <= set(categories)
    assert "unicef" in {n["org_id"] for n in export["notifications"]}
    log = {(e["orgId"], e["operation"], e["outcome"]) for e in export["accessLog"]}
    assert ("dgme", "case.create", "allowed") in log
    assert ("unicef", "case.read", "allowed") in log
    assert ("ame", "case.read", "denied") in log  # refusals are recorded too
    # UNICEF's allowed read (the fixture may have been refused first, while its access was on its way).
    read = next(e for e in export["accessLog"] if e["orgId"] == "unicef" and e["operation"] == "case.read"
                and e["outcome"] == "allowed")
    assert read["purpose"] == "referral" and read["legalBasis"] == "CONSENT" and read["traceId"]
    assert export["accessLogComplete"] is True
    # The trail holds identifiers and codes, never the person's name.
    assert "Hawa" not in str(export["accessLog"])


def test_only_the_steward_reads_the_trail(api: Api, child: str) -> None:
    for org in ("dgme", "unicef", "cnrm"):
        for query, variables in ((TRAIL, {"id": child}), (DSAR, {"id": child})):
            body = api.gql(org, query, variables)
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SCOPE"
    assert api.gql("segin-steward", TRAIL, {"id": child})["data"]["auditTrail"]["nodes"]


def _verify(platform: Platform) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernel.cli", "audit", "verify"], env=platform.env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_verify_finds_an_altered_entry(platform: Platform, api: Api, child: str) -> None:
    assert _verify(platform).returncode == 0
    with psycopg.connect(platform.database_url, autocommit=True) as conn:
        seq, purpose = conn.execute("select seq, purpose from intake.audit_log where org_id = 'unicef'"
                                    " order by seq desc limit 1").fetchone()
        with pytest.raises(psycopg.Error):  # the log refuses to be rewritten…
            conn.execute("update intake.audit_log set purpose = 'x' where seq = %s", (seq,))
        conn.execute("alter table intake.audit_log disable trigger user")  # …unless a superuser forces it
        try:
            conn.execute("update intake.audit_log set purpose = 'case_management' where seq = %s", (seq,))
            tampered = _verify(platform)
            assert tampered.returncode == 1 and str(seq) in tampered.stdout + tampered.stderr
        finally:
            conn.execute("update intake.audit_log set purpose = %s where seq = %s", (purpose, seq))
            conn.execute("alter table intake.audit_log enable trigger user")
    assert _verify(platform).returncode == 0


def test_a_refusal_for_lack_of_scope_is_recorded(platform: Platform, api: Api, child: str) -> None:
    """The statistics-only observatory asks for a case: refused before the handler runs, yet on record."""
    body = api.gql("cnrm", CASE, {"id": child})
    assert body["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SCOPE"

    def recorded() -> bool:
        with psycopg.connect(platform.database_url) as conn:
            return conn.execute(
                "select count(*) from intake.audit_log where org_id = 'cnrm' and operation = 'intake.get_case'"
                " and outcome = 'denied' and case_ids @> array[%s::uuid]", (child,)).fetchone()[0] >= 1

    eventually(recorded)


def test_a_retried_registration_is_recorded_once_as_a_creation(platform: Platform, api: Api) -> None:
    key = str(uuid.uuid4())
    person = arrival(givenName=f"Retry{uuid.uuid4().hex[:6]}", vulnerabilities=[], consent={"given": False})
    first = api.register("dgme", person, key)["data"]["registerArrival"]["id"]
    assert api.register("dgme", person, key)["data"]["registerArrival"]["id"] == first
    with psycopg.connect(platform.database_url) as conn:
        operations = [r[0] for r in conn.execute(
            "select operation from intake.audit_log where case_ids @> array[%s::uuid] order by seq", (first,))]
    assert operations == ["case.create", "case.read"]
