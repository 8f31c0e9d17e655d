"""The audit trail against the suite's real PostgreSQL: chaining, append-only, tamper detection, search.

Every test gets its own schema (kernel tables, audit log included, created by ``kernel.db.migrate``).
Tampering is done the way an attacker with the database's superuser would: by disabling the trigger.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from kernel import audit
from kernel.audit import AuditEntry, Problem, chain_head, entry_hash, record, search, verify
from kernel.db import migrate, open_pool
from kernel.errors import BadInput, SeginError
from devstack.localstack import PostgresServer
from kernel.tokens import Principal

ROOT = Path(__file__).resolve().parents[2]


def principal(org: str = "dgme", *scopes: str, subject: str | None = None) -> Principal:
    return Principal(subject=subject or f"{org}-demo", org_id=org, client_id=f"{org}-demo", scopes=frozenset(scopes),
                     jti=uuid.uuid4().hex, token="not-a-real-token")


def read_case(*case_ids: uuid.UUID, purpose: str = "case_management") -> AuditEntry:
    return AuditEntry("case.read", case_ids, ["identity", "vulnerability"], purpose, "allowed")


@dataclass
class Db:
    schema: str
    url: str
    pool: AsyncConnectionPool

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, "audit_log")

    async def record(self, who: Principal, entry: AuditEntry) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            return await record(conn, self.schema, who, entry)

    async def verify(self, expected_head: tuple[int, str] | None = None) -> list[Problem]:
        async with self.pool.connection() as conn:
            return await verify(conn, self.schema, expected_head=expected_head)

    async def head(self) -> tuple[int, str] | None:
        async with self.pool.connection() as conn:
            return await chain_head(conn, self.schema)

    async def rows(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.SQL("select * from {} order by seq").format(self.table))
            return await cur.fetchall()

    async def tamper(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """As the superuser: switch the append-only trigger off, run ``statement``, switch it on again."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn, conn.transaction():
            await conn.execute(sql.SQL("alter table {} disable trigger audit_log_append_only").format(self.table))
            await conn.execute(sql.SQL(statement).format(table=self.table), params)  # type: ignore[arg-type]
            await conn.execute(sql.SQL("alter table {} enable trigger audit_log_append_only").format(self.table))


@pytest.fixture
async def db(postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[Db]:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    empty = tmp_path / "migrations"
    empty.mkdir()
    assert "0000_audit.sql" in await migrate(postgres.url, schema, empty)
    pool = await open_pool(postgres.url, min_size=1, max_size=24)
    try:
        yield Db(schema, postgres.url, pool)
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


async def fill(db: Db, n: int) -> list[uuid.UUID]:
    cases = [uuid.uuid4() for _ in range(n)]
    for i, case in enumerate(cases):
        await db.record(principal(("dgme", "unicef")[i % 2]), read_case(case))
    return cases


# --- the chain ----------------------------------------------------------------------------------


async def test_a_chain_of_entries_verifies_clean(db: Db) -> None:
    assert await db.verify() == []
    assert await db.head() is None
    await fill(db, 25)
    rows = await db.rows()
    assert [r["seq"] for r in rows] == list(range(1, 26))
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert all(entry_hash(r) == r["hash"] for r in rows)
    assert await db.verify() == []
    assert await db.head() == (25, rows[-1]["hash"])
    assert await db.verify(expected_head=(25, rows[-1]["hash"])) == []
    assert await db.verify(expected_head=(10, rows[9]["hash"])) == []  # an older anchor stays valid


async def test_entry_records_the_principal_the_entry_and_the_trace(db: Db) -> None:
    case = uuid.uuid4()
    async with db.pool.connection() as conn, conn.transaction():
        seq = await record(conn, db.schema, principal("unicef", subject="staff-42"),
                           AuditEntry("referral.accept", [str(case), case], ["health", "identity", "health"],
                                      "referral", "restricted", legal_basis="CONSENT"), trace_id="ab" * 16)
    (row,) = await db.rows()
    assert row["seq"] == seq
    assert (row["actor"], row["org_id"], row["client_id"]) == ("staff-42", "unicef", "unicef-demo")
    assert (row["operation"], row["purpose"], row["outcome"], row["legal_basis"], row["trace_id"]) == (
        "referral.accept", "referral", "restricted", "CONSENT", "ab" * 16)
    assert row["case_ids"] == [case]
    assert row["field_categories"] == ["health", "identity"]
    assert row["at"] is not None


async def test_a_record_commits_or_rolls_back_with_the_callers_transaction(db: Db) -> None:
    async with db.pool.connection() as conn:
        async with conn.transaction():
            await record(conn, db.schema, principal(), read_case(uuid.uuid4()))
            raise psycopg.Rollback()
    assert await db.rows() == []
    await db.record(principal(), read_case(uuid.uuid4()))
    (row,) = await db.rows()
    assert row["seq"] == 2  # the rolled-back entry used seq 1: a gap, but not a deletion
    assert row["prev_hash"] == audit.GENESIS
    assert await db.verify() == []


async def test_record_outside_a_transaction_commits_on_its_own(db: Db) -> None:
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await record(conn, db.schema, principal(), read_case(uuid.uuid4()))
    assert len(await db.rows()) == 1


async def test_record_refuses_a_repeatable_read_transaction(db: Db) -> None:
    async with await psycopg.AsyncConnection.connect(db.url) as conn:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        with pytest.raises(RuntimeError, match="READ COMMITTED"):
            async with conn.transaction():
                await record(conn, db.schema, principal(), read_case(uuid.uuid4()))
    assert await db.rows() == []


async def test_twenty_concurrent_writers_make_one_unbroken_chain(db: Db) -> None:
    async def writer(n: int) -> None:
        for i in range(5):
            async with db.pool.connection() as conn:
                async with conn.transaction():
                    await record(conn, db.schema, principal(f"org-{n}"), read_case(uuid.uuid4()))
                    await asyncio.sleep(0.002)  # hold the chain a little, as a real handler would
                    if i == 2 and n % 5 == 0:
                        raise psycopg.Rollback()  # some writers roll back: their seq is lost, not their chain

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(20))), 120)
    rows = await db.rows()
    assert len(rows) == 20 * 5 - 4
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert all(a["at"] <= b["at"] for a, b in zip(rows, rows[1:], strict=False))
    assert await db.verify() == []


# --- append-only and tamper detection -------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "update {table} set purpose = 'other' where seq = 2",
    "update {table} set purpose = 'other' where seq = 999",
    "delete from {table} where seq = 2",
    "delete from {table}",
    "truncate {table}",
])
async def test_update_delete_and_truncate_are_refused(db: Db, statement: str) -> None:
    await fill(db, 3)
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            await conn.execute(sql.SQL(statement).format(table=db.table))  # type: ignore[arg-type]
    assert len(await db.rows()) == 3
    assert await db.verify() == []


async def test_an_altered_entry_is_reported(db: Db) -> None:
    await fill(db, 10)
    await db.tamper("update {table} set purpose = 'marketing' where seq = 4")
    problems = await db.verify()
    assert [(p.kind, p.seq) for p in problems] == [("altered", 4)]


async def test_an_altered_entry_with_a_recomputed_hash_breaks_the_next_link(db: Db) -> None:
    await fill(db, 10)
    head = await db.head()
    rows = await db.rows()
    forged = {**rows[3], "org_id": "someone-else"}
    await db.tamper("update {table} set org_id = %s, hash = %s where seq = 4", ("someone-else", entry_hash(forged)))
    assert [(p.kind, p.seq) for p in await db.verify()] == [("broken_link", 5)]
    assert [(p.kind, p.seq) for p in await db.verify(expected_head=head)] == [("broken_link", 5)]


async def test_a_rewritten_history_passes_only_without_the_anchor(db: Db) -> None:
    """Without a secret, whoever can write the table can recompute every hash after an edit."""
    await fill(db, 6)
    head = await db.head()
    rows = await db.rows()
    prev = rows[1]["hash"]
    for row in rows[2:]:
        forged = {**row, "purpose": "rewritten", "prev_hash": prev}
        forged["hash"] = entry_hash(forged)
        await db.tamper("update {table} set purpose = %s, prev_hash = %s, hash = %s where seq = %s",
                        ("rewritten", forged["prev_hash"], forged["hash"], row["seq"]))
        prev = forged["hash"]
    assert await db.verify() == []
    assert [(p.kind, p.seq) for p in await db.verify(expected_head=head)] == [("anchor_mismatch", 6)]


async def test_a_deleted_entry_is_reported_as_a_gap(db: Db) -> None:
    await fill(db, 10)
    await db.tamper("delete from {table} where seq = 5")
    problems = await db.verify()
    assert [(p.kind, p.seq) for p in problems] == [("deleted", 5)]
    assert "between 5 and 5" in problems[0].detail
    await db.tamper("delete from {table} where seq in (1, 2)")
    assert [(p.kind, p.seq) for p in await db.verify()] == [("deleted", 1), ("deleted", 5)]


async def test_a_deleted_tail_is_found_only_with_the_recorded_head(db: Db) -> None:
    await fill(db, 10)
    head = await db.head()
    assert head is not None and head[0] == 10
    await db.tamper("delete from {table} where seq >= 9")
    assert await db.verify() == []  # the chain that remains is consistent: this is why the head is kept elsewhere
    problems = await db.verify(expected_head=head)
    assert [(p.kind, p.seq) for p in problems] == [("truncated", 10)]
    assert "ends at 8" in problems[0].detail
    await db.tamper("truncate {table}")
    assert [(p.kind, p.seq) for p in await db.verify(expected_head=head)] == [("truncated", 10)]


async def test_an_entry_inserted_out_of_band_is_reported(db: Db) -> None:
    await fill(db, 3)
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(sql.SQL(
            "insert into {} (at, actor, org_id, client_id, operation, purpose, outcome, prev_hash, hash)"
            " values (now(), 'x', 'x', 'x', 'case.read', 'x', 'allowed', 'forged', 'forged')").format(db.table))
    assert [(p.kind, p.seq) for p in await db.verify()] == [("altered", 4), ("broken_link", 4)]


# --- no personal data ---------------------------------------------------------------------------


async def test_the_log_holds_identifiers_and_codes_only(db: Db) -> None:
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name = 'audit_log'", (db.schema,))
        columns = {r["column_name"]: r["data_type"] for r in await cur.fetchall()}
    assert set(columns) == {"seq", "at", "actor", "org_id", "client_id", "operation", "case_ids", "field_categories",
                            "purpose", "legal_basis", "outcome", "trace_id", "prev_hash", "hash"}
    assert columns["case_ids"] == "ARRAY"  # uuid[]: a name cannot be stored as a case id
    for name in ("Awa Traoré", "awa traore", "given_name=Awa", "Awa"):
        with pytest.raises(ValueError, match="never personal data"):
            AuditEntry("case.read", [], [name], "case_management", "allowed")
        with pytest.raises(ValueError, match="never personal data"):
            AuditEntry("case.read", [], ["identity"], name, "allowed")
        with pytest.raises(ValueError, match="UUIDs"):
            AuditEntry("case.read", [name], ["identity"], "case_management", "allowed")
    case = uuid.uuid4()
    await db.record(principal(), AuditEntry("case.read", [case], ["identity", "health"], "case_management", "allowed"))
    async with db.pool.connection() as conn:
        cur = await conn.execute(sql.SQL("select t::text as everything from {} t").format(db.table))
        (row,) = await cur.fetchall()
    assert str(case) in row["everything"]
    assert "Awa" not in row["everything"] and "Traor" not in row["everything"]


# --- search -------------------------------------------------------------------------------------


async def test_search_by_case_and_by_organisation_pages_through_everything(db: Db) -> None:
    awa, other = uuid.uuid4(), uuid.uuid4()
    for i in range(7):
        who = principal(("dgme", "unicef", "csref-gao")[i % 3])
        await db.record(who, read_case(awa, other) if i % 2 == 0 else read_case(awa))
        await db.record(who, read_case(uuid.uuid4()))
    async with db.pool.connection() as conn:
        seen, after = [], None
        while True:
            page = await search(conn, db.schema, case_id=str(awa), first=3, after=after)
            assert len(page["nodes"]) <= 3
            seen += page["nodes"]
            after = page["page_info"]["end_cursor"]
            if not page["page_info"]["has_next_page"]:
                break
        assert len(seen) == 7
        assert [n["seq"] for n in seen] == sorted((n["seq"] for n in seen), reverse=True)
        assert all(str(awa) in n["case_ids"] for n in seen)
        assert {n["org_id"] for n in seen} == {"dgme", "unicef", "csref-gao"}
        assert len((await search(conn, db.schema, case_id=other))["nodes"]) == 4

        unicef = await search(conn, db.schema, org_id="unicef", first=2)
        assert [n["org_id"] for n in unicef["nodes"]] == ["unicef", "unicef"]
        assert unicef["page_info"]["has_next_page"]
        rest = await search(conn, db.schema, org_id="unicef", first=100, after=unicef["page_info"]["end_cursor"])
        assert len(rest["nodes"]) == 2 and not rest["page_info"]["has_next_page"]
        assert {n["seq"] for n in rest["nodes"]}.isdisjoint(n["seq"] for n in unicef["nodes"])

        both = await search(conn, db.schema, case_id=awa, org_id="dgme")
        assert len(both["nodes"]) == 3
        last = seen[0]["at"]
        assert (await search(conn, db.schema, since=datetime.fromisoformat(last)))["nodes"][-1]["seq"] >= seen[0]["seq"]
        assert len((await search(conn, db.schema, actor="dgme-demo"))["nodes"]) == 6
        assert (await search(conn, db.schema, case_id=uuid.uuid4())) == {
            "nodes": [], "page_info": {"has_next_page": False, "end_cursor": None}}
        with pytest.raises(BadInput) as bad:
            await search(conn, db.schema, case_id="Awa")
        assert bad.value.field == "case_id"
        with pytest.raises(BadInput):
            await search(conn, db.schema, after="not-a-cursor")
        with pytest.raises(BadInput):
            await search(conn, db.schema, first=0)


# --- endpoints ----------------------------------------------------------------------------------


async def test_endpoints_need_the_audit_scope_and_record_who_looked(db: Db) -> None:
    endpoints = {e.subject: e.handler for e in audit.audit_endpoints(db.schema, "intake", db.pool)}
    assert set(endpoints) == {"svc.intake.audit_search", "svc.intake.audit_verify"}
    case = uuid.uuid4()
    await db.record(principal(), read_case(case))

    intruder = principal("unicef", "cases:read", "referrals:read")
    for subject, payload in (("svc.intake.audit_search", {"case_id": str(case)}), ("svc.intake.audit_verify", {})):
        with pytest.raises(SeginError) as refused:
            await endpoints[subject](intruder, payload)
        assert refused.value.code == "INSUFFICIENT_SCOPE"
    denied = [r for r in await db.rows() if r["outcome"] == "denied"]
    assert [(r["operation"], r["org_id"], r["case_ids"]) for r in denied] == [
        ("audit.search", "unicef", [case]), ("audit.verify", "unicef", [])]

    steward = principal("segin", "audit:read", subject="steward-1")
    page = await endpoints["svc.intake.audit_search"](steward, {"case_id": str(case), "first": 10})
    assert [(n["operation"], n["outcome"]) for n in page["nodes"]] == [
        ("audit.search", "denied"), ("case.read", "allowed")]
    result = await endpoints["svc.intake.audit_verify"](steward, {})
    assert result["ok"] is True and result["problems"] == [] and result["head"]["seq"] == 4
    rows = await db.rows()
    assert [(r["operation"], r["actor"], r["outcome"]) for r in rows[-2:]] == [
        ("audit.search", "steward-1", "allowed"), ("audit.verify", "steward-1", "allowed")]
    assert rows[-2]["case_ids"] == [case]

    await db.tamper("update {table} set purpose = 'other' where seq = 1")
    result = await endpoints["svc.intake.audit_verify"](steward, {"expected_head": {"seq": 99, "hash": "0" * 64}})
    assert result["ok"] is False
    assert [(p["kind"], p["seq"]) for p in result["problems"]] == [("altered", 1), ("truncated", 99)]


# --- the command line ---------------------------------------------------------------------------


def segin_audit(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "kernel.cli", "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_cli_verify_exits_0_on_a_clean_chain_and_1_on_a_tampered_one(db: Db) -> None:
    await fill(db, 5)
    done = await asyncio.to_thread(segin_audit, db.url, "verify", "--schema", db.schema, "--schema", "no_such_schema")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{db.schema}: chain intact" in done.stdout
    assert "no_such_schema: no audit log, skipped" in done.stdout

    head = await asyncio.to_thread(segin_audit, db.url, "head", "--schema", db.schema)
    assert head.returncode == 0
    anchor = head.stdout.strip()
    assert anchor.startswith(f"{db.schema}=5:")

    found = await asyncio.to_thread(segin_audit, db.url, "search", "--org", "dgme", "--schema", db.schema)
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3

    await db.tamper("delete from {table} where seq = 5")
    done = await asyncio.to_thread(segin_audit, db.url, "verify", "--schema", db.schema)
    assert done.returncode == 0, "without the anchor a cut tail cannot be seen"
    done = await asyncio.to_thread(segin_audit, db.url, "verify", "--schema", db.schema, "--expect", anchor)
    assert done.returncode == 1 and "truncated" in done.stdout

    await db.tamper("update {table} set case_ids = array[]::uuid[] where seq = 2")
    done = await asyncio.to_thread(segin_audit, db.url, "verify", "--schema", db.schema)
    assert done.returncode == 1
    assert "altered\tseq 2" in done.stdout


async def test_cli_verify_copes_with_a_database_without_any_audit_log(postgres: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        await conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        done = await asyncio.to_thread(segin_audit, make_conninfo(postgres.url, dbname=name), "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["intake", "referral", "notifications",
                                                                              "followup", "gateway"]
        done = await asyncio.to_thread(segin_audit, make_conninfo(postgres.url, dbname=name), "search", "--case",
                                     str(uuid.uuid4()))
        assert done.returncode == 0 and done.stdout == ""
    finally:
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


async def test_verify_streams_a_large_log_in_order(db: Db) -> None:
    """More entries than one cursor batch (5000), written in one transaction to keep the test fast."""
    async with db.pool.connection() as conn, conn.transaction():
        for _ in range(6_000):
            await record(conn, db.schema, principal(), read_case(uuid.uuid4()))
    assert await db.verify() == []
    await db.tamper("update {table} set actor = 'x' where seq = 5500")
    assert [(p.kind, p.seq) for p in await db.verify()] == [("altered", 5500)]


async def test_a_plain_connection_works_too(db: Db) -> None:
    """kernel.audit sets its own row factory, so callers need not use the pool's dict rows."""
    async with await psycopg.AsyncConnection.connect(db.url) as conn:
        seq = await record(conn, db.schema, principal(), read_case(uuid.uuid4()))
        await conn.commit()
        assert await chain_head(conn, db.schema) == (seq, (await db.rows())[0]["hash"])
        assert await verify(conn, db.schema) == []
        assert [n["seq"] for n in (await search(conn, db.schema, org_id="dgme"))["nodes"]] == [seq]


async def test_a_database_migrated_before_the_audit_log_gets_only_the_audit_log(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Existing schemas keep their "0000_kernel.sql" record: only the new kernel file is applied."""
    schema = f"t_{uuid.uuid4().hex[:8]}"
    empty = tmp_path / "none"
    empty.mkdir()
    try:
        assert await migrate(postgres.url, schema, empty) == ["0000_audit.sql", "0000_kernel.sql",
                                                          "0000_kernel_2_idempotency_subject.sql"]
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop table {}").format(sql.Identifier(schema, "audit_log")))
            await conn.execute(sql.SQL("delete from {} where name = '0000_audit.sql'").format(
                sql.Identifier(schema, "schema_migrations")))
        assert await migrate(postgres.url, schema, empty) == ["0000_audit.sql"]
        assert await migrate(postgres.url, schema, empty) == []
    finally:
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
