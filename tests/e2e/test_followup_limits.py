"""What one case keeps and answers stays within what the bus carries (second follow-up review): a
case holds at most 200 contacts and 100 surveys; its view answers the 50 newest contacts and how many
it holds; the steward's export holds them all. Before, 600 long notes made the case unreadable (the
reply outgrew the bus) and every further contact was written but answered with a timeout."""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_review_followup_2_attacks import handed, log, new_case

pytestmark = pytest.mark.e2e

CASE = "query($case: ID!) { followupCase(caseId: $case) { contactCount contacts { date note } } }"
EXPORT = "query($id: ID!) { subjectAccessRequest(caseId: $id) { followup } }"


def test_a_case_at_its_contact_limit_stays_readable_and_exportable_and_takes_no_more(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    assert not log(api, "iom", case_id).get("errors")
    with psycopg.connect(api.platform.database_url) as conn:  # 199 more, each with a 2,000-character note
        conn.execute("insert into followup.contacts (id, case_id, contact_date, mode, reached, next_step, note,"
                     " logged_by_org_id) select gen_random_uuid(), case_id, contact_date, mode, reached, next_step,"
                     " repeat('x', 2000), logged_by_org_id from followup.contacts, generate_series(1, 199)"
                     " where case_id = %s", (case_id,))
    seen = api.gql("dgme", CASE, {"case": case_id})
    assert not seen.get("errors"), seen["errors"]
    assert (seen["data"]["followupCase"]["contactCount"], len(seen["data"]["followupCase"]["contacts"])) == (200, 50)
    refused = log(api, "iom", case_id)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in refused["errors"]] == [
        ("LIMIT_REACHED", "caseId")]
    export = api.gql("segin-steward", EXPORT, {"id": case_id})
    assert not export.get("errors"), export["errors"]
    [followup] = export["data"]["subjectAccessRequest"]["followup"]
    assert len(followup["contacts"]) == 200  # the export holds every one
    with psycopg.connect(api.platform.database_url) as conn:
        assert conn.execute("select count(*) from followup.contacts where case_id = %s", (case_id,)).fetchone() == (
            200,)
