"""What every resolver is given, and how service refusals become GraphQL errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from nats.aio.client import Client as Nats
from pydantic import ValidationError
from strawberry.fastapi import BaseContext

from gateway.registry import Registry
from gateway.service_tokens import ServiceTokens
from kernel import rpc
from kernel.errors import SeginError, field_problems
from kernel.tokens import Principal


@dataclass
class Context(BaseContext):
    principal: Principal
    nats: Nats
    registry: Registry
    service_tokens: ServiceTokens
    timeout: float
    max_calls: int  # GraphQLLimits.max_service_calls
    calls: int = field(default=0, init=False)

    def calls_left(self) -> int:
        return self.max_calls - self.calls

    async def ask(self, subject: str, payload: dict[str, Any], *, cost: int = 1) -> Any:
        """Call a service as the caller: the service decides access itself.

        The service gets an internal token for it alone, never the caller's API token
        (``gateway/service_tokens.py``): whoever reads that service's requests on NATS cannot
        use it at the public API or at another service. The request's call budget is checked
        here too, for what the document's static count (``gateway/limits.py``) cannot see; a call
        weighing more than one (``cost``, as ``limits.SERVICE_CALLS`` weighs its field) uses as many.
        """
        if self.calls + cost > self.max_calls:
            raise GraphQLError(f"This request has used its {self.max_calls} service calls "
                               "(SEGIN_GRAPHQL_MAX_SERVICE_CALLS).",
                               extensions={"code": "QUERY_TOO_COMPLEX", "limit": "max_service_calls"})
        self.calls += cost
        try:
            token = self.service_tokens.for_subject(self.principal, subject)
            return await rpc.call(self.nats, subject, payload, token, timeout=self.timeout)
        except SeginError as exc:
            raise as_graphql_error(exc) from None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def field_path(field: str | None, prefix: str = "") -> str | None:
    """A service's field path in the API's spelling (``arrival.estimated_age`` → ``arrival.estimatedAge``),
    under ``prefix`` when given."""
    return field and ".".join([p for p in [prefix, *map(camel, field.split("."))] if p])


def as_graphql_error(exc: SeginError, prefix: str = "") -> GraphQLError:
    extensions: dict[str, Any] = {"code": exc.code, "field": field_path(exc.field, prefix)}
    if exc.problems:  # every problem a service found, each naming its field (as input_error does)
        extensions["problems"] = [{**p, "field": field_path(p.get("field"), prefix)} for p in exc.problems]
    for key, value in exc.details.items():  # e.g. a CONFLICT's currentVersion and changedFields
        if key.endswith("_fields") and isinstance(value, list):  # field paths: in the API's spelling too
            value = [field_path(str(f)) for f in value]
        extensions.setdefault(camel(key), value)
    return GraphQLError(exc.message, extensions=extensions)


def input_error(error: ValidationError, prefix: str) -> GraphQLError:
    """One error naming the first bad field, with every problem listed in ``extensions.problems``."""
    problems = [
        {"field": ".".join(filter(None, [prefix, *map(camel, p.field.split("."))])) if p.field != "input"
         else prefix,
         "message": p.message}
        for p in field_problems(error)
    ]
    first = problems[0]
    return GraphQLError(f"{first['field']}: {first['message']}",
                        extensions={"code": "BAD_USER_INPUT", "field": first["field"], "problems": problems})


def restricted(scope: str) -> GraphQLError:
    """A sensitive field the token may not see: it resolves to null with this error."""
    return GraphQLError(f"Restricted: this field needs the '{scope}' scope.",
                        extensions={"code": "RESTRICTED", "scope": scope})
