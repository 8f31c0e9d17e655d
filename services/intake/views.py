"""Intake's replies built from its rows: what a caller sees of a case, its sharing record, its export."""

from __future__ import annotations

from typing import Any

from contracts.reference import SensitiveCategory
from contracts.replies import (
    AccessView,
    CaseExport,
    CaseLinkView,
    CaseView,
    ExpectedPersonView,
    ScreeningView,
    SensitiveView,
    SharingView,
)
from services.intake import domain


def sharing_view(row: dict[str, Any]) -> SharingView:
    return SharingView(
        id=str(row["id"]), legal_basis=row["legal_basis"], given=row["given"], purposes=list(row["purposes"]),
        recipient_org_ids=list(row["recipient_org_ids"]), recipient_org_types=list(row["recipient_org_types"]),
        language=row["language"], given_by=row["given_by"], guardian_name=row["guardian_name"],
        justification=row["justification"], recorded_by=row["recorded_by"], recorded_at=row["recorded_at"],
        withdrawn_at=row["withdrawn_at"],
    )


def _case_fields(case: dict[str, Any], visible: frozenset[SensitiveCategory], access: domain.Access,
                 sharing: list[dict[str, Any]] | None) -> dict[str, Any]:
    split = domain.split_vulnerabilities(case["vulnerabilities"], visible)
    return {
        "id": str(case["id"]), "owner_org_id": case["owner_org_id"], "given_name": case["given_name"],
        "family_name": case["family_name"], "sex": case["sex"], "date_of_birth": case["date_of_birth"],
        "estimated_age": case["estimated_age"], "country_returned_from": case["country_returned_from"],
        "arrival_point": case["arrival_point"], "arrival_date": case["arrival_date"],
        "destination_region": case["destination_region"], "phone_numbers": list(case["phone_numbers"]),
        "place_of_origin": case["place_of_origin"], "vulnerabilities": split["vulnerabilities"],
        "sensitive": SensitiveView.model_validate(split["sensitive"]),
        "sharing": [sharing_view(r) for r in sharing] if sharing is not None else None,
        "access": AccessView(purpose=access.purpose, legal_basis=access.legal_basis),
        "created_at": case["created_at"], "version": case["version"],
        "merged_from": [str(m) for m in case.get("merged_from") or []],
    }


def case_view(case: dict[str, Any], visible: frozenset[SensitiveCategory], access: domain.Access,
              sharing: list[dict[str, Any]] | None, links: list[CaseLinkView] | None = None) -> CaseView:
    """What this caller may see of the case: the sensitive categories in ``visible`` (those its
    scopes allow), the sharing record (consents, guardians) only when given (to the owner), and its
    family ``links`` as ``family.links_of`` shows them to this caller."""
    return CaseView(**_case_fields(case, visible, access, sharing), links=links or [])


def case_export(case: dict[str, Any], sharing: list[dict[str, Any]], screening: list[dict[str, Any]],
                access: domain.Access, entry: dict[str, Any] | None = None) -> CaseExport:
    """Everything, unmasked, with the origin of each datum (who registered, who screened, the manifest row)."""
    return CaseExport(**_case_fields(case, frozenset(SensitiveCategory), access, sharing),
                      registered_by=case["registered_by"], screening=[ScreeningView(**row) for row in screening],
                      arrival_group_entry=person_view(entry) if entry else None)


def person_view(row: dict[str, Any]) -> ExpectedPersonView:
    """One person of an arrival group (``intake.expected_people``), for the group's owner or the steward."""
    return ExpectedPersonView(
        id=str(row["id"]), group_id=str(row["group_id"]), source_row=row["source_row"], given_name=row["given_name"],
        family_name=row["family_name"], sex=row["sex"], date_of_birth=row["date_of_birth"],
        estimated_age=row["estimated_age"], phone_numbers=list(row["phone_numbers"]),
        document_number=row["document_number"], place_of_origin=row["place_of_origin"],
        household_ref=row["household_ref"], relationship=row["relationship"],
        destination_region=row["destination_region"], status=row["status"], added_on_arrival=row["added_on_arrival"],
        case_id=str(row["case_id"]) if row["case_id"] else None, checked_in_at=row["checked_in_at"],
        created_at=row["created_at"], erased_at=row.get("erased_at"))
