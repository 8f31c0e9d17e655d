"""Family links at the service level (issue 10, item 3): written with the case, refused when a flag
contradicts them, shown from both sides, each linked case under its own access rules (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, CASES_LINKED, CASES_UNLINKED, REFERRAL_CREATED
from contracts.events import ReferralCreatedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory
from kernel.errors import SeginError
from services.intake import handlers
from services.intake.app import APP as INTAKE
from tests.integration.services import arrival, audit_rows, call, deliver, outbox, principal, register


def child(links: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return {"given_name": "Fanta", "family_name": "Diarra", "estimated_age": 7, "vulnerabilities": [],
            "links": links, **overrides}


def link(case_id: str, relation: str = "CHILD_OF", travelling_together: bool = True) -> dict[str, Any]:
    return {"case_id": case_id, "relation": relation, "travelling_together": travelling_together}


async def count_rows(pool: AsyncConnectionPool) -> tuple[int, int, int]:
    """Cases, links and outbox events held by intake."""
    async with pool.connection() as conn:
        cur = await conn.execute("select (select count(*) from intake.cases) as c, (select count(*) from"
                                 " intake.case_links) as l, (select count(*) from intake.outbox) as o")
        row = await cur.fetchone()
        return int(row["c"]), int(row["l"]), int(row["o"])


async def open_referral(pool: AsyncConnectionPool, case: dict[str, Any], org: str) -> None:
    referral = ReferralCreatedV1(
        referral_id=str(uuid.uuid4()), case_id=case["id"], from_org_id=case["owner_org_id"], to_org_id=org,
        service_category=ServiceCategory.CHILD_PROTECTION, priority=Priority.URGENT, legal_basis=LegalBasis.CONSENT,
        status=ReferralStatus.PENDING, due_at=datetime.now(UTC) + timedelta(hours=24), reason_code="CHILD")
    await deliver(pool, handlers.on_referral_created, REFERRAL_CREATED, referral, referral.referral_id)


async def test_a_child_registered_with_her_mother_is_linked_in_the_same_transaction_and_announced_first(
        intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")
    kid = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    [seen] = kid["links"]
    assert (seen["linked_case_id"], seen["relation"], seen["travelling_together"]) == (mother["id"], "CHILD_OF", True)
    assert seen["person"]["given_name"] == "Mariam" and seen["owner_org_id"] == "dgme"
    events = await outbox(intake_pool, "intake", kid["id"])
    assert [e["type"] for e in events] == [CASES_LINKED.event_type, ARRIVAL_REGISTERED.event_type], \
        "routing the child already knows her family"
    assert events[0]["data"] == {"link_id": seen["id"], "case_id": kid["id"], "linked_case_id": mother["id"],
                                 "relation": "CHILD_OF", "travelling_together": True}, "ids and the relation only"
    # Shown from the mother's side with the inverse relation: the link is stored once.
    read = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read"), {"case_id": mother["id"]})
    [back] = read["links"]
    assert (back["id"], back["linked_case_id"], back["relation"]) == (seen["id"], kid["id"], "PARENT_OF")
    assert back["person"]["given_name"] == "Fanta"


@pytest.mark.parametrize("flag", ["UNACCOMPANIED_CHILD", "SEPARATED_CHILD"])
async def test_a_child_travelling_with_her_mother_cannot_be_flagged_without_parents_and_nothing_is_written(
        intake_pool: AsyncConnectionPool, flag: str) -> None:
    mother = await register(intake_pool, "dgme")
    before = await count_rows(intake_pool)
    with pytest.raises(SeginError) as refused:
        await register(intake_pool, "dgme", **child([link(mother["id"])], vulnerabilities=[flag]))
    error = refused.value
    assert (error.code, error.field) == ("BAD_USER_INPUT", "arrival.vulnerabilities")
    assert flag in error.message and "link 0" in error.message and "CHILD_OF" in error.message
    assert {p["field"] for p in error.problems} == {"arrival.vulnerabilities", "arrival.links.0"}
    assert await count_rows(intake_pool) == before, "no case, no link, no event"
    # Not travelling together, or a sibling: the flag stands.
    apart = await register(intake_pool, "dgme", **child([link(mother["id"], travelling_together=False)],
                                                         vulnerabilities=[flag]))
    sibling = await register(intake_pool, "dgme", **child([link(apart["id"], "SIBLING_OF")], vulnerabilities=[flag]))
    assert sibling["links"][0]["relation"] == "SIBLING_OF"


async def test_a_link_to_a_case_the_registrant_may_not_read_is_refused_like_an_absent_one(
        intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")
    for target in (mother["id"], str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(SeginError) as refused:
            await register(intake_pool, "amdh", **child([link(target)]))
        assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "arrival.links.0.case_id")
        assert refused.value.message == "No such case, or it is not shared with your organisation."


async def test_a_linked_case_the_caller_may_not_read_shows_the_relation_and_its_owner_only(
        intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")  # consent to unicef, but no referral: unicef may not read her
    kid = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    await open_referral(intake_pool, kid, "unicef")
    seen = await call(INTAKE, "get_case", intake_pool, principal("unicef", "cases:read"), {"case_id": kid["id"]})
    [restricted] = seen["links"]
    assert restricted == {"id": restricted["id"], "linked_case_id": mother["id"], "relation": "CHILD_OF",
                          "travelling_together": True, "owner_org_id": "dgme", "person": None,
                          "created_at": restricted["created_at"]}
    family = await call(INTAKE, "family", intake_pool, principal("unicef", "cases:read"), {"case_id": kid["id"]})
    members = {m["case_id"]: m for m in family["members"]}
    assert members[kid["id"]]["person"]["given_name"] == "Fanta"
    assert members[mother["id"]] == {"case_id": mother["id"], "owner_org_id": "dgme", "person": None}
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "family", intake_pool, principal("unicef", "cases:read"), {"case_id": mother["id"]})
    assert refused.value.code == "NOT_FOUND"


async def test_a_family_is_followed_link_by_link(intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")
    first = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    second = await register(intake_pool, "dgme", **child([link(first["id"], "SIBLING_OF")], given_name="Awa"))
    family = await call(INTAKE, "family", intake_pool, principal("dgme", "cases:read"), {"case_id": second["id"]})
    assert [m["case_id"] for m in family["members"]] == [second["id"], first["id"], mother["id"]]
    assert {(x["case_id"], x["relation"], x["linked_case_id"]) for x in family["links"]} == {
        (first["id"], "CHILD_OF", mother["id"]), (second["id"], "SIBLING_OF", first["id"])}
    assert family["truncated"] is False
    [entry] = [r for r in await audit_rows(intake_pool, "intake")
               if r["operation"] == "family.read" and second["id"] in map(str, r["case_ids"])]
    assert set(map(str, entry["case_ids"])) == {mother["id"], first["id"], second["id"]}


async def test_linking_existing_cases_is_idempotent_audited_and_checks_the_flags_of_both(
        intake_pool: AsyncConnectionPool) -> None:
    dgme = principal("dgme", "cases:write cases:read sensitive:child_protection")
    unscoped = principal("dgme", "cases:write cases:read")
    mother = await register(intake_pool, "dgme")
    flagged = await register(intake_pool, "dgme", **child([], vulnerabilities=["UNACCOMPANIED_CHILD"]))
    unflagged = await register(intake_pool, "dgme", **child([]))
    # A token that may not see child-protection flags gets the same refusal whether the child is flagged
    # or not: the answer tells nothing about the flags.
    before = await count_rows(intake_pool)
    answers = []
    for kid in (flagged, unflagged):
        with pytest.raises(SeginError) as refused:
            await call(INTAKE, "link_cases", intake_pool, unscoped, {
                "case_id": mother["id"], "linked_case_id": kid["id"], "relation": "PARENT_OF",
                "travelling_together": True})
        answers.append(refused.value.to_dict())
    assert answers[0] == answers[1] and answers[0]["code"] == "INSUFFICIENT_SCOPE", answers
    assert answers[0]["field"] == "relation" and "sensitive:child_protection" in answers[0]["message"]
    # With the scope, the mother PARENT_OF the flagged child, travelling together, is refused on the link.
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "link_cases", intake_pool, dgme, {"case_id": mother["id"], "linked_case_id": flagged["id"],
                                                            "relation": "PARENT_OF", "travelling_together": True})
    assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", "relation")
    with pytest.raises(SeginError) as named:
        await call(INTAKE, "link_cases", intake_pool, principal("dgme", "cases:write sensitive:child_protection"),
                   {"case_id": flagged["id"], "linked_case_id": mother["id"], "relation": "CHILD_OF",
                    "travelling_together": True})
    assert "UNACCOMPANIED_CHILD" in named.value.message
    assert await count_rows(intake_pool) == before, "nothing written"
    # Another child, unflagged: linked once, however many times it is asked.
    kid = await register(intake_pool, "dgme", **child([]))
    request = {"case_id": kid["id"], "linked_case_id": mother["id"], "relation": "CHILD_OF",
               "travelling_together": True}
    for _ in range(2):
        answer = await call(INTAKE, "link_cases", intake_pool, dgme, request)
        assert [(x["linked_case_id"], x["relation"]) for x in answer["links"]] == [(mother["id"], "CHILD_OF")]
    assert [e["type"] for e in await outbox(intake_pool, "intake", kid["id"])].count(CASES_LINKED.event_type) == 1
    # The same pair the other way round, otherwise: a conflict.
    with pytest.raises(SeginError) as conflict:
        await call(INTAKE, "link_cases", intake_pool, dgme, {**request, "relation": "SIBLING_OF"})
    assert conflict.value.code == "ALREADY_LINKED"
    # Unlinked (twice: the second changes nothing), announced once.
    for _ in range(2):
        answer = await call(INTAKE, "unlink_cases", intake_pool, dgme,
                            {"case_id": mother["id"], "linked_case_id": kid["id"]})
        assert answer["links"] == []
    types = [e["type"] for e in await outbox(intake_pool, "intake", kid["id"])]
    assert types.count(CASES_UNLINKED.event_type) == 1
    operations = [r["operation"] for r in await audit_rows(intake_pool, "intake")
                  if r["outcome"] == "allowed" and kid["id"] in map(str, r["case_ids"])]
    assert operations.count("case.link") == 1 and operations.count("case.unlink") == 1


async def test_only_an_organisation_that_may_read_both_cases_and_owns_one_links_them(
        intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")
    kid = await register(intake_pool, "dgme", **child([]))
    request = {"case_id": kid["id"], "linked_case_id": mother["id"], "relation": "CHILD_OF",
               "travelling_together": True}
    # unicef reads both through open referrals (consent covers it) but owns neither.
    await open_referral(intake_pool, kid, "unicef")
    unicef = principal("unicef", "cases:write sensitive:child_protection")
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "link_cases", intake_pool, unicef, request)
    assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "linkedCaseId")
    await open_referral(intake_pool, mother, "unicef")
    with pytest.raises(SeginError) as forbidden:
        await call(INTAKE, "link_cases", intake_pool, unicef, request)
    assert forbidden.value.code == "FORBIDDEN"
    # Its own case may be linked to one it reads.
    own = await register(intake_pool, "unicef", **child([]))
    answer = await call(INTAKE, "link_cases", intake_pool, principal("unicef", "cases:write"),
                        {**request, "case_id": own["id"], "relation": "SIBLING_OF"})
    assert answer["links"][0]["person"]["given_name"] == "Mariam"
    denied = [r for r in await audit_rows(intake_pool, "intake")
              if r["operation"] == "case.link" and r["outcome"] == "denied" and kid["id"] in map(str, r["case_ids"])]
    assert len(denied) == 2


async def test_a_parent_registered_as_travelling_with_a_child_flagged_unaccompanied_is_refused_on_the_link(
        intake_pool: AsyncConnectionPool) -> None:
    flagged = await register(intake_pool, "dgme", **child([], vulnerabilities=["UNACCOMPANIED_CHILD"]))
    unflagged = await register(intake_pool, "dgme", **child([]))
    before = await count_rows(intake_pool)
    # A registrant that may not see child-protection flags: the same refusal whatever the child's flags.
    answers = []
    for kid in (flagged, unflagged):
        with pytest.raises(SeginError) as refused:
            await register(intake_pool, "dgme", links=[link(kid["id"], "PARENT_OF")], vulnerabilities=[])
        answers.append(refused.value.to_dict())
    assert answers[0] == answers[1] and (answers[0]["code"], answers[0]["field"]) == (
        "INSUFFICIENT_SCOPE", "arrival.links.0"), answers
    # One that may: refused on the link, naming it and the flag.
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "register_arrival", intake_pool, principal("dgme", "cases:write sensitive:child_protection"),
                   {"idempotency_key": str(uuid.uuid4()),
                    "arrival": arrival(links=[link(flagged["id"], "PARENT_OF")], vulnerabilities=[])})
    assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", "arrival.links.0")
    assert "link 0" in refused.value.message and "PARENT_OF" in refused.value.message
    assert "UNACCOMPANIED_CHILD" in refused.value.message
    assert await count_rows(intake_pool) == before
    # A guardian who is not travelling with the child: registered.
    guardian = await register(intake_pool, "dgme", links=[link(flagged["id"], "GUARDIAN_OF", False)],
                              vulnerabilities=[])
    assert guardian["links"][0]["relation"] == "GUARDIAN_OF"


async def test_the_stewards_export_of_a_person_lists_her_links_without_the_linked_persons(
        intake_pool: AsyncConnectionPool) -> None:
    mother = await register(intake_pool, "dgme")
    kid = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    export = await call(INTAKE, "subject_access", intake_pool, principal("segin-steward", "audit:read"),
                        {"case_id": kid["id"]})
    [shown] = export["links"]
    assert (shown["linked_case_id"], shown["relation"], shown["owner_org_id"], shown["person"]) == (
        mother["id"], "CHILD_OF", "dgme", None)


async def test_a_correction_cannot_flag_a_child_travelling_with_her_mother_without_parents(
        intake_pool: AsyncConnectionPool) -> None:
    """The same rule on offline capture's corrections (updateCase): the error names the link, nothing is written."""
    mother = await register(intake_pool, "dgme")
    kid = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    scopes = "cases:write sensitive:child_protection"
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "update_case", intake_pool, principal("dgme", scopes),
                   {"case_id": kid["id"], "version": kid["version"],
                    "changes": {"vulnerabilities": ["UNACCOMPANIED_CHILD"]}})
    error = refused.value
    assert (error.code, error.field) == ("BAD_USER_INPUT", "vulnerabilities")
    assert "UNACCOMPANIED_CHILD" in error.message and mother["id"] in error.message and "CHILD_OF" in error.message
    read = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read sensitive:child_protection"),
                      {"case_id": kid["id"]})
    assert (read["version"], read["vulnerabilities"]) == (kid["version"], []), "nothing written"
    # The mother's own correction is not concerned: she is the parent, not the child.
    fixed = await call(INTAKE, "update_case", intake_pool, principal("dgme", scopes),
                       {"case_id": mother["id"], "version": mother["version"], "changes": {"place_of_origin": "Kita"}})
    assert fixed["version"] == mother["version"] + 1
