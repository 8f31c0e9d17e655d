"""What one request to the public edge may cost, checked before anything expensive happens.

Order of the checks: the body's size while it is received (before any parsing), the JSON body's
nesting, the document's tokens (graphql-core stops lexing at the limit), then one walk of the
parsed operation for its depth, aliases and the service calls it would make. A refused request
has called no service. The per-request call budget is also kept at run time (``Context.ask``), for
what the static count cannot see (lists of objects whose fields call services).
"""

from __future__ import annotations

import functools

import json
import os
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    is_interface_type,
    is_object_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.fastapi import GraphQLRouter

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
TOO_LARGE = "REQUEST_TOO_LARGE"

# A call whose work grows with the whole network, not with one page: overdueCounts counts over every
# referral of the caller's organisation (the coordinator's, of every organisation). It weighs as
# this many calls, statically and at run time (``Context.ask``), so aliasing it cannot multiply it.
OVERDUE_COUNTS_COST = 5
# A plan save rewrites the whole plan (up to 30 goals of 30 actions) and answers it whole; mutations
# run one after the other, so aliases with versions v, v+1, … would each rewrite it. Weighed so that
# one request holds a few at most.
SAVE_PLAN_COST = 10
# Follow-up statistics read every case and every contact and compute each case's standing in the
# service's event loop (about 3 s for 100,000 cases on a loaded 2-core machine): aliased 30 times, one
# request held the follow-up service for minutes. Weighed so that one request holds two at most.
FOLLOWUP_STATISTICS_COST = 25
# A batch of offline commands applies up to 100 registrations and corrections in one call: aliased, one
# request would hold intake for long. Weighed so that one request holds a few batches at most.
SYNC_COST = 10

# Fields whose resolver asks a service, and how many calls one occurrence makes. The DSAR export
# pages through audit trails with what is left of the budget (and says when it stopped short).
SERVICE_CALLS: dict[str, int] = {
    "Query.case": 1, "Query.incomingReferrals": 1, "Query.notifications": 1, "Query.statistics": 1,
    "Query.auditTrail": 1, "Query.subjectAccessRequest": 8, "Case.referrals": 1,
    "Query.followupCase": 1, "Query.plansMissing": 1, "Query.surveyInstrument": 1,
    "Query.followupStatistics": FOLLOWUP_STATISTICS_COST,
    "Query.followupsDue": 1, "Query.followupsOverdue": 1, "Query.unreachableCases": 1,
    "Query.outgoingReferrals": 1, "Query.overdueCounts": OVERDUE_COUNTS_COST, "Mutation.referCase": 1,
    **{f"Mutation.{name}": 1 for name in (
        "registerArrival", "recordConsent", "withdrawConsent", "recordLegalBasis", "acceptReferral",
        "rejectReferral", "completeReferral", "revokeReferral", "markNotificationRead",
        "assignCaseManagement", "updatePlanAction", "closeCase", "reopenCase", "recordSurvey", "logContact")},
    "Mutation.savePlan": SAVE_PLAN_COST,
    "Query.offlineSubmissions": 1, "Mutation.updateCase": 1, "Mutation.syncOffline": SYNC_COST,
    "Query.family": 1, "Mutation.linkCases": 1, "Mutation.unlinkCases": 1,  # families (decision record 0023)
}
# People already known (decision record 0022): one call each.
SERVICE_CALLS.update({name: 1 for name in (
    "Query.matchCandidates", "Case.matchCandidates", "Query.possibleDuplicates", "Mutation.mergeCases",
    "Mutation.undoMerge", "Mutation.decidePossibleDuplicate")})
# Reception of groups (issue 10): one intake call each.
SERVICE_CALLS.update({f"{root}.{name}": 1 for root, names in (
    ("Query", ("arrivalGroup", "arrivalGroups")),
    ("Mutation", ("createArrivalGroup", "uploadManifest", "checkIn", "closeArrivalGroup"))) for name in names})


@dataclass(frozen=True)
class GraphQLLimits:
    """Named limits, each overridable by its ``SEGIN_GRAPHQL_*`` variable."""

    max_body_bytes: int = 512 * 1024
    max_json_depth: int = 32
    max_tokens: int = 5000
    max_depth: int = 10
    max_aliases: int = 30
    max_service_calls: int = 50
    document_cache: int = 500  # parsed documents kept (and persisted queries known) per process

    @classmethod
    def from_env(cls) -> "GraphQLLimits":
        env = {
            "max_body_bytes": "SEGIN_GRAPHQL_MAX_BODY_BYTES", "max_json_depth": "SEGIN_GRAPHQL_MAX_JSON_DEPTH",
            "max_tokens": "SEGIN_GRAPHQL_MAX_TOKENS", "max_depth": "SEGIN_GRAPHQL_MAX_DEPTH",
            "max_aliases": "SEGIN_GRAPHQL_MAX_ALIASES", "max_service_calls": "SEGIN_GRAPHQL_MAX_SERVICE_CALLS",
            "document_cache": "SEGIN_GRAPHQL_DOCUMENT_CACHE",
        }
        return cls(**{name: int(os.environ[var]) for name, var in env.items() if os.environ.get(var)})


def too_complex(message: str, limit: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX, "limit": limit})


# --- the body ------------------------------------------------------------------------------------

class BodyLimitMiddleware:
    """Refuse a body over the limit with 413, counting what arrives (a chunked body has no length).

    The body is buffered (up to the limit) and replayed to the application, so nothing downstream
    ever starts parsing a body that turns out too large.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"errors": [{
            "message": f"The request body is larger than {self.max_bytes} bytes (SEGIN_GRAPHQL_MAX_BODY_BYTES).",
            "extensions": {"code": TOO_LARGE, "limit": "max_body_bytes"}}]}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class LimitedGraphQLRouter(GraphQLRouter):
    """Strawberry's router with JSON bodies (and GET ``variables``) refused when nested too deeply.

    A GET with no ``query`` but a persisted query's hash (``gateway/documents.py``) is a GraphQL
    request, not a browser asking for an IDE (which is not served).
    """

    max_json_depth = GraphQLLimits.max_json_depth

    def should_render_graphql_ide(self, request: Any) -> bool:
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)

    def decode_json(self, data: str | bytes) -> object:
        too_deep = HTTPException(400, f"The JSON body is nested more than {self.max_json_depth} levels deep.")
        try:
            value = json.loads(data)
        except RecursionError:
            raise too_deep from None
        if json_depth(value) > self.max_json_depth:
            raise too_deep
        return value


# --- the document --------------------------------------------------------------------------------

@dataclass
class _Cost:
    depth: int = 0
    aliases: int = 0
    calls: int = 0

    def add(self, other: "_Cost", depth_offset: int = 0) -> None:
        self.depth = max(self.depth, other.depth + depth_offset)
        self.aliases += other.aliases
        self.calls += other.calls


class _Walker:
    """Depth, aliases and service calls of an operation, fragments expanded (each measured once)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema, self.fragments = schema, fragments
        self._measured: dict[str, _Cost] = {}
        self._visiting: set[str] = set()

    def selections(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None) -> _Cost:
        cost = _Cost()
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                cost.add(self.field(node, parent))
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition and self.schema.get_type(node.type_condition.name.value)
                cost.add(self.selections(node.selection_set, condition or parent))
            elif isinstance(node, FragmentSpreadNode):
                cost.add(self.fragment(node.name.value))
        return cost

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> _Cost:
        name = node.name.value
        definition = None
        if name == "__schema":
            definition = SchemaMetaFieldDef
        elif name == "__type":
            definition = TypeMetaFieldDef
        elif parent is not None and (is_object_type(parent) or is_interface_type(parent)):
            definition = parent.fields.get(name)  # type: ignore[union-attr]
        child_type = get_named_type(definition.type) if definition else None
        cost = _Cost()
        cost.add(self.selections(node.selection_set, child_type), depth_offset=1)
        cost.depth = max(cost.depth, 1)
        cost.aliases += 1 if node.alias else 0
        cost.calls += SERVICE_CALLS.get(f"{parent.name}.{name}", 0) if parent else 0
        return cost

    def fragment(self, name: str) -> _Cost:
        if name in self._measured:
            return self._measured[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._visiting:  # unknown or cyclic: other rules report it
            return _Cost()
        self._visiting.add(name)
        cost = self.selections(fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value))
        self._visiting.discard(name)
        self._measured[name] = cost
        return cost


@functools.cache  # one rule class per set of limits, not one per request
def cost_rule(limits: GraphQLLimits) -> type[ValidationRule]:
    class CostRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            walker = _Walker(context.schema, fragments)
            for operation in document.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    root = context.schema.get_root_type(operation.operation)
                    self._check(walker.selections(operation.selection_set, root))

        def _check(self, cost: _Cost) -> None:
            if cost.depth > limits.max_depth:
                self.report_error(too_complex(
                    f"The document is {cost.depth} fields deep; the limit is {limits.max_depth} "
                    "(SEGIN_GRAPHQL_MAX_DEPTH).", "max_depth"))
            if cost.aliases > limits.max_aliases:
                self.report_error(too_complex(
                    f"The document uses {cost.aliases} aliases; the limit is {limits.max_aliases} "
                    "(SEGIN_GRAPHQL_MAX_ALIASES).", "max_aliases"))
            if cost.calls > limits.max_service_calls:
                self.report_error(too_complex(
                    f"The document would make {cost.calls} service calls; the limit is "
                    f"{limits.max_service_calls} per request (SEGIN_GRAPHQL_MAX_SERVICE_CALLS).",
                    "max_service_calls"))

    return CostRule


def tokens_error(error: GraphQLError, limits: GraphQLLimits) -> bool:
    """Relabel graphql-core's 'more than N tokens' syntax error as the limit it is."""
    if "tokens. Parsing aborted" not in error.message:
        return False
    error.message = (f"The document has more than {limits.max_tokens} tokens "
                     "(SEGIN_GRAPHQL_MAX_TOKENS).")
    error.extensions = {"code": TOO_COMPLEX, "limit": "max_tokens"}
    return True

