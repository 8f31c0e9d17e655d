"""Every refused GraphQL request gets a code (and the field at fault), and logs carry no client text.

- Limits (``gateway/limits.py``) join the validation rules; the token limit goes to the parser.
- Syntax errors get ``GRAPHQL_PARSE_FAILED``, validation errors ``GRAPHQL_VALIDATION_FAILED``.
- Variables are checked against their declared types before execution, so a bad value gets
  ``BAD_USER_INPUT`` and ``field``, its path (``input.sex``), not graphql-core's bare message.
- ``SeginSchema.process_errors`` logs codes, paths and stack frames, never messages: graphql-core
  quotes the literal values of a document (names, screening flags) in its messages.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError, OperationDefinitionNode, type_from_ast
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.pyutils import Undefined
from graphql.type import is_input_type, is_non_null_type
from graphql.utilities import validate_input_value
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from gateway.limits import GraphQLLimits, cost_rule, tokens_error

log = logging.getLogger(__name__)
BAD_INPUT = "BAD_USER_INPUT"


def _path(name: str, path: list[str | int]) -> str:
    return ".".join([name, *map(str, path)])


class RequestGuard(SchemaExtension):
    """Limits, and codes for errors raised before any resolver runs."""

    def __init__(self, limits: GraphQLLimits) -> None:
        super().__init__()
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        context.validation_rules = (*context.validation_rules, cost_rule(self.limits))
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or []:
            if not (error.extensions or {}).get("code") and not tokens_error(error, self.limits):
                error.extensions = {"code": "GRAPHQL_PARSE_FAILED"}

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or []:
            if not (error.extensions or {}).get("code"):
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}

    def on_execute(self) -> Iterator[None]:
        errors = self._variable_errors()
        if errors:
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=errors)
        yield

    def _variable_errors(self) -> list[GraphQLError]:
        context = self.execution_context
        operation = self._operation(context)
        if operation is None:
            return []
        schema = context.schema._schema
        variables = context.variables or {}
        errors: list[GraphQLError] = []
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            type_ = type_from_ast(schema, definition.type)
            if type_ is None or not is_input_type(type_):
                continue  # validation has reported it
            value = variables.get(name, Undefined)
            if value is Undefined:
                if is_non_null_type(type_) and definition.default_value is None:
                    errors.append(GraphQLError(f"Variable '${name}' of required type '{type_}' was not provided.",
                                               extensions={"code": BAD_INPUT, "field": name}))
                continue

            def report(error: GraphQLError, path: list[str | int], name: str = name) -> None:
                field = _path(name, path)
                errors.append(GraphQLError(f"Variable '${name}' has an invalid value at '{field}': {error.message}",
                                           extensions={"code": BAD_INPUT, "field": field}))

            try:
                validate_input_value(value, type_, report)  # type: ignore[arg-type]
            except RecursionError:
                errors.append(GraphQLError(f"Variable '${name}' is nested too deeply.",
                                           extensions={"code": BAD_INPUT, "field": name}))
        return errors[:20]

    @staticmethod
    def _operation(context: ExecutionContext) -> OperationDefinitionNode | None:
        document = context.graphql_document
        if document is None:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if context.operation_name:
            return next((o for o in operations if o.name and o.name.value == context.operation_name), None)
        return operations[0] if len(operations) == 1 else None


class SeginSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log what went wrong as codes and frames: never an error's message, which may quote the document."""
        for error in errors:
            original = error.original_error
            unexpected = original is not None and not isinstance(original, GraphQLError)
            extra = {
                "code": (error.extensions or {}).get("code") or ("INTERNAL" if unexpected else "GRAPHQL_ERROR"),
                "path": ".".join(map(str, error.path or [])) or None,  # names of schema fields only
            }
            if unexpected:
                assert original is not None
                extra["error"] = type(original).__name__
                extra["frames"] = "".join(traceback.format_tb(original.__traceback__))[-4000:]
                log.error("graphql resolver failed", extra=extra)
            else:
                log.info("graphql request refused", extra=extra)

