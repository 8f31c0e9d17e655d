"""The one error shape every Segin service returns: a code, a message, and the field at fault."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


class SeginError(Exception):
    """A refusal the caller can act on. Never carries personal data in its message."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 problems: list[dict[str, str]] | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # Every problem found when there are several ({"field", "message"} and codes only, e.g. the
        # answers of a survey, each named by its indicator): the caller fixes them all in one go.
        self.problems = problems or []
        # What the caller needs to act beyond the field (a CONFLICT's current version and changed fields):
        # codes, numbers and field names only, never values.
        self.details = details or {}
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field,
                **({"problems": self.problems} if self.problems else {}),
                **({"details": self.details} if self.details else {})}


class BadInput(SeginError):
    code = "BAD_USER_INPUT"


class Unauthenticated(SeginError):
    code = "UNAUTHENTICATED"


class Forbidden(SeginError):
    code = "FORBIDDEN"


class NotFound(SeginError):
    code = "NOT_FOUND"


class Conflict(SeginError):
    code = "CONFLICT"


class Unavailable(SeginError):
    """A peer (NATS, a service) did not answer in time: safe to retry with the same idempotency key."""

    code = "UNAVAILABLE"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


def field_problems(error: ValidationError) -> list[FieldProblem]:
    """Turn pydantic's errors into (dotted field path, message) pairs, without echoing input values."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "input"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(field=path, message=message))
    return problems


def bad_input_from(error: ValidationError, prefix: str = "") -> BadInput:
    """BAD_USER_INPUT naming the first bad field, with every problem listed; fields under ``prefix`` if given
    (a check-in's ``input``, a sync item's ``arrival``)."""
    problems = [{"field": ".".join(filter(None, [prefix, p.field])), "message": p.message}
                for p in field_problems(error)]
    return BadInput(problems[0]["message"], field=problems[0]["field"], problems=problems)


def parse_id(value: str, field: str, *, not_found: str | None = None) -> uuid.UUID:
    """An identifier from a request: BAD_USER_INPUT naming the field, or NOT_FOUND with
    ``not_found`` where a malformed id should answer like an unknown one."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        if not_found:
            raise NotFound(not_found, field=field) from None
        raise BadInput("Not a valid identifier.", field=field) from None


def from_dict(data: dict[str, Any]) -> SeginError:
    """Rebuild a remote error on the caller's side, keeping its code."""
    return SeginError(data.get("message", "error"), field=data.get("field"), code=data.get("code", "INTERNAL"),
                      problems=[p for p in data.get("problems") or [] if isinstance(p, dict)],
                      details=data["details"] if isinstance(data.get("details"), dict) else None)
