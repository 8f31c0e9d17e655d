"""Each GraphQL document is parsed and validated once per process, and may be sent as its hash alone.

Field clients send the same few documents all day. Parsing and validating one (the cost limits of
``gateway/limits.py`` are validation rules, so they run then too) took about half of the gateway's
event-loop time, so a bounded LRU keyed by the sha256 of the text keeps each parsed document and
whether it passed validation. Only that is kept: execution, and so every access decision, is made
afresh for each request with the caller's token. Validation depends on the document, the schema
and the limits alone, all fixed for the life of the process.

Automatic persisted queries (Apollo's APQ protocol): a request with
``extensions.persistedQuery = {"version": 1, "sha256Hash": …}`` and no ``query`` is served from
this cache; a hash the process does not know is answered ``PERSISTED_QUERY_NOT_FOUND``, and the
client sends the document with its hash, which is checked (``PERSISTED_QUERY_HASH_MISMATCH``)
and kept. Each process has its own cache: a replica that does not know a hash asks for the
document once. Documents longer than ``CACHEABLE_CHARS`` are never kept (they are rare, and their
parsed form would weigh on a bounded cache): they must always be sent whole.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
CACHEABLE_CHARS = 16_000
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_FIELD = "extensions.persistedQuery"
_PLACEHOLDER = parse("{ __typename }")  # stands in for the document of a refused persisted query


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Entry:
    text: str
    document: DocumentNode
    valid: bool = False  # passed validation (errors are never cached: a refused document is re-checked)


class Documents:
    """A bounded LRU of parsed documents by sha256 (used from the event loop only, so no lock)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Entry | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
        return entry

    def put(self, digest: str, text: str, document: DocumentNode) -> None:
        if self.max_entries <= 0 or len(text) > CACHEABLE_CHARS:
            return
        self._entries[digest] = Entry(text, document)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _refusal(message: str, code: str, field: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, "field": field})


def _persisted_query(extensions: dict[str, Any] | None) -> tuple[str | None, GraphQLError | None]:
    """The requested hash (lower case), or the refusal of a malformed ``persistedQuery``."""
    pq = (extensions or {}).get("persistedQuery")
    if pq is None:
        return None, None
    if not isinstance(pq, dict) or pq.get("version") != 1:
        return None, _refusal("Only version 1 of persisted queries is supported.", "BAD_REQUEST", f"{_FIELD}.version")
    digest = pq.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return None, _refusal("sha256Hash must be 64 hexadecimal characters.", "BAD_REQUEST",
                              f"{_FIELD}.sha256Hash")
    return digest.lower(), None


class DocumentCache(SchemaExtension):
    """Serves parsed, validated documents from ``Documents``, and persisted queries by their hash."""

    def __init__(self, documents: Documents) -> None:
        super().__init__()
        self.documents = documents
        self._digest: str | None = None
        self._entry: Entry | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        digest, error = _persisted_query(context.operation_extensions)
        if error is None and digest is not None:
            if context.query:
                if sha256(context.query) != digest:
                    error = _refusal("The document does not match its sha256Hash.", HASH_MISMATCH,
                                     f"{_FIELD}.sha256Hash")
            elif (entry := self.documents.get(digest)) is not None:
                context.query = entry.text
            else:
                error = _refusal("PersistedQueryNotFound", NOT_FOUND, f"{_FIELD}.sha256Hash")
        if error is not None:  # answered as a request error: nothing parsed, validated or executed
            context.graphql_document, context.pre_execution_errors = _PLACEHOLDER, [error]
        elif context.query:
            self._digest = digest or sha256(context.query)
            self._entry = self.documents.get(self._digest)
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if self._entry is not None:
            context.graphql_document = self._entry.document
        yield
        if self._digest and self._entry is None and context.graphql_document is not None \
                and not context.pre_execution_errors:
            self.documents.put(self._digest, context.query or "", context.graphql_document)
            self._entry = self.documents.get(self._digest)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self._entry is not None and self._entry.valid and context.pre_execution_errors is None:
            context.pre_execution_errors = []  # validated before: strawberry skips validation
        yield
        if self._entry is not None and context.pre_execution_errors == []:
            self._entry.valid = True
