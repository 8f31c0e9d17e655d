"""Adversarial review of issue 10's personal-data paths at the service level (real PostgreSQL, no gateway):
what an organisation with ``cases:write`` can make intake do with a crafted manifest, and what another
organisation can learn or do through the new paths."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import zipfile
from datetime import date

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.errors import BadInput, SeginError
from services.intake import manifests
from tests.integration.test_manifest_reception import new_group, upload

TODAY = date(2026, 12, 2)
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADER_ROW = ('<row r="1"><c r="A1" t="inlineStr"><is><t>Nom</t></is></c><c r="B1" t="inlineStr"><is><t>Prénom</t>'
              '</is></c><c r="C1" t="inlineStr"><is><t>Sexe</t></is></c><c r="D1" t="inlineStr"><is><t>Âge</t></is>'
              '</c></row>')


def workbook(sheet_data: str, shared_strings: str | None = None) -> bytes:
    """A minimal XLSX as a hostile sender would write it by hand (openpyxl reads it)."""
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            + (f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
               if shared_strings else "") + "</Types>"))
        z.writestr("_rels/.rels", f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" '
                                  f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{MAIN}" xmlns:r="{rel}"><sheets>'
                                      '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/worksheet" '
            'Target="worksheets/sheet1.xml"/>' + (f'<Relationship Id="rId2" Type="{rel}/sharedStrings" '
                                                  'Target="sharedStrings.xml"/>' if shared_strings else "")
            + "</Relationships>"))
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0"?><worksheet xmlns="{MAIN}"><sheetData>'
                                               f"{sheet_data}</sheetData></worksheet>")
        if shared_strings is not None:
            z.writestr("xl/sharedStrings.xml", shared_strings)
    return buf.getvalue()


def timed_refusal(content: bytes) -> tuple[BadInput, float]:
    started = time.perf_counter()
    with pytest.raises(BadInput) as refused:
        manifests.read_manifest(content, {}, TODAY)
    return refused.value, time.perf_counter() - started


# --- a manifest that costs more than its size --------------------------------------------------------

def test_a_1_kb_workbook_declaring_a_row_a_million_lines_down_is_refused_at_once() -> None:
    """Before: openpyxl produced every empty row in between (60 cells each), ~5-7 s of the service's event loop
    for a 1.5 kB file, for every organisation's callers at once."""
    content = workbook(HEADER_ROW + '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>')
    assert len(content) < 2000
    refusal, seconds = timed_refusal(content)
    assert refusal.field == "file" and "row" in refusal.message
    assert seconds < 1.0


def test_a_workbook_whose_shared_strings_expand_a_thousandfold_is_refused_before_it_is_read() -> None:
    """Before: 125 kB of XLSX with three million shared strings took ~40 s and gigabytes to load."""
    strings = f'<?xml version="1.0"?><sst xmlns="{MAIN}">' + "<si><t>a</t></si>" * 3_000_000 + "</sst>"
    content = workbook(HEADER_ROW, strings)
    assert len(content) < 200_000
    refusal, seconds = timed_refusal(content)
    assert refusal.field == "file" and "expands" in refusal.message
    assert seconds < 1.0


def test_a_real_three_thousand_row_workbook_is_still_read() -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Nom", "Prénom", "Sexe", "Date de naissance", "Téléphone", "N° passeport", "Lieu d'origine",
                  "Ménage", "Lien de parenté", "Région de destination", "Âge", "Notes"])
    for i in range(3000):
        sheet.append([f"Keïta{i}", f"Awa{i}", "F", "01/02/1990", "+22376123456", f"AA{i:06d}", "Kayes", f"M{i}",
                      "Mère", "Gao", 30, "x" * 40])
    out = io.BytesIO()
    book.save(out)
    assert len(manifests.read_manifest(out.getvalue(), {}, TODAY).rows) == 3000


async def test_reading_a_large_manifest_does_not_stop_the_service_answering_others(
        intake_pool: AsyncConnectionPool) -> None:
    """A slow file is read off the event loop: a heartbeat on the same loop keeps beating meanwhile."""
    group = await new_group(intake_pool)
    cells = "".join(f'<row r="{r}">' + "".join(f'<c r="{chr(65 + c % 26)}{chr(65 + c // 26)}{r}"><v>1</v></c>'
                                               for c in range(60)) + "</row>" for r in range(2, 2500))
    content = workbook(HEADER_ROW + cells)
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beating = asyncio.create_task(heartbeat())
    try:
        await upload(intake_pool, group, content)
    except SeginError:
        pass  # whatever the answer: what matters is that the loop was free meanwhile
    finally:
        beating.cancel()
    assert gaps and max(gaps) < 0.5, f"the event loop stood still for {max(gaps or [0]):.1f} s"


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


# --- a family walk through cases the caller may not read ------------------------------------------------

async def test_a_family_stops_at_a_case_the_caller_may_not_read_and_shows_no_link_between_two_of_them(
        intake_pool: AsyncConnectionPool) -> None:
    """unicef holds a referral for one child only. Before: family(child) went on through the mother's case
    (unreadable) to her other child held by csref-gao and to her husband, and listed the SIBLING_OF and
    SPOUSE_OF links among people unicef has no basis for: who is whose relative across organisations."""
    from tests.integration.test_family_links import child, link, open_referral
    from tests.integration.services import call, principal, register
    from services.intake.app import APP as INTAKE

    mother = await register(intake_pool, "dgme")
    husband = await register(intake_pool, "dgme", given_name="Bakary", sex="MALE",
                             links=[link(mother["id"], "SPOUSE_OF", False)])
    kid = await register(intake_pool, "dgme", **child([link(mother["id"])]))
    elsewhere = await register(intake_pool, "csref-gao", **child([], given_name="Awa"),
                               consent={"given": True, "recipient_org_ids": ["dgme"]})
    await open_referral(intake_pool, elsewhere, "dgme")  # dgme reads csref-gao's child, and links her to the mother
    await call(INTAKE, "link_cases", intake_pool, principal("dgme", "cases:write cases:read"), {
        "case_id": mother["id"], "linked_case_id": elsewhere["id"], "relation": "PARENT_OF",
        "travelling_together": False})
    await open_referral(intake_pool, kid, "unicef")

    family = await call(INTAKE, "family", intake_pool, principal("unicef", "cases:read"), {"case_id": kid["id"]})
    members = {m["case_id"]: m for m in family["members"]}
    assert set(members) == {kid["id"], mother["id"]}  # the mother: whom to ask (dgme), and no further
    assert members[mother["id"]] == {"case_id": mother["id"], "owner_org_id": "dgme", "person": None}
    assert elsewhere["id"] not in str(family) and husband["id"] not in str(family)
    assert "csref-gao" not in str(family)
    assert {(x["case_id"], x["linked_case_id"]) for x in family["links"]} == {(kid["id"], mother["id"])}

    # dgme reads them all: its walk still goes through its own cases to csref-gao's child (read by referral).
    whole = await call(INTAKE, "family", intake_pool, principal("dgme", "cases:read"), {"case_id": kid["id"]})
    assert {m["case_id"] for m in whole["members"]} == {kid["id"], mother["id"], husband["id"], elsewhere["id"]}


async def test_two_unreadable_relatives_next_to_a_readable_case_show_no_link_between_them(
        intake_pool: AsyncConnectionPool) -> None:
    from tests.integration.test_family_links import child, link, open_referral
    from tests.integration.services import call, principal, register
    from services.intake.app import APP as INTAKE

    mother = await register(intake_pool, "dgme")
    father = await register(intake_pool, "dgme", given_name="Bakary", sex="MALE",
                            links=[link(mother["id"], "SPOUSE_OF", False)])
    kid = await register(intake_pool, "dgme", **child([link(mother["id"]), link(father["id"])]))
    await open_referral(intake_pool, kid, "unicef")
    family = await call(INTAKE, "family", intake_pool, principal("unicef", "cases:read"), {"case_id": kid["id"]})
    assert {m["case_id"] for m in family["members"]} == {kid["id"], mother["id"], father["id"]}
    assert {(x["case_id"], x["linked_case_id"]) for x in family["links"]} == {
        (kid["id"], mother["id"]), (kid["id"], father["id"])}
    assert "SPOUSE_OF" not in str(family)


@pytest.mark.parametrize("cell", [
    '<c r="A2" t="n"><v>Keïta</v></c>',  # a name in a number cell: openpyxl's error quoted it
    '<c r="A2" t="d"><v>Keïta</v></c>',
    '<c r="A2" t="s"><v>7</v></c>',  # a shared string that does not exist
])
def test_a_workbook_openpyxl_cannot_read_is_the_files_problem_and_its_values_are_not_quoted(cell: str) -> None:
    """Before: IndexError or ValueError out of openpyxl, answered INTERNAL, with the exception's message
    (the cell's value) recorded on the trace span by kernel.rpc."""
    refusal, _ = timed_refusal(workbook(HEADER_ROW + f'<row r="2">{cell}</row>',
                                        f'<?xml version="1.0"?><sst xmlns="{MAIN}"><si><t>a</t></si></sst>'))
    assert refusal.field == "file" and "Keïta" not in refusal.message
    assert refusal.__cause__ is None and refusal.__suppress_context__


# --- audit of offline writes ----------------------------------------------------------------------------

async def test_a_correction_sent_in_an_offline_batch_is_audited_like_update_case(
        intake_pool: AsyncConnectionPool) -> None:
    """Before: syncOffline's UPDATE_CASE changed a person's identity and left no audit record at all
    (updateCase records case.update; the batch path skipped it)."""
    import uuid

    from tests.integration.services import audit_rows, register
    from tests.integration.test_offline_service import sync, update_item

    case = await register(intake_pool, "dgme")
    [result] = await sync(intake_pool, "dgme", [update_item(str(uuid.uuid4()), case["id"], 1, given_name="Awa")])
    assert result["status"] == "APPLIED"
    updates = [r for r in await audit_rows(intake_pool, "intake")
               if r["operation"] == "case.update" and case["id"] in map(str, r["case_ids"])]
    assert len(updates) == 1 and updates[0]["org_id"] == "dgme"


async def test_the_case_link_cases_and_unlink_cases_answer_with_is_an_audited_read(
        intake_pool: AsyncConnectionPool) -> None:
    """Before: unlinkCases of two cases not linked (or whose last link it removed) answered the whole case —
    names, birth, screening, sharing — and recorded no read of it."""
    from tests.integration.services import audit_rows, call, principal, register
    from services.intake.app import APP as INTAKE

    one, other = await register(intake_pool, "dgme"), await register(intake_pool, "dgme", given_name="Awa")
    before = len(await audit_rows(intake_pool, "intake"))
    answer = await call(INTAKE, "unlink_cases", intake_pool, principal("dgme", "cases:write cases:read"),
                        {"case_id": one["id"], "linked_case_id": other["id"]})
    assert answer["given_name"] == "Mariam"
    reads = [r for r in (await audit_rows(intake_pool, "intake"))[before:]
             if r["operation"] == "case.read" and one["id"] in map(str, r["case_ids"])]
    assert len(reads) == 1 and "identity" in reads[0]["field_categories"]


# --- the public arrival form ----------------------------------------------------------------------------

def test_the_public_arrival_form_is_made_once_not_for_every_anonymous_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /offline/arrival-form.xlsx needs no credentials (Kobo's import from URL sends none). Before: each
    request built the workbook again, ~60 ms of the gateway's CPU: a cheap flood from anyone."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from contracts import xlsform
    from gateway import offline

    made: list[int] = []
    real = xlsform.workbook_bytes

    def counted() -> bytes:
        made.append(1)
        return real()

    monkeypatch.setattr(xlsform, "workbook_bytes", counted)
    app = FastAPI()
    app.include_router(offline.router({}, timeout=1.0))
    with TestClient(app) as client:
        bodies = [client.get("/offline/arrival-form.xlsx") for _ in range(5)]
    assert all(b.status_code == 200 and b.content == bodies[0].content for b in bodies)
    assert len(made) == 1


def test_a_csv_with_many_empty_lines_below_the_list_is_still_read() -> None:
    """The bound on how far down a row may lie is the workbook's (its empty rows cost); a CSV is bounded by
    its bytes, and Excel writes the formatted empty rows below a list as lines of separators."""
    text = "Nom;Prénom;Sexe;Âge\nKeïta;Awa;F;30\n" + ";;;\n" * 20_000
    assert len(manifests.read_manifest(text.encode(), {}, TODAY).rows) == 1


async def test_one_case_linked_twice_under_two_spellings_of_its_id_is_bad_input_not_an_internal_error(
        intake_pool: AsyncConnectionPool) -> None:
    """The contract's "link each case at most once" compares the ids as sent; before: the same UUID in upper
    and lower case passed it, the second insert found the link made, and an assertion answered INTERNAL."""
    from tests.integration.services import register
    from tests.integration.test_family_links import child, link

    mother = await register(intake_pool, "dgme")
    with pytest.raises(SeginError) as refused:
        await register(intake_pool, "dgme", **child([link(mother["id"]), link(mother["id"].upper())]))
    assert refused.value.code == "BAD_USER_INPUT" and refused.value.field == "arrival.links.1.case_id"
