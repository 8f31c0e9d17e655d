"""Intake's replies built from its rows: what a caller sees of a case, its sharing record, its export."""

from __future__ import annotations

from typing import Any

from contracts.reference import SensitiveCategory
from contracts.replies import AccessView, CaseExport, CaseView, ScreeningView, SharingView, SensitiveView
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
              sharing: list[dict[str, Any]] | None) -> CaseView:
    """What this caller may see of the case: the sensitive categories in ``visible`` (those its
    scopes allow), the sharing record (consents, guardians) only when given (to the owner)."""
    return CaseView(**_case_fields(case, visible, access, sharing))


def case_export(case: dict[str, Any], sharing: list[dict[str, Any]], screening: list[dict[str, Any]],
                access: domain.Access) -> CaseExport:
    """Everything, unmasked, with the origin of each datum (who registered, who screened)."""
    return CaseExport(**_case_fields(case, frozenset(SensitiveCategory), access, sharing),
                      registered_by=case["registered_by"], screening=[ScreeningView(**row) for row in screening])
