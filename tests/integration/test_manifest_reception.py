"""Reception of groups at the service level (real PostgreSQL, no gateway, no NATS): a manifest with bad
rows keeps the good ones and names every problem, re-uploads duplicate nothing, a sender's mapping is
saved and used again, check-in registers exactly as registerArrival does, no-shows, walk-ins, totals,
and another organisation learns nothing of a group."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED
from kernel.errors import SeginError
from services.intake.app import APP as INTAKE
from tests.integration.services import audit_rows, call, outbox, principal, register

ARRIVED = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
HEADER = "Nom;Prénom(s);Sexe;Date de naissance;Âge;Téléphone;N° passeport;Lieu d'origine;Ménage/Famille;Lien de parenté"


def manifest_csv(rows: int, bad: dict[int, str] | None = None, header: str = HEADER) -> bytes:
    """``rows`` valid people (row 2 onwards); ``bad`` replaces some rows (by spreadsheet number) with broken ones."""
    lines = [header]
    for i in range(rows):
        number = i + 2
        line = (f"Keïta{i};Awa{i};{'F' if i % 2 else 'M'};;{5 + i % 50};76 12 {i % 100:02d} 34;;Kayes;M{i // 3};"
                f"{'Mère' if i % 3 == 0 else 'Fils'}")
        lines.append((bad or {}).get(number, line))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def as_dgme(org: str = "dgme") -> Any:
    return principal(org, "cases:write cases:read")


async def new_group(pool: AsyncConnectionPool, org: str = "dgme", **overrides: Any) -> dict[str, Any]:
    return await call(INTAKE, "create_arrival_group", pool, as_dgme(org), {
        "idempotency_key": str(uuid.uuid4()), "kind": "FLIGHT", "reference": "UJ3214", "arrival_date": ARRIVED,
        "arrival_point": "BAMAKO_AIRPORT", "country_returned_from": "LY", **overrides})


async def upload(pool: AsyncConnectionPool, group: dict[str, Any], content: bytes, org: str = "dgme",
                 sender: str = "OIM Libye", mapping: list[dict[str, str]] | None = None) -> dict[str, Any]:
    payload = {"group_id": group["id"], "sender": sender, "content_base64": base64.b64encode(content).decode()}
    if mapping is not None:
        payload["mapping"] = mapping
    return await call(INTAKE, "upload_manifest", pool, as_dgme(org), payload)


async def people(pool: AsyncConnectionPool, group: dict[str, Any], org: str = "dgme", **query: Any
                 ) -> dict[str, Any]:
    return await call(INTAKE, "arrival_group", pool, as_dgme(org), {"group_id": group["id"], **query})


CONSENT = {"given": True, "recipient_org_ids": ["unicef"]}


async def check_in(pool: AsyncConnectionPool, group: dict[str, Any], person_id: str | None, key: str | None = None,
                   **given: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"idempotency_key": key or str(uuid.uuid4()), "group_id": group["id"],
                               "input": {"consent": CONSENT, "destination_region": "07", **given}}
    if person_id:
        payload["expected_person_id"] = person_id
    return await call(INTAKE, "check_in", pool, as_dgme(), payload)


async def test_a_200_row_manifest_with_3_bad_rows_keeps_197_and_names_each_problem(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    bad = {7: "Traoré;;M;;30;;;;;", 50: "Diallo;Ali;X;31/02/1990;;;;;;", 120: "Coulibaly;Sira;F;;;abc;;;;"}
    result = await upload(intake_pool, group, manifest_csv(200, bad))
    assert result["rows_read"] == 200 and result["added"] == 197
    assert result["rejected_rows"] == [7, 50, 120]
    named = {(p["row"], p["column"], p["field"]) for p in result["problems"]}
    assert named == {(7, "Prénom(s)", "given_name"), (50, "Sexe", "sex"), (50, "Date de naissance", "date_of_birth"),
                     (120, "Téléphone", "phone_numbers"), (120, "Date de naissance", "date_of_birth")}
    assert all(p["reason"] for p in result["problems"])
    assert "Keïta" not in str(result), "the answer names rows and columns, not people"
    read = await people(intake_pool, group, first=100)
    assert read["totals"]["expected"] == 197 and len(read["people"]["nodes"]) == 100
    assert [p["source_row"] for p in read["people"]["nodes"][:6]] == [2, 3, 4, 5, 6, 8], "manifest order"
    first = read["people"]["nodes"][0]
    assert first["phone_numbers"] == ["+22376120034"] and first["household_ref"] == "M0"
    assert first["relationship"] == "Mère" and first["status"] == "EXPECTED"
    second = await people(intake_pool, group, first=100, after=read["people"]["page_info"]["end_cursor"])
    assert len(second["people"]["nodes"]) == 97 and not second["people"]["page_info"]["has_next_page"]


async def test_the_same_file_again_answers_the_same_and_a_corrected_one_adds_only_the_fixed_rows(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    broken = manifest_csv(10, {4: "Traoré;;M;;30;;;;;"})
    first = await upload(intake_pool, group, broken)
    assert await upload(intake_pool, group, broken) == first
    corrected = manifest_csv(10, {4: "Traoré;Issa;M;;30;;;;;"})
    again = await upload(intake_pool, group, corrected)
    assert again["added"] == 1 and again["added_rows"] == [4] and again["problems"] == []
    assert again["already_present_rows"] == [2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert (await people(intake_pool, group))["totals"]["expected"] == 10


async def test_a_missing_required_column_is_one_file_error_and_nothing_is_stored(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    with pytest.raises(SeginError) as refused:
        await upload(intake_pool, group, "Nom;Prénom;Âge\nKeïta;Awa;30\n".encode())
    assert refused.value.code == "BAD_USER_INPUT" and refused.value.field == "file"
    assert "sex" in refused.value.message
    assert (await people(intake_pool, group))["totals"]["expected"] == 0


async def test_a_senders_mapping_is_saved_and_used_again(intake_pool: AsyncConnectionPool) -> None:
    sender = f"Ambassade {uuid.uuid4().hex[:6]}"
    odd = "Patronyme,Petit nom,Genre,Années,Commentaire\nKeita,Awa,F,30,x\n"
    mapping = [{"column": "Patronyme", "field": "FAMILY_NAME"}, {"column": "Petit nom", "field": "GIVEN_NAME"},
               {"column": "Années", "field": "ESTIMATED_AGE"}, {"column": "Commentaire", "field": "IGNORE"}]
    first = await upload(intake_pool, await new_group(intake_pool), odd.encode(), sender=sender, mapping=mapping)
    assert first["added"] == 1 and first["warnings"] == []
    assert first["mapping"] == [{"column": "Patronyme", "field": "FAMILY_NAME"},
                                {"column": "Petit nom", "field": "GIVEN_NAME"}, {"column": "Genre", "field": "SEX"},
                                {"column": "Années", "field": "ESTIMATED_AGE"}]
    later = await upload(intake_pool, await new_group(intake_pool), odd.replace("Awa", "Fanta").encode(),
                         sender=sender.upper())
    assert later["added"] == 1, "the sender's saved mapping was used (sender names compared case-blind)"
    with pytest.raises(SeginError):  # another organisation does not get dgme's mapping
        await upload(intake_pool, await new_group(intake_pool, "ame"), odd.encode(), org="ame", sender=sender)


async def test_check_in_registers_the_case_as_register_arrival_does(intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(3))
    person = (await people(intake_pool, group))["people"]["nodes"][0]
    done = await check_in(intake_pool, group, person["id"], vulnerabilities=["MEDICAL_NEEDS"], given_name="Awa")
    case = done["case"]
    assert done["expected_person"]["status"] == "CHECKED_IN" and done["expected_person"]["case_id"] == case["id"]
    assert case["family_name"] == "Keïta0" and case["given_name"] == "Awa", "the row, corrected by the agent"
    assert case["arrival_point"] == "BAMAKO_AIRPORT" and case["country_returned_from"] == "LY"
    assert case["arrival_date"] == ARRIVED and case["phone_numbers"] == ["+22376120034"]
    direct = await register(intake_pool, "dgme", given_name="Awa", family_name="Keïta0", sex="MALE",
                            estimated_age=5, country_returned_from="LY", arrival_point="BAMAKO_AIRPORT",
                            arrival_date=ARRIVED, destination_region="07", vulnerabilities=["MEDICAL_NEEDS"],
                            phone_numbers=["+22376120034"], place_of_origin="Kayes")
    [checked_event] = await outbox(intake_pool, "intake", case["id"])
    [direct_event] = await outbox(intake_pool, "intake", direct["id"])
    assert checked_event["type"] == direct_event["type"] == ARRIVAL_REGISTERED.event_type
    same = {k: v for k, v in checked_event["data"].items() if k not in ("case_id",)}
    assert same == {k: v for k, v in direct_event["data"].items() if k not in ("case_id",)}
    entries = [r for r in await audit_rows(intake_pool, "intake") if uuid.UUID(case["id"]) in r["case_ids"]]
    assert [(e["operation"], e["outcome"]) for e in entries] == [("case.create", "allowed")]


async def test_checking_in_is_idempotent_and_the_same_person_twice_is_a_conflict(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(2))
    person = (await people(intake_pool, group))["people"]["nodes"][0]
    key = str(uuid.uuid4())
    first = await check_in(intake_pool, group, person["id"], key)
    assert (await check_in(intake_pool, group, person["id"], key))["case"]["id"] == first["case"]["id"]
    with pytest.raises(SeginError) as twice:
        await check_in(intake_pool, group, person["id"])
    assert twice.value.code == "CONFLICT" and twice.value.field == "expectedPersonId"
    assert (await people(intake_pool, group))["totals"]["checked_in"] == 1


async def test_a_check_in_error_names_the_input_field(intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(1))
    person = (await people(intake_pool, group))["people"]["nodes"][0]
    with pytest.raises(SeginError) as refused:
        await check_in(intake_pool, group, person["id"], destination_region="99")
    assert refused.value.code == "BAD_USER_INPUT" and refused.value.field == "input.destination_region"
    assert (await people(intake_pool, group))["people"]["nodes"][0]["status"] == "EXPECTED"


async def test_walk_ins_no_shows_and_totals(intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    # Row 2: a 5-year-old boy, row 3: a woman of 30, row 4: a man born in 1990.
    content = (HEADER + "\nKeïta;Moussa;M;;5;;;;F1;Fils\nKeïta;Awa;F;;30;;;;F1;Mère\nTraoré;Issa;M;01/01/1990;;;;;;\n")
    await upload(intake_pool, group, content.encode())
    nodes = (await people(intake_pool, group))["people"]["nodes"]
    await check_in(intake_pool, group, nodes[0]["id"])  # the child
    await check_in(intake_pool, group, nodes[1]["id"], vulnerabilities=["SINGLE_PARENT"])
    walk_in = await check_in(intake_pool, group, None, given_name="Oumar", family_name="Sidibé", sex="MALE",
                             estimated_age=40)
    assert walk_in["expected_person"]["added_on_arrival"] and walk_in["case"]["arrival_point"] == "BAMAKO_AIRPORT"
    closed = await call(INTAKE, "close_arrival_group", intake_pool, as_dgme(), {"group_id": group["id"]})
    assert closed["status"] == "CLOSED"
    assert closed["totals"] == {"expected": 3, "checked_in": 3, "no_show": 1, "added_on_arrival": 1, "children": 1,
                                "vulnerable": 1}
    no_shows = (await people(intake_pool, group, status="NO_SHOW"))["people"]["nodes"]
    assert [p["given_name"] for p in no_shows] == ["Issa"], "no-shows stay listed"
    listed = await call(INTAKE, "arrival_groups", intake_pool, as_dgme(), {"first": 100})
    assert group["id"] in [g["id"] for g in listed["nodes"]]


async def test_another_organisation_learns_nothing_of_a_group(intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(2))
    person = (await people(intake_pool, group))["people"]["nodes"][0]
    absent = {"group_id": str(uuid.uuid4())}
    for endpoint, payload in [("arrival_group", {"group_id": group["id"]}),
                              ("close_arrival_group", {"group_id": group["id"]})]:
        with pytest.raises(SeginError) as theirs:
            await call(INTAKE, endpoint, intake_pool, as_dgme("ame"), payload)
        with pytest.raises(SeginError) as nobodys:
            await call(INTAKE, endpoint, intake_pool, as_dgme("ame"), absent)
        assert (theirs.value.code, theirs.value.message) == (nobodys.value.code, nobodys.value.message)
        assert theirs.value.code == "NOT_FOUND"
    with pytest.raises(SeginError) as refused:
        await call(INTAKE, "check_in", intake_pool, as_dgme("ame"), {
            "idempotency_key": str(uuid.uuid4()), "group_id": group["id"], "expected_person_id": person["id"],
            "input": {"consent": CONSENT, "destination_region": "07"}})
    assert refused.value.code == "NOT_FOUND"
    listed = await call(INTAKE, "arrival_groups", intake_pool, as_dgme("ame"), {"first": 100})
    assert group["id"] not in [g["id"] for g in listed["nodes"]]
    assert (await people(intake_pool, group))["people"]["nodes"][0]["status"] == "EXPECTED"


async def test_reading_a_group_is_audited(intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(2))
    read = await people(intake_pool, group)
    ids = {uuid.UUID(p["id"]) for p in read["people"]["nodes"]}
    reads = [r for r in await audit_rows(intake_pool, "intake")
             if r["operation"] == "arrival_group.read" and set(r["case_ids"]) == ids]
    assert len(reads) == 1 and reads[0]["outcome"] == "allowed"


async def test_a_long_manifest_is_audited_in_entries_of_at_most_a_thousand_people(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    result = await upload(intake_pool, group, manifest_csv(1500))
    assert result["added"] == 1500
    entries = [r for r in await audit_rows(intake_pool, "intake") if r["operation"] == "manifest.upload"]
    assert sorted(len(e["case_ids"]) for e in entries[-2:]) == [500, 1000]


async def test_closing_names_the_no_shows_in_the_audit_trail_and_refusals_are_recorded(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(2))
    ids = {uuid.UUID(p["id"]) for p in (await people(intake_pool, group))["people"]["nodes"]}
    with pytest.raises(SeginError):
        await call(INTAKE, "close_arrival_group", intake_pool, as_dgme("ame"), {"group_id": group["id"]})
    await call(INTAKE, "close_arrival_group", intake_pool, as_dgme(), {"group_id": group["id"]})
    rows = [r for r in await audit_rows(intake_pool, "intake") if r["operation"] == "arrival_group.close"]
    assert (rows[-2]["org_id"], rows[-2]["outcome"]) == ("ame", "denied")
    assert (rows[-1]["org_id"], rows[-1]["outcome"], set(rows[-1]["case_ids"])) == ("dgme", "allowed", ids)


async def test_the_subject_access_export_holds_the_manifest_row_the_case_was_checked_in_from(
        intake_pool: AsyncConnectionPool) -> None:
    group = await new_group(intake_pool)
    await upload(intake_pool, group, (HEADER + "\nKeïta;Awa;F;;30;;AB123456;Kayes;F1;Mère\n").encode())
    person = (await people(intake_pool, group))["people"]["nodes"][0]
    case = (await check_in(intake_pool, group, person["id"]))["case"]
    export = await call(INTAKE, "subject_access", intake_pool, principal("segin-steward", "audit:read"),
                        {"case_id": case["id"]})
    entry = export["arrival_group_entry"]
    assert (entry["document_number"], entry["household_ref"], entry["relationship"], entry["source_row"]) == (
        "AB123456", "F1", "Mère", 2)
    direct = await register(intake_pool, "dgme")
    assert (await call(INTAKE, "subject_access", intake_pool, principal("segin-steward", "audit:read"),
                       {"case_id": direct["id"]}))["arrival_group_entry"] is None


async def test_people_never_checked_in_are_erased_after_the_retention_and_the_totals_stay(
        intake_pool: AsyncConnectionPool) -> None:
    """Names, phones and documents of a manifest's no-shows do not outlive their use (migration 0010)."""
    from services.intake import reception

    group = await new_group(intake_pool)
    await upload(intake_pool, group, manifest_csv(3))
    listed = (await people(intake_pool, group))["people"]["nodes"]
    came = await check_in(intake_pool, group, listed[0]["id"])
    await call(INTAKE, "close_arrival_group", intake_pool, as_dgme(), {"group_id": group["id"]})
    before = (await people(intake_pool, group))["totals"]

    arrived = datetime.fromisoformat(ARRIVED).date()
    assert await reception.erase_unarrived(intake_pool, today=arrived + timedelta(days=90)) == 0, "not yet"
    assert await reception.erase_unarrived(intake_pool, today=arrived + timedelta(days=91)) >= 2
    after = await people(intake_pool, group)
    assert after["totals"] == before, "the counts stay"
    rows = {p["id"]: p for p in after["people"]["nodes"]}
    kept = rows[listed[0]["id"]]
    assert (kept["given_name"], kept["case_id"], kept["erased_at"]) == ("Awa0", came["case"]["id"], None)
    for gone in (rows[listed[1]["id"]], rows[listed[2]["id"]]):
        assert gone["erased_at"] is not None and gone["status"] == "NO_SHOW"
        assert (gone["given_name"], gone["family_name"], gone["phone_numbers"], gone["document_number"],
                gone["place_of_origin"], gone["household_ref"], gone["date_of_birth"]) == (
            None, None, [], None, None, None, None)
    # The same file sent again is still recognised by its bytes (its first answer, replayed): nothing comes back.
    await upload(intake_pool, group, manifest_csv(3))
    assert (await people(intake_pool, group))["totals"] == before
