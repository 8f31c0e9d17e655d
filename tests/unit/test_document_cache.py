"""Documents are parsed and validated once per process; persisted queries follow Apollo's APQ protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from strawberry.extensions import MaskErrors

from gateway.documents import CACHEABLE_CHARS, DocumentCache, Documents, sha256
from gateway.graphql_guard import RequestGuard, SeginSchema
from gateway.limits import GraphQLLimits
from gateway.schema import Mutation, Query, _mask

REGIONS = "{ regions { code } }"


def make_schema(documents: Documents, limits: GraphQLLimits | None = None) -> SeginSchema:
    limits = limits or GraphQLLimits()
    return SeginSchema(query=Query, mutation=Mutation,
                       extensions=[lambda: DocumentCache(documents), lambda: RequestGuard(limits),
                                   lambda: MaskErrors(should_mask_error=_mask)])


def run(schema: SeginSchema, query: str | None, digest: str | None = None, **persisted: Any) -> Any:
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest, **persisted}} if digest else None
    return asyncio.run(schema.execute(query, operation_extensions=extensions))


def codes(result: Any) -> list[tuple[str, str | None]]:
    return [(e.extensions["code"], e.extensions.get("field")) for e in result.errors or []]


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts graphql-core validations (strawberry's ``validate_document``)."""
    calls: list[int] = []
    original = strawberry_schema.validate_document

    def counted(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counted)
    return calls


def test_a_document_is_parsed_and_validated_once_then_served_from_the_cache(validations: list[int]) -> None:
    documents = Documents(10)
    schema = make_schema(documents)
    first = run(schema, REGIONS)
    entry = documents.get(sha256(REGIONS))
    for _ in range(3):
        assert run(schema, REGIONS).data == first.data
    assert first.errors is None and first.data["regions"]
    assert len(validations) == 1
    assert entry is not None and entry.valid and documents.get(sha256(REGIONS)) is entry


def test_an_invalid_document_is_checked_again_every_time(validations: list[int]) -> None:
    schema = make_schema(Documents(10))
    for _ in range(2):
        assert codes(run(schema, "{ regions { nope } }")) == [("GRAPHQL_VALIDATION_FAILED", None)]
    assert len(validations) == 2


def test_an_unknown_hash_alone_is_answered_persisted_query_not_found() -> None:
    result = run(make_schema(Documents(10)), None, sha256(REGIONS))
    assert result.data is None
    assert codes(result) == [("PERSISTED_QUERY_NOT_FOUND", "extensions.persistedQuery.sha256Hash")]
    assert result.errors[0].message == "PersistedQueryNotFound"  # what Apollo clients look for


def test_a_document_sent_with_its_hash_is_then_served_by_the_hash_alone() -> None:
    schema = make_schema(Documents(10))
    registered = run(schema, REGIONS, sha256(REGIONS))
    assert registered.errors is None
    by_hash = run(schema, None, sha256(REGIONS))
    assert by_hash.errors is None and by_hash.data == registered.data
    assert run(schema, None, sha256(REGIONS).upper()).data == registered.data


def test_a_document_with_the_wrong_hash_is_refused_and_not_kept() -> None:
    documents = Documents(10)
    schema = make_schema(documents)
    wrong = sha256("{ me { subject } }")
    assert codes(run(schema, REGIONS, wrong)) == [("PERSISTED_QUERY_HASH_MISMATCH",
                                                   "extensions.persistedQuery.sha256Hash")]
    assert len(documents) == 0
    assert codes(run(schema, None, wrong)) == [("PERSISTED_QUERY_NOT_FOUND", "extensions.persistedQuery.sha256Hash")]


@pytest.mark.parametrize(("persisted", "field"), [
    ({"version": 2, "sha256Hash": "0" * 64}, "extensions.persistedQuery.version"),
    ({"version": 1, "sha256Hash": "not-a-hash"}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1}, "extensions.persistedQuery.sha256Hash"),
    ("yes", "extensions.persistedQuery.version"),
])
def test_a_malformed_persisted_query_is_refused_with_its_field(persisted: Any, field: str) -> None:
    result = asyncio.run(make_schema(Documents(10)).execute(REGIONS, operation_extensions={"persistedQuery": persisted}))
    assert result.data is None and codes(result) == [("BAD_REQUEST", field)]


def test_a_persisted_document_over_a_limit_is_still_refused() -> None:
    schema = make_schema(Documents(10), GraphQLLimits(max_aliases=2))
    document = "{ a: regions { code } b: regions { code } c: regions { code } }"
    assert [c for c, _ in codes(run(schema, document, sha256(document)))] == ["QUERY_TOO_COMPLEX"]
    for _ in range(2):
        result = run(schema, None, sha256(document))
        assert result.data is None and [c for c, _ in codes(result)] == ["QUERY_TOO_COMPLEX"]


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    documents = Documents(2)
    schema = make_schema(documents)
    first, second, third = REGIONS, "{ regions { name } }", "{ regions { code name } }"
    run(schema, first)
    run(schema, second)
    run(schema, first)  # used again: the second is now the oldest
    run(schema, third)
    assert len(documents) == 2
    assert documents.get(sha256(second)) is None
    assert documents.get(sha256(first)) is not None and documents.get(sha256(third)) is not None


def test_a_very_long_document_is_not_kept() -> None:
    documents = Documents(10)
    long_document = "{ regions { code } }" + " " * CACHEABLE_CHARS
    assert run(make_schema(documents), long_document).errors is None
    assert len(documents) == 0
