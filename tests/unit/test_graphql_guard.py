"""The gateway's GraphQL guard without any server: limits and error codes come before any resolver."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from gateway.limits import GraphQLLimits, json_depth
from gateway.schema import schema
from kernel.logs import setup_logging


def run(document: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    result = asyncio.run(schema.execute(document, variable_values=variables))
    return [{"message": e.message, **(e.extensions or {})} for e in result.errors or []]


def test_fragment_bombs_are_measured_once_per_fragment() -> None:
    """Each fragment spreads the previous one twice: 2^40 fields if expanded naively."""
    fragments = ["fragment F0 on Query { c: case(id: \"x\") { id } }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 41)]
    errors = run("{ ...F40 } " + " ".join(fragments))
    assert any(e["code"] == "QUERY_TOO_COMPLEX" and e["limit"] == "max_service_calls" for e in errors), errors


def test_each_limit_names_itself() -> None:
    limits = GraphQLLimits()
    aliases = "{ " + " ".join(f"r{i}: regions {{ code }}" for i in range(limits.max_aliases + 1)) + " }"
    assert run(aliases)[0]["limit"] == "max_aliases"
    assert run("{ me { " + "subject " * (limits.max_tokens + 1) + "} }")[0]["limit"] == "max_tokens"


def test_syntax_and_validation_errors_have_codes() -> None:
    assert run("{ regions { code }")[0]["code"] == "GRAPHQL_PARSE_FAILED"
    assert run("{ nope }")[0]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_variable_errors_name_the_variable_path() -> None:
    errors = run("query($n: Int!, $g: [StatisticsDimension!]!) { notifications(first: $n) { nodes { id } } "
                 "statistics(groupBy: $g) { minimumCell } }", {"n": "x", "g": ["SEX", "NOPE"]})
    fields = {e["field"] for e in errors if e["code"] == "BAD_USER_INPUT"}
    assert {"n", "g.1"} <= fields, errors


def test_json_depth_counts_without_recursion() -> None:
    assert json_depth({"a": [1, {"b": []}]}) == 4
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert json_depth(nested) == 100_001


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGIN_GRAPHQL_MAX_ALIASES", "7")
    assert GraphQLLimits.from_env().max_aliases == 7


def test_logs_carry_no_exception_message_and_no_library_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("test")
    name = "Aminata Coulibaly"  # the traceback shows the raising line, so the value comes from elsewhere
    try:
        raise ValueError(name)
    except ValueError:
        logging.getLogger("strawberry.execution").exception("failed %s", "Aminata Coulibaly")
        logging.getLogger("uvicorn.error").error(ValueError("Aminata Coulibaly"))
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert lines and "Aminata" not in json.dumps(lines)
    assert "ValueError" in lines[0]["exc_info"] and "test_graphql_guard.py" in lines[0]["exc_info"]
    assert lines[-1]["message"] == "Started server process [42]"
    logging.getLogger().handlers[:] = [logging.StreamHandler(io.StringIO())]
