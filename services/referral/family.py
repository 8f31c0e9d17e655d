"""Families in the referral service (decision record 0023): intake's family links projected from its
events (ids and the relation only), so that routing sends a family to the provider already serving one
of its members where the rules allow (``domain.choose_for_family``)."""

from __future__ import annotations

from contracts.events import CasesLinkedV1, CasesUnlinkedV1
from kernel.db import Connection
from kernel.events import CloudEvent
from services.referral import family_store


async def on_cases_linked(conn: Connection, event: CloudEvent) -> None:
    await family_store.add_link(conn, CasesLinkedV1.model_validate(event.data))


async def on_cases_unlinked(conn: Connection, event: CloudEvent) -> None:
    await family_store.remove_link(conn, CasesUnlinkedV1.model_validate(event.data))
