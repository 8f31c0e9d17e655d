"""Family rules, free of I/O: how a link reads from either side, and which screening flags a link
contradicts (decision record 0023).

A link is "this person is <relation> the other" (``contracts.reference.Relation``). The flags
UNACCOMPANIED_CHILD ("travelling without any adult caregiver") and SEPARATED_CHILD ("separated from
parents or usual caregiver") both say the child is without a parent or caregiver, so a child linked
to a parent or guardian travelling with them can carry neither. A sibling, spouse or other relative
travelling along contradicts nothing: a sibling may be a child too, and a child with an aunt is
exactly what SEPARATED_CHILD describes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from contracts.reference import INVERSE_RELATIONS, Relation, Vulnerability

# What the flags mean (DOMAIN.md): without parents or usual caregiver.
WITHOUT_CAREGIVER = frozenset({Vulnerability.UNACCOMPANIED_CHILD, Vulnerability.SEPARATED_CHILD})
# The relations that make this person the child (or ward) of the other: the other is their caregiver.
CARED_FOR_BY = frozenset({Relation.CHILD_OF, Relation.WARD_OF})
FAMILY_DEPTH = 3  # how far a family is followed from a case (a child → mother → her siblings)
FAMILY_MAX_MEMBERS = 30  # a household, not a village: beyond this the answer is truncated


@dataclass(frozen=True)
class Link:
    """A link as seen from one case: what this person is to the other, and whether they travel together."""

    relation: Relation
    travelling_together: bool
    position: int | None = None  # where the link was given (``links.<position>``), for error messages


@dataclass(frozen=True)
class Conflict:
    """A screening flag a link contradicts."""

    flag: Vulnerability
    link: Link

    def message(self, side: str = "") -> str:
        where = f"link {self.link.position}" if self.link.position is not None else "the link"
        return (f"{self.flag.value} contradicts {where} ({side}{self.link.relation.value}, travelling together): "
                "a child travelling with a parent or guardian is neither unaccompanied nor separated; "
                "remove the flag or the link.")


def inverse(relation: Relation) -> Relation:
    """The same link read from the other case (CHILD_OF ↔ PARENT_OF, SIBLING_OF ↔ SIBLING_OF)."""
    return INVERSE_RELATIONS[relation]


def seen_from(case_id: str, link_case_id: str, relation: Relation) -> Relation:
    """A stored link's relation as ``case_id`` sees it: as stored when it is the link's own case, else inverse."""
    return relation if case_id == link_case_id else inverse(relation)


def flag_conflicts(vulnerabilities: Iterable[Vulnerability | str], links: Iterable[Link]) -> list[Conflict]:
    """Every (flag, link) pair where a person's flags say "without parents or caregiver" while one of their
    links says they travel with one (the person is CHILD_OF or WARD_OF the other, travelling together).
    ``links`` are seen from this person's case. Empty: no contradiction. For a case-update command too."""
    flags = sorted({Vulnerability(v) for v in vulnerabilities} & WITHOUT_CAREGIVER)
    return [Conflict(flag, link) for link in links if link.travelling_together and link.relation in CARED_FOR_BY
            for flag in flags]


Flags = Iterable[Vulnerability | str]


def link_conflicts(vulnerabilities: Flags, linked_vulnerabilities: Flags, link: Link) -> list[tuple[str, Conflict]]:
    """A new link between two cases checked from both sides: ``("case", …)`` when the first case's flags
    contradict it, ``("linked_case", …)`` when the linked case's flags contradict its inverse."""
    mine = [("case", c) for c in flag_conflicts(vulnerabilities, [link])]
    other = Link(inverse(link.relation), link.travelling_together, link.position)
    return mine + [("linked_case", c) for c in flag_conflicts(linked_vulnerabilities, [other])]


def family_walk(start: str, neighbours: Mapping[str, Iterable[str]], depth: int = FAMILY_DEPTH,
                limit: int = FAMILY_MAX_MEMBERS, expands: Callable[[str], bool] = lambda _: True
                ) -> tuple[list[str], bool]:
    """The cases reached from ``start`` through links, breadth first, at most ``depth`` links away and
    ``limit`` cases in all (``start`` included); True when some were left out. The walk goes on only from
    the cases ``expands`` names (those the caller may read): a case it may not read is reached, not crossed."""
    seen, frontier, truncated = [start], [start], False
    for _ in range(depth):
        following = []
        for case in frontier:
            if not expands(case):
                continue
            for other in sorted(neighbours.get(case, ())):
                if other in seen:
                    continue
                if len(seen) >= limit:
                    return seen, True
                seen.append(other)
                following.append(other)
        frontier = following
    if any(other not in seen for case in frontier if expands(case) for other in neighbours.get(case, ())):
        truncated = True
    return seen, truncated
