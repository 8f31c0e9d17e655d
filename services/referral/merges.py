"""People already known in the referral service (decision records 0022 and 0025): intake's merges projected
from its events (``kernel.merges``, ``referral.case_merges``). A case's referrals include those of the
registrations merged into it, and a correction of the survivor does not refer the person again for a need
they already cover."""

from __future__ import annotations

import uuid

from contracts.events import CasesMergedV1, MergeUndoneV1
from kernel import merges as kernel_merges
from kernel.db import Connection
from kernel.events import CloudEvent
from services.referral.store import SCHEMA


async def on_cases_merged(conn: Connection, event: CloudEvent) -> None:
    await kernel_merges.record(conn, SCHEMA, CasesMergedV1.model_validate(event.data), undone=False)


async def on_merge_undone(conn: Connection, event: CloudEvent) -> None:
    await kernel_merges.record(conn, SCHEMA, MergeUndoneV1.model_validate(event.data), undone=True)


async def one_person(conn: Connection, case_id: uuid.UUID) -> list[uuid.UUID]:
    """The case and every registration merged into it (``kernel.merges.one_person``), the case first."""
    return await kernel_merges.one_person(conn, SCHEMA, case_id)
