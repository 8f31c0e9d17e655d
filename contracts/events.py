"""Event payloads. They carry references and routing attributes only, never a dossier:
no names, contact details, documents or narratives. Stream access is limited to platform services.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from contracts.reference import ArrivalPoint, LegalBasis, Priority, ServiceCategory, Vulnerability


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerate new optional fields from newer producers


class ArrivalRegisteredV1(Event):
    """A person was registered at an arrival point."""

    case_id: str
    owner_org_id: str
    arrival_point: ArrivalPoint
    arrival_date: date
    destination_region: str
    is_child: bool
    vulnerabilities: list[Vulnerability]
    consent_given: bool
    consent_recipient_org_ids: list[str]


class ReferralCreatedV1(Event):
    """A referral was opened from one organisation to another for a case."""

    referral_id: str
    case_id: str
    from_org_id: str
    to_org_id: str
    service_category: ServiceCategory
    priority: Priority
    legal_basis: LegalBasis | None
    status: str
    due_at: datetime
    reason_code: str
