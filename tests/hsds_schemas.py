"""The official HSDS 3 schemas (tests/fixtures/hsds3, see its README) as validators, for every test
that checks what the directory answers in HSDS: a missing required field, a wrong type, a value
outside an enum or a malformed uuid, e-mail, date-time or URI fails."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

FIXTURES = Path(__file__).parent / "fixtures" / "hsds3"
COMPILED_LENGTH = 114_030  # characters of schema/compiled/service_with_definitions.json at the pinned commit


def _formats() -> FormatChecker:
    """jsonschema's checkers (uuid, email…) plus date-time and uri, whose checkers need optional packages."""
    checker = Draft202012Validator.FORMAT_CHECKER

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        return not isinstance(value, str) or ("T" in value and datetime.fromisoformat(value).tzinfo is not None)

    @checker.checks("uri", raises=ValueError)
    def uri(value: object) -> bool:
        return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)

    return checker


@cache
def compiled() -> dict[str, Any]:
    text = (FIXTURES / "service_with_definitions.json").read_text(encoding="utf-8")
    assert len(text) == COMPILED_LENGTH, "the HSDS fixture is not the pinned official file"
    return json.loads(text)


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = compiled()
    if kind == "organization":
        schema = {"$ref": "#/definitions/organization", "definitions": schema["definitions"]}
    elif kind == "page":
        schema = json.loads((FIXTURES / "page.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_formats())


def problems(kind: str, document: Any) -> list[str]:
    """Every way ``document`` breaks the HSDS schema of ``kind`` (service | organization | page), as readable lines."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in _validator(kind).iter_errors(document)]


def page_problems(page: Any, item_kind: str) -> list[str]:
    """An HSDS API page: its paging fields (all present, typed) and each entry of ``contents``."""
    fields = list(_validator("page").schema["properties"])
    found = problems("page", page) + [f"(root): '{f}' is missing" for f in fields if f not in page]
    if not isinstance(page.get("contents"), list):
        return [*found, "contents: not an array"]
    for n, item in enumerate(page["contents"]):
        found += [f"contents/{n}/{p}" for p in problems(item_kind, item)]
    return found
