"""The family rules (services/intake/households.py): inverse relations, the flags a link contradicts,
and how far a family is followed. Pure: no database."""

from __future__ import annotations

import pytest

from contracts.reference import INVERSE_RELATIONS, Relation, Vulnerability
from services.intake.households import (
    Link,
    family_walk,
    flag_conflicts,
    inverse,
    link_conflicts,
    seen_from,
)

U, S = Vulnerability.UNACCOMPANIED_CHILD, Vulnerability.SEPARATED_CHILD


def test_every_relation_has_an_inverse_and_reads_back_to_itself() -> None:
    assert set(INVERSE_RELATIONS) == set(Relation)
    for relation in Relation:
        assert inverse(inverse(relation)) == relation
    assert inverse(Relation.CHILD_OF) == Relation.PARENT_OF and inverse(Relation.WARD_OF) == Relation.GUARDIAN_OF
    assert inverse(Relation.SIBLING_OF) == Relation.SIBLING_OF


def test_a_stored_link_reads_as_stored_from_its_own_case_and_inverse_from_the_other() -> None:
    assert seen_from("child", "child", Relation.CHILD_OF) == Relation.CHILD_OF
    assert seen_from("mother", "child", Relation.CHILD_OF) == Relation.PARENT_OF


@pytest.mark.parametrize("relation", [Relation.CHILD_OF, Relation.WARD_OF])
@pytest.mark.parametrize("flag", [U, S])
def test_a_child_travelling_with_a_parent_or_guardian_is_neither_unaccompanied_nor_separated(
        relation: Relation, flag: Vulnerability) -> None:
    [conflict] = flag_conflicts([flag, Vulnerability.PREGNANT], [Link(relation, True, 2)])
    assert (conflict.flag, conflict.link.position) == (flag, 2)
    assert "link 2" in conflict.message() and relation.value in conflict.message() and flag.value in conflict.message()


@pytest.mark.parametrize("link", [
    Link(Relation.CHILD_OF, False),  # her mother is elsewhere: she may well be separated
    Link(Relation.SIBLING_OF, True),  # a sibling may be a child too
    Link(Relation.OTHER_RELATIVE_OF, True),  # with an aunt: what SEPARATED_CHILD describes
    Link(Relation.PARENT_OF, True),  # the flagged person is the parent here
    Link(Relation.GUARDIAN_OF, True),
])
def test_other_links_contradict_no_flag(link: Link) -> None:
    assert flag_conflicts([U, S], [link]) == []


def test_no_flag_no_conflict_and_every_pair_is_reported() -> None:
    assert flag_conflicts([], [Link(Relation.CHILD_OF, True)]) == []
    conflicts = flag_conflicts(["SEPARATED_CHILD", "UNACCOMPANIED_CHILD"],
                               [Link(Relation.CHILD_OF, True, 0), Link(Relation.WARD_OF, True, 1)])
    assert [(c.flag, c.link.position) for c in conflicts] == [(S, 0), (U, 0), (S, 1), (U, 1)]


def test_a_new_link_is_checked_from_both_sides() -> None:
    # The mother (no flags) PARENT_OF a child flagged unaccompanied: the child's side contradicts it.
    [(side, conflict)] = link_conflicts([], [U], Link(Relation.PARENT_OF, True))
    assert side == "linked_case" and conflict.link.relation == Relation.CHILD_OF
    [(side, _)] = link_conflicts([S], [], Link(Relation.CHILD_OF, True))
    assert side == "case"
    assert link_conflicts([U], [U], Link(Relation.SIBLING_OF, True)) == []


def test_a_family_is_walked_breadth_first_within_its_bounds() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"b", "d"}, "d": {"c", "e"}, "e": {"d"}}
    assert family_walk("a", graph, depth=3, limit=30) == (["a", "b", "c", "d"], True)
    assert family_walk("c", graph, depth=3, limit=30) == (["c", "b", "d", "a", "e"], False)
    assert family_walk("a", graph, depth=5, limit=3) == (["a", "b", "c"], True)
    assert family_walk("x", graph) == (["x"], False)
