"""The one error shape every Segin service returns: a code, a message, and the field at fault."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


class SeginError(Exception):
    """A refusal the caller can act on. Never carries personal data in its message."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


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


def bad_input_from(error: ValidationError) -> BadInput:
    first = field_problems(error)[0]
    return BadInput(first.message, field=first.field)


def from_dict(data: dict[str, Any]) -> SeginError:
    """Rebuild a remote error on the caller's side, keeping its code."""
    return SeginError(data.get("message", "error"), field=data.get("field"), code=data.get("code", "INTERNAL"))
