"""Notifications' replies built from its rows."""

from __future__ import annotations

from typing import Any

from contracts.replies import NotificationExport, NotificationView


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "kind": row["kind"], "priority": row["priority"], "title_fr": row["title_fr"],
        "title_en": row["title_en"], "referral_id": str(row["referral_id"]) if row["referral_id"] else None,
        "case_id": str(row["case_id"]) if row["case_id"] else None, "created_at": row["created_at"],
        "read_at": row["read_at"],
    }


def notification_view(row: dict[str, Any]) -> NotificationView:
    return NotificationView(**_fields(row))


def notification_export(row: dict[str, Any]) -> NotificationExport:
    """A notification in a data-subject export: which organisation was told, and when."""
    return NotificationExport(**_fields(row), org_id=row["org_id"])
