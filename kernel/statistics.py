"""Small-cell suppression for every statistics answer: one rule, used by intake and follow-up.

Aggregates go to organisations that may not read the records behind them (the ``statistics:read``
scope), so a count must never single out a person. A cell is shown only when it holds at least
``minimum_cell`` people who are not the caller's own (an organisation's own records could be decoys
placed to make a cell appear around one real person), and every shown count is rounded to a
multiple of five so that subtracting two answers is uncertain. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MIN_CELL = 5
MIN_CELL_NARROW = 10  # a cell crossing three dimensions (month × region × vulnerability) is narrow
ROUNDING_BASE = 5

Key = tuple[str, ...]


def minimum_cell(dimensions: int) -> int:
    """The fewest people a shown cell must hold: narrow cells need more."""
    return MIN_CELL_NARROW if dimensions >= 3 else MIN_CELL


def suppress_small_cells(rows: Iterable[tuple[Key, int]], own: Mapping[Key, int] | None = None,
                         minimum: int = MIN_CELL) -> tuple[list[tuple[Key, int]], int]:
    """Keep cells holding at least ``minimum`` people who are not the caller's own, with their count
    rounded to the nearest multiple of five.

    The caller's own records (``own``, per cell) do not count towards the threshold: otherwise it
    could register decoys into a narrow cell and see it appear only when one real person is there.
    Suppression alone can be undone by subtraction (a region's total minus its shown cells);
    rounding every shown count makes such differences uncertain. Others' people and the caller's own
    are rounded apart: rounded together, decoys would move the others' count to a rounding boundary
    (seven shows 5, eight shows 10), and the next real person in the cell would show. Returns the
    cells and how many were suppressed (for tests: an answer never tells it, since one decoy into an
    empty cell would change that number only if the cell already held someone).
    """
    own = own or {}
    kept, suppressed = [], 0
    for keys, count in rows:
        others = count - own.get(keys, 0)
        if others >= minimum:
            kept.append((keys, max(minimum, _rounded(others) + _rounded(own.get(keys, 0)))))
        else:
            suppressed += 1
    return kept, suppressed


def _rounded(count: int) -> int:
    return ROUNDING_BASE * round(count / ROUNDING_BASE)
