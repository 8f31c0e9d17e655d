"""The referral service's projection of intake's family links (``referral.case_links``, migration 0012) and
what routing reads from it: which services already serve a case's family."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from contracts.events import CasesLinkedV1
from contracts.reference import ProviderReason, ReferralStatus, ServiceCategory
from kernel.db import Connection
from services.referral.domain import PlannedReferral

SERVING = [ReferralStatus.PENDING.value, ReferralStatus.ACCEPTED.value]  # a provider "already serving" the member


async def add_link(conn: Connection, link: CasesLinkedV1) -> None:
    """A link, once (a redelivery changes nothing; a link already removed stays removed)."""
    await conn.execute(
        "insert into referral.case_links (link_id, case_id, linked_case_id, relation, travelling_together)"
        " values (%s, %s, %s, %s, %s) on conflict (link_id) do nothing",
        (uuid.UUID(link.link_id), uuid.UUID(link.case_id), uuid.UUID(link.linked_case_id), link.relation.value,
         link.travelling_together))


async def remove_link(conn: Connection, link: CasesLinkedV1) -> None:
    """A link removed, even before it was known (a tombstone, so its late arrival does not bring it back)."""
    await conn.execute(
        "insert into referral.case_links (link_id, case_id, linked_case_id, relation, travelling_together, removed)"
        " values (%s, %s, %s, %s, %s, true) on conflict (link_id) do update set removed = true, updated_at = now()",
        (uuid.UUID(link.link_id), uuid.UUID(link.case_id), uuid.UUID(link.linked_case_id), link.relation.value,
         link.travelling_together))


async def family_services(conn: Connection, case_id: str | uuid.UUID, owner_org_id: str
                          ) -> dict[ServiceCategory, set[str]]:
    """Per service category, the directory services with an open (PENDING or ACCEPTED) referral for a case
    linked to ``case_id`` (directly, either way round) that ``owner_org_id``, the case's owner, owns too.

    Only its own: the reason FAMILY, shown on the referral, tells which category a relative is referred
    for (counter-trafficking, mental health…); of a case owned elsewhere, the owner may not know that."""
    cur = await conn.execute(
        "select distinct r.service_category, r.service_id from referral.referrals r"
        " where r.status = any(%s) and r.service_id is not null and r.case_owner_org_id = %s and r.case_id in ("
        "  select linked_case_id from referral.case_links where case_id = %s and not removed"
        "  union select case_id from referral.case_links where linked_case_id = %s and not removed)",
        (SERVING, owner_org_id, uuid.UUID(str(case_id)), uuid.UUID(str(case_id))))
    found: dict[ServiceCategory, set[str]] = {}
    for row in await cur.fetchall():
        found.setdefault(ServiceCategory(row["service_category"]), set()).add(str(row["service_id"]))
    return found


async def record_reasons(conn: Connection, inserted: Iterable[tuple[Any, PlannedReferral]]) -> None:
    """Keep why routing chose each referral's provider (shown as the referral's ``providerReason``)."""
    for reason in ProviderReason:
        ids = [referral_id for referral_id, plan in inserted if plan.provider_reason == reason]
        if ids:
            await conn.execute("update referral.referrals set provider_reason = %s where id = any(%s)",
                               (reason.value, ids))
