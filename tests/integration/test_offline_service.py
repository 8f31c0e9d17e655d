"""Offline capture at the service level (real PostgreSQL, no gateway, no NATS): corrections as of a version,
Kobo/ODK submissions registered once and every one kept, batches applied item by item."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.errors import SeginError
from services.intake.app import APP as INTAKE
from contracts.channels import CASE_CORRECTED
from tests.integration.services import audit_rows, call, outbox, principal, register
from tests.unit.test_kobo_mapping import kobo

OWNER = "cases:write cases:read"


async def update(pool: AsyncConnectionPool, org: str, case_id: str, version: int, scopes: str = OWNER,
                 **changes: Any) -> dict[str, Any]:
    return await call(INTAKE, "update_case", pool, principal(org, scopes),
                      {"case_id": case_id, "version": version, "changes": changes})


async def cases_named(pool: AsyncConnectionPool, family_name: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("select count(*) as n from intake.cases where family_name = %s", (family_name,))
        row = await cur.fetchone()
    return int(row["n"])


# --- corrections ---------------------------------------------------------------------------------


async def test_the_owner_corrects_a_case_and_its_version_goes_up_by_one(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    assert case["version"] == 1
    fixed = await update(intake_pool, "dgme", case["id"], 1, given_name="Mariama", phone_numbers=["76 12 34 56"],
                         destination_region="00")
    assert (fixed["given_name"], fixed["phone_numbers"], fixed["destination_region"]) == \
        ("Mariama", ["+22376123456"], "00")
    assert fixed["version"] == 2 and fixed["family_name"] == "Diarra"
    entries = [r for r in await audit_rows(intake_pool, "intake") if case["id"] in map(str, r["case_ids"])]
    assert entries[-1]["operation"] == "case.update"
    events = [e for e in await outbox(intake_pool, "intake", case["id"]) if e["type"] == CASE_CORRECTED.event_type]
    assert [e["data"]["changed_fields"] for e in events] == [["destination_region", "given_name", "phone_numbers"]]
    assert events[0]["data"]["version"] == 2 and events[0]["data"]["destination_region"] == "00"
    assert "Mariama" not in str(events), "events carry references, not dossiers"


async def test_a_stale_version_is_a_conflict_naming_the_current_version_and_the_fields_changed(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    await update(intake_pool, "dgme", case["id"], 1, given_name="Mariama")
    with pytest.raises(SeginError) as refused:
        await update(intake_pool, "dgme", case["id"], 1, family_name="Traoré")
    assert refused.value.code == "CONFLICT" and refused.value.field == "version"
    assert refused.value.details == {"current_version": 2, "changed_fields": ["given_name"]}
    now = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read"), {"case_id": case["id"]})
    assert (now["family_name"], now["version"]) == ("Diarra", 2), "nothing written"


async def test_changed_sensitive_flags_are_not_named_to_a_caller_without_their_scope(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme", vulnerabilities=[])
    await update(intake_pool, "dgme", case["id"], 1, scopes=f"{OWNER} sensitive:gbv", vulnerabilities=["GBV_SURVIVOR"])
    with pytest.raises(SeginError) as refused:
        await update(intake_pool, "dgme", case["id"], 1, given_name="Awa")
    assert refused.value.details["changed_fields"] == []
    with pytest.raises(SeginError) as scoped:
        await update(intake_pool, "dgme", case["id"], 1, scopes=f"{OWNER} sensitive:gbv", given_name="Awa")
    assert scoped.value.details["changed_fields"] == ["vulnerabilities"]


async def test_flags_the_caller_may_not_see_survive_a_screening_correction(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme", vulnerabilities=["TRAFFICKING_VICTIM", "ELDERLY"])
    fixed = await update(intake_pool, "dgme", case["id"], 1, vulnerabilities=["EX_DETAINEE"])
    assert fixed["vulnerabilities"] == ["EX_DETAINEE"]
    export = await call(INTAKE, "subject_access", intake_pool, principal("segin-steward", "audit:read"),
                        {"case_id": case["id"]})
    assert {s["code"]: s["assessed_by"] for s in export["screening"]} == {
        "TRAFFICKING_VICTIM": "client:dgme", "EX_DETAINEE": "client:dgme"}


async def test_a_bad_correction_names_the_field_and_writes_nothing(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    with pytest.raises(SeginError) as refused:
        await update(intake_pool, "dgme", case["id"], 1, estimated_age=None)
    assert (refused.value.code, refused.value.field) == ("BAD_USER_INPUT", "estimated_age")
    with pytest.raises(SeginError) as region:
        await update(intake_pool, "dgme", case["id"], 1, destination_region="99")
    assert region.value.field == "destination_region"
    now = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read"), {"case_id": case["id"]})
    assert now["version"] == 1 and now["estimated_age"] == 22


async def test_only_the_owner_corrects_and_another_learns_nothing(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    for case_id in (case["id"], str(uuid.uuid4())):
        with pytest.raises(SeginError) as refused:
            await update(intake_pool, "ame", case_id, 1, given_name="Awa")
        assert (refused.value.code, refused.value.field) == ("NOT_FOUND", "caseId")


async def test_a_correction_retried_with_its_key_is_applied_once(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    payload = {"case_id": case["id"], "version": 1, "changes": {"given_name": "Awa"}, "idempotency_key": "fix-0001"}
    first = await call(INTAKE, "update_case", intake_pool, principal("dgme", OWNER), payload)
    again = await call(INTAKE, "update_case", intake_pool, principal("dgme", OWNER), payload)
    assert first["version"] == again["version"] == 2


# --- Kobo/ODK submissions --------------------------------------------------------------------------


async def submit(pool: AsyncConnectionPool, org: str, body: dict[str, Any]) -> dict[str, Any]:
    return await call(INTAKE, "offline_submission", pool, principal(org, "cases:write"), {"submission": body})


async def listed(pool: AsyncConnectionPool, org: str, scopes: str = "cases:write", **query: Any) -> list[dict[str, Any]]:
    page = await call(INTAKE, "offline_submissions", pool, principal(org, scopes), query)
    return page["nodes"]


async def test_the_same_kobo_submission_sent_three_times_registers_once(intake_pool: AsyncConnectionPool) -> None:
    family = f"Kobo{uuid.uuid4().hex[:8]}"
    body = kobo(**{"identity/family_name": family, "meta/instanceID": f"uuid:{uuid.uuid4()}"})
    answers = [await submit(intake_pool, "dgme", body) for _ in range(3)]
    assert [a["status"] for a in answers] == ["ACCEPTED", "DUPLICATE", "DUPLICATE"]
    assert len({a["case_id"] for a in answers}) == 1
    assert await cases_named(intake_pool, family) == 1
    rows = await listed(intake_pool, "dgme")
    mine = {r["status"]: r for r in rows if r["submission_id"] == body["meta/instanceID"]}
    assert mine["ACCEPTED"]["attempts"] == 1 and mine["DUPLICATE"]["attempts"] == 2
    assert mine["ACCEPTED"]["case_id"] == answers[0]["case_id"]


async def test_the_same_submission_sent_three_times_at_once_registers_once(intake_pool: AsyncConnectionPool) -> None:
    family = f"Kobo{uuid.uuid4().hex[:8]}"
    body = kobo(**{"identity/family_name": family, "meta/instanceID": f"uuid:{uuid.uuid4()}"})
    answers = await asyncio.gather(*(submit(intake_pool, "dgme", body) for _ in range(3)))
    assert sorted(a["status"] for a in answers) == ["ACCEPTED", "DUPLICATE", "DUPLICATE"]
    assert len({a["case_id"] for a in answers}) == 1 and await cases_named(intake_pool, family) == 1


async def test_a_submission_is_idempotent_per_organisation(intake_pool: AsyncConnectionPool) -> None:
    body = kobo(**{"meta/instanceID": f"uuid:{uuid.uuid4()}"})
    ours, theirs = await submit(intake_pool, "dgme", body), await submit(intake_pool, "ame", body)
    assert ours["status"] == theirs["status"] == "ACCEPTED" and ours["case_id"] != theirs["case_id"]


async def test_a_rejected_submission_is_kept_with_its_reasons_and_listed_for_its_organisation(
        intake_pool: AsyncConnectionPool) -> None:
    body = kobo(**{"meta/instanceID": f"uuid:{uuid.uuid4()}", "identity/estimated_age": "130",
                   "arrival/destination_region": "99", "screening/vulnerabilities": "GBV_SURVIVOR ELDERLY"})
    answer = await submit(intake_pool, "dgme", body)
    assert answer["status"] == "REJECTED" and answer["case_id"] is None
    assert {p["field"] for p in answer["problems"]} == {"estimated_age", "destination_region"}
    assert "130" not in str(answer["problems"]), "reasons never echo values"
    await submit(intake_pool, "dgme", body)  # Kobo retries a failure
    [row] = [r for r in await listed(intake_pool, "dgme", status="REJECTED") if r["submission_id"] ==
             body["meta/instanceID"]]
    assert row["attempts"] == 2 and {p["field"] for p in row["problems"]} == {"estimated_age", "destination_region"}
    assert row["answers"]["estimated_age"] == 130 and row["answers"]["given_name"] == "Awa"
    assert row["answers"]["vulnerabilities"] == ["ELDERLY"], "a GBV flag only with sensitive:gbv"
    [scoped] = [r for r in await listed(intake_pool, "dgme", "cases:write sensitive:gbv", status="REJECTED")
                if r["submission_id"] == body["meta/instanceID"]]
    assert scoped["answers"]["vulnerabilities"] == ["GBV_SURVIVOR", "ELDERLY"]
    assert body["meta/instanceID"] not in str(await listed(intake_pool, "ame")), "another organisation sees none"


async def test_a_rejected_submission_fixed_and_sent_again_registers_and_its_kept_answers_go(
        intake_pool: AsyncConnectionPool) -> None:
    instance = f"uuid:{uuid.uuid4()}"
    await submit(intake_pool, "dgme", kobo(**{"meta/instanceID": instance, "identity/sex": "F"}))
    fixed = await submit(intake_pool, "dgme", kobo(**{"meta/instanceID": instance}))
    assert fixed["status"] == "ACCEPTED"
    rows = {r["status"]: r for r in await listed(intake_pool, "dgme") if r["submission_id"] == instance}
    assert rows["REJECTED"]["answers"] is None and rows["ACCEPTED"]["case_id"] == fixed["case_id"]


async def test_rejected_answers_are_forgotten_after_their_retention(intake_pool: AsyncConnectionPool) -> None:
    from services.intake import offline

    instance = f"uuid:{uuid.uuid4()}"
    await submit(intake_pool, "dgme", kobo(**{"meta/instanceID": instance, "identity/sex": "F"}))
    async with intake_pool.connection() as conn:
        await conn.execute("update intake.offline_submissions set last_received_at = now() - interval '400 days'"
                           " where submission_id = %s", (instance,))
    assert await offline.forget_old_answers(intake_pool) >= 1
    [row] = [r for r in await listed(intake_pool, "dgme") if r["submission_id"] == instance]
    assert row["answers"] is None and row["problems"], "the receipt and its reasons stay"


# --- batches -------------------------------------------------------------------------------------


def arrival_item(client_id: str, **overrides: Any) -> dict[str, Any]:
    from tests.integration.services import arrival

    return {"client_id": client_id, "command": "REGISTER_ARRIVAL", "arrival": arrival(**overrides)}


def update_item(client_id: str, case_id: str, base: int, **changes: Any) -> dict[str, Any]:
    return {"client_id": client_id, "command": "UPDATE_CASE", "case_id": case_id, "base_version": base,
            "changes": changes}


async def sync(pool: AsyncConnectionPool, org: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return (await call(INTAKE, "sync", pool, principal(org, OWNER), {"items": items}))["results"]


async def test_a_batch_answers_per_item_in_order_and_a_bad_item_stops_nothing(
        intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    ids = [str(uuid.uuid4()) for _ in range(4)]
    items = [arrival_item(ids[0]), arrival_item(ids[1], estimated_age=200),
             update_item(ids[2], case["id"], 1, place_of_origin="Kati"), arrival_item(ids[3])]
    results = await sync(intake_pool, "dgme", items)
    assert [r["client_id"] for r in results] == ids
    assert [r["status"] for r in results] == ["APPLIED", "REJECTED", "APPLIED", "APPLIED"]
    assert results[1]["errors"][0]["field"] == "arrival.estimated_age" and results[1]["case_id"] is None
    assert results[2]["version"] == 2 and results[2]["case_id"] == case["id"]
    again = await sync(intake_pool, "dgme", items)
    assert [r["status"] for r in again] == ["ALREADY_APPLIED", "REJECTED", "ALREADY_APPLIED", "ALREADY_APPLIED"]
    assert [r["case_id"] for r in again] == [r["case_id"] for r in results]
    assert again[2]["version"] == 2


async def test_two_offline_edits_from_one_version_the_second_is_a_conflict(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    first = await sync(intake_pool, "dgme", [update_item(str(uuid.uuid4()), case["id"], 1, given_name="Awa")])
    second = await sync(intake_pool, "dgme", [update_item(str(uuid.uuid4()), case["id"], 1, given_name="Aïcha",
                                                          place_of_origin="Kayes")])
    assert first[0]["status"] == "APPLIED" and first[0]["version"] == 2
    assert second[0]["status"] == "CONFLICT" and second[0]["version"] == 2
    assert second[0]["errors"][0]["changed_fields"] == ["given_name"]
    now = await call(INTAKE, "get_case", intake_pool, principal("dgme", "cases:read"), {"case_id": case["id"]})
    assert (now["given_name"], now["place_of_origin"]) == ("Awa", None), "never silently overwritten"


async def test_a_batch_item_for_a_case_not_owned_is_rejected_as_not_found(intake_pool: AsyncConnectionPool) -> None:
    case = await register(intake_pool, "dgme")
    [result] = await sync(intake_pool, "ame", [update_item(str(uuid.uuid4()), case["id"], 1, given_name="X")])
    assert result["status"] == "REJECTED" and result["errors"][0]["code"] == "NOT_FOUND"


async def test_a_client_id_that_is_not_a_uuid_is_rejected(intake_pool: AsyncConnectionPool) -> None:
    [result] = await sync(intake_pool, "dgme", [arrival_item("not-a-uuid")])
    assert result["status"] == "REJECTED" and result["errors"][0]["field"] == "client_id"


async def test_a_batch_is_bounded(intake_pool: AsyncConnectionPool) -> None:
    with pytest.raises(SeginError) as refused:
        await sync(intake_pool, "dgme", [arrival_item(str(uuid.uuid4())) for _ in range(101)])
    assert refused.value.code == "BAD_USER_INPUT" and refused.value.field == "items"
