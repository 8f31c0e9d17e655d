"""Small-cell suppression resists decoys: an organisation's own registrations never make a cell
appear. IOM holds both `cases:write` and `statistics:read`; AME registers the real people."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, arrival

pytestmark = pytest.mark.e2e

STATISTICS = "query($by: [StatisticsDimension!]!) { statistics(groupBy: $by) { cells { keys count } minimumCell } }"
MONTH, FLAG = "2025-02", "TRAFFICKING_VICTIM"  # a narrow cell no other test touches


def person(**overrides: Any) -> dict[str, Any]:
    return arrival(givenName=f"Kadi{uuid.uuid4().hex[:6]}", estimatedAge=29, arrivalDate=f"{MONTH}-14",
                   vulnerabilities=[FLAG], consent={"given": False}, **overrides)


def cell(api: Api, org: str, by: list[str]) -> int | None:
    body = api.gql(org, STATISTICS, {"by": by})
    assert "errors" not in body, body
    return next((c["count"] for c in body["data"]["statistics"]["cells"] if c["keys"] == [MONTH, FLAG]), None)


def test_decoys_never_reveal_a_real_person_in_a_narrow_cell(api: Api) -> None:
    for _ in range(4):
        api.register("iom", person())  # decoys
    api.register("ame", person())      # one real person IOM may not read
    assert cell(api, "iom", ["MONTH", "VULNERABILITY"]) is None
    # The observatory registered none of them: to it, five people are five people.
    assert cell(api, "cnrm", ["MONTH", "VULNERABILITY"]) == 5

    for _ in range(4):
        api.register("ame", person())  # now five people registered by others than IOM
    assert cell(api, "iom", ["MONTH", "VULNERABILITY"]) == 10  # nine people, rounded
    assert cell(api, "cnrm", ["MONTH", "VULNERABILITY"]) == 10


def test_cells_crossing_three_dimensions_need_ten_people(api: Api) -> None:
    body = api.gql("cnrm", STATISTICS, {"by": ["MONTH", "REGION", "VULNERABILITY"]})
    stats = body["data"]["statistics"]
    assert stats["minimumCell"] == 10
    assert all(c["count"] >= 10 for c in stats["cells"])

