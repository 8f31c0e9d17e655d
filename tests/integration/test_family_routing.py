"""A family's referrals reach the same provider where the rules allow, at the service level (real
PostgreSQL, no gateway, no NATS): intake's link events projected, and routing's choice with its reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASES_LINKED, CASES_UNLINKED
from contracts.events import ArrivalRegisteredV1, CasesLinkedV1, CasesUnlinkedV1
from contracts.reference import Relation, Vulnerability
from services.referral import family, rules
from services.referral.rules import DEFAULT_FILE, load_rules
from tests.integration.services import deliver
from tests.integration.test_routing_service import arrival, route, service


@pytest.fixture(autouse=True)
def packaged_rules() -> Iterator[None]:
    rules.install(load_rules(DEFAULT_FILE))
    yield


def linked(child: ArrivalRegisteredV1, mother: ArrivalRegisteredV1, link_id: str | None = None) -> CasesLinkedV1:
    return CasesLinkedV1(link_id=link_id or str(uuid.uuid4()), case_id=child.case_id, linked_case_id=mother.case_id,
                         relation=Relation.CHILD_OF, travelling_together=True)


async def set_capacity(pool: AsyncConnectionPool, service_id: str, available: int) -> None:
    async with pool.connection() as conn:
        await conn.execute("update referral.services set capacity_available = %s where id = %s",
                           (available, service_id))


async def link_rows(pool: AsyncConnectionPool) -> list[tuple[str, bool]]:
    async with pool.connection() as conn:
        cur = await conn.execute("select link_id::text, removed from referral.case_links order by link_id")
        return [(r["link_id"], r["removed"]) for r in await cur.fetchall()]


async def test_a_child_goes_to_the_food_provider_already_serving_her_mother_with_the_reason_shown(
        referral_pool: AsyncConnectionPool) -> None:
    big = await service(referral_pool, "food-big", "FOOD", ["07"], capacity_available=0)
    small = await service(referral_pool, "food-small", "FOOD", ["07"], capacity_available=5)
    mother = arrival(consent_to=("food-big", "food-small"))
    first = await route(referral_pool, mother)
    assert (first["FOOD"]["to_org_id"], first["FOOD"]["provider_reason"]) == ("food-small", "TIE_ORDER")
    await set_capacity(referral_pool, big, 50)  # now the stated order would pick food-big

    child = arrival(consent_to=("food-big", "food-small"), age=7, is_child=True)
    await deliver(referral_pool, family.on_cases_linked, CASES_LINKED, linked(child, mother), child.case_id)
    routed = await route(referral_pool, child)
    assert (routed["FOOD"]["to_org_id"], routed["FOOD"]["status"], routed["FOOD"]["provider_reason"]) == (
        "food-small", "PENDING", "FAMILY")
    assert routed["FOOD"]["service_id"] == small
    # A stranger: the normal rule.
    stranger = await route(referral_pool, arrival(consent_to=("food-big", "food-small")))
    assert (stranger["FOOD"]["to_org_id"], stranger["FOOD"]["provider_reason"]) == ("food-big", "TIE_ORDER")


async def test_a_relative_registered_by_another_organisation_tells_nothing_through_the_choice(
        referral_pool: AsyncConnectionPool) -> None:
    """Had the child gone to her mother's provider with the reason FAMILY, the child's owner would learn
    what the mother, whose case it may not read, is referred for. So only its own cases count."""
    big = await service(referral_pool, "psy-big", "MHPSS_COUNSELLING", ["07"], capacity_available=0)
    await service(referral_pool, "psy-small", "MHPSS_COUNSELLING", ["07"], capacity_available=5)
    mother = arrival(Vulnerability.MENTAL_HEALTH_NEEDS, owner="unhcr", consent_to=("psy-big", "psy-small"))
    first = await route(referral_pool, mother)
    assert first["MHPSS_COUNSELLING"]["to_org_id"] == "psy-small"
    await set_capacity(referral_pool, big, 50)
    child = arrival(Vulnerability.MENTAL_HEALTH_NEEDS, consent_to=("psy-big", "psy-small"), age=7, is_child=True)
    assert child.owner_org_id != mother.owner_org_id
    await deliver(referral_pool, family.on_cases_linked, CASES_LINKED, linked(child, mother), child.case_id)
    routed = await route(referral_pool, child)
    assert (routed["MHPSS_COUNSELLING"]["to_org_id"], routed["MHPSS_COUNSELLING"]["provider_reason"]) == (
        "psy-big", "TIE_ORDER")


async def test_a_family_member_whose_consent_does_not_cover_the_provider_is_routed_by_the_normal_rule(
        referral_pool: AsyncConnectionPool) -> None:
    big = await service(referral_pool, "food-big", "FOOD", ["07"], capacity_available=0)
    await service(referral_pool, "food-small", "FOOD", ["07"], capacity_available=5)
    mother = arrival(consent_to=("food-small",))
    await route(referral_pool, mother)
    await set_capacity(referral_pool, big, 50)
    child = arrival(consent_to=("food-big",), age=7, is_child=True)
    await deliver(referral_pool, family.on_cases_linked, CASES_LINKED, linked(child, mother), child.case_id)
    routed = await route(referral_pool, child)
    assert (routed["FOOD"]["to_org_id"], routed["FOOD"]["provider_reason"]) == ("food-big", "TIE_ORDER")


async def test_links_are_projected_once_and_an_unlink_delivered_first_is_never_undone(
        referral_pool: AsyncConnectionPool) -> None:
    mother, child = arrival(), arrival(age=7, is_child=True)
    link = linked(child, mother)
    for _ in range(2):
        await deliver(referral_pool, family.on_cases_linked, CASES_LINKED, link, child.case_id)
    assert await link_rows(referral_pool) == [(link.link_id, False)]
    await deliver(referral_pool, family.on_cases_unlinked, CASES_UNLINKED, CasesUnlinkedV1(**link.model_dump()),
                  child.case_id)
    assert await link_rows(referral_pool) == [(link.link_id, True)]
    # Another link, its removal delivered before it: the late link leaves it removed.
    late = linked(arrival(), mother)
    await deliver(referral_pool, family.on_cases_unlinked, CASES_UNLINKED, CasesUnlinkedV1(**late.model_dump()),
                  late.case_id)
    await deliver(referral_pool, family.on_cases_linked, CASES_LINKED, late, late.case_id)
    assert sorted(await link_rows(referral_pool)) == sorted([(link.link_id, True), (late.link_id, True)])
