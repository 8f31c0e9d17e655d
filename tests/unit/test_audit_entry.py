"""kernel.audit without a database: what an entry may hold, and what the hash covers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kernel import audit
from kernel.audit import AuditEntry, entry_hash
from kernel.cli import main
from kernel.errors import BadInput

CASE = uuid.UUID("5f0c6a1e-8d7b-4c1a-9e55-0a1b2c3d4e5f")


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seq": 7, "at": datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=UTC), "actor": "dgme-demo",
        "org_id": "dgme", "client_id": "dgme-demo", "operation": "case.read", "case_ids": [CASE],
        "field_categories": ["identity"], "purpose": "case_management", "legal_basis": None, "outcome": "allowed",
        "trace_id": None, "prev_hash": "0" * 64,
    }
    return {**base, **changes}


def test_an_entry_is_normalised() -> None:
    other = uuid.uuid4()
    entry = AuditEntry("case.read", [str(CASE).upper(), CASE, other], ["health", "identity", "health"],
                       "referral", "restricted", legal_basis="VITAL_INTEREST")
    assert entry.case_ids == tuple(sorted({CASE, other}))
    assert entry.field_categories == ("health", "identity")
    assert AuditEntry("case.list", [], [], "case_management", "allowed").case_ids == ()


@pytest.mark.parametrize("change", [
    {"operation": "Read the case of Awa Traoré"},
    {"operation": "case read"},
    {"purpose": "Awa"},
    {"purpose": "to help Awa"},
    {"purpose": "x" * 65},
    {"field_categories": ["given_name=Awa"]},
    {"field_categories": ["Traoré"]},
    {"field_categories": ["health notes: pregnant"]},
    {"case_ids": ["Awa Traoré"]},
    {"case_ids": [12]},
    {"outcome": "maybe"},
    {"legal_basis": "because she said so"},
    {"legal_basis": "consent"},
])
def test_anything_but_identifiers_and_codes_is_refused(change: dict[str, Any]) -> None:
    fields = {"operation": "case.read", "case_ids": [CASE], "field_categories": ["identity"],
              "purpose": "case_management", "outcome": "allowed", **change}
    with pytest.raises(ValueError):
        AuditEntry(**fields)


def test_the_hash_covers_every_column_and_the_previous_hash() -> None:
    digest = entry_hash(row())
    assert digest == entry_hash(row()) and len(digest) == 64
    changes: list[dict[str, Any]] = [
        {"seq": 8}, {"at": row()["at"] + timedelta(microseconds=1)}, {"actor": "x"}, {"org_id": "x"},
        {"client_id": "x"}, {"operation": "case.write"}, {"case_ids": []}, {"case_ids": [CASE, CASE]},
        {"field_categories": ["identity", "health"]}, {"purpose": "referral"}, {"legal_basis": "CONSENT"},
        {"outcome": "denied"}, {"trace_id": "ab" * 16}, {"prev_hash": "1" * 64},
    ]
    assert all(entry_hash(row(**c)) != digest for c in changes)
    assert entry_hash(row(hash="anything")) == digest


def test_the_hash_does_not_depend_on_the_time_zone_the_database_answers_in() -> None:
    bamako_is_utc = row()["at"]
    in_paris = bamako_is_utc.astimezone(timezone(timedelta(hours=1)))
    assert entry_hash(row(at=in_paris)) == entry_hash(row(at=bamako_is_utc))
    assert entry_hash(row(case_ids=[str(CASE)])) == entry_hash(row())


def test_a_forged_cursor_is_bad_input() -> None:
    assert audit._decode_after(audit._encode_after(42)) == 42
    for cursor in ("not-a-cursor", "", audit._encode_after(42)[:-2] + "xx"):
        with pytest.raises(BadInput) as bad:
            audit._decode_after(cursor)
        assert bad.value.field == "after"


def test_service_principal_is_an_identifier() -> None:
    actor = audit.service_principal("referral")
    assert (actor.subject, actor.org_id, actor.scopes) == ("service:referral", "segin", frozenset())


def test_cli_refuses_a_malformed_expected_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nowhere.invalid/segin")
    with pytest.raises(SystemExit, match="SCHEMA=SEQ:HASH"):
        main(["audit", "verify", "--expect", "intake:12"])
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(SystemExit, match="DATABASE_URL"):
        main(["audit", "verify"])
