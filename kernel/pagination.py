"""Opaque keyset cursors: stable under concurrent inserts, unlike offsets."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date, datetime
from typing import Any

from kernel.errors import BadInput

INVALID_CURSOR = "This cursor is not valid; start again without 'after'."


def encode(values: list[Any]) -> str:
    """An opaque cursor carrying the sort key of the last row shown."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode(cursor: str, length: int) -> list[Any]:
    """The values of a cursor made by ``encode``; BAD_USER_INPUT on ``after`` for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadInput(INVALID_CURSOR, field="after") from exc
    if not isinstance(values, list) or len(values) != length:
        raise BadInput(INVALID_CURSOR, field="after")
    return values


def encode_cursor(created_at: datetime, row_id: Any) -> str:
    return encode([created_at.isoformat(), str(row_id)])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    created_at, row_id = decode(cursor, 2)
    try:
        return datetime.fromisoformat(created_at), str(row_id)
    except (ValueError, TypeError) as exc:
        raise BadInput(INVALID_CURSOR, field="after") from exc


def keyset_query(query: str, params: list[Any], first: int, after: str | None) -> tuple[str, list[Any]]:
    """Append "newest first, after the cursor, one row more than asked" to a ``select … where …``."""
    params = list(params)
    if after:
        created_at, row_id = decode_cursor(after)
        query += " and (created_at, id) < (%s, %s)"
        params += [created_at, _uuid(row_id)]
    return query + " order by created_at desc, id desc limit %s", [*params, first + 1]


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadInput(INVALID_CURSOR, field="after") from exc


def page(rows: list[dict[str, Any]], first: int) -> dict[str, Any]:
    """Rows were fetched with ``limit first + 1``: the extra row only tells there is a next page."""
    nodes = rows[:first]
    end = encode_cursor(nodes[-1]["created_at"], nodes[-1]["id"]) if nodes else None
    return {"nodes": nodes, "page_info": {"has_next_page": len(rows) > first, "end_cursor": end}}


# Work lists ordered by a day (a contact's due date), soonest first: the row's ``sort_on`` and ``id``.

def date_keyset_query(query: str, params: list[Any], first: int, after: str | None) -> tuple[str, list[Any]]:
    """Append "soonest first on (sort_on, id), after the cursor, one row more than asked" to a
    ``select … sort_on, … id … where …`` whose ``sort_on`` is a date."""
    params = list(params)
    if after:
        on, row_id = decode(after, 2)
        try:
            day = date.fromisoformat(on)
        except (ValueError, TypeError) as exc:
            raise BadInput(INVALID_CURSOR, field="after") from exc
        query = f"select * from ({query}) d where (sort_on, id) > (%s, %s)"
        params += [day, _uuid(str(row_id))]
    else:
        query = f"select * from ({query}) d where true"
    return query + " order by sort_on, id limit %s", [*params, first + 1]


def date_page(rows: list[dict[str, Any]], first: int) -> dict[str, Any]:
    """``page`` for rows fetched with ``date_keyset_query``."""
    nodes = rows[:first]
    end = encode([nodes[-1]["sort_on"].isoformat(), str(nodes[-1]["id"])]) if nodes else None
    return {"nodes": nodes, "page_info": {"has_next_page": len(rows) > first, "end_cursor": end}}
