"""Data files people edit and the platform obeys (routing rules, survey instruments, follow-up
schedules): YAML checked against a JSON Schema, with every problem reported as ``file:line: reason``
so that whoever edited the file can fix it without reading code. A bad file is refused whole.

YAML loaders keep the last of two equal keys silently; here a key given twice is a problem too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

Where = tuple[str | int, ...]
Problem = tuple[int, str]


class DataFileError(Exception):
    """A data file cannot be used: every problem found, each with its line (0: the file as a whole)."""

    def __init__(self, file: Path | str, problems: list[Problem]) -> None:
        self.file, self.problems = str(file), sorted(set(problems))
        super().__init__("\n".join(f"{self.file}:{line}: {reason}" for line, reason in self.problems))

    @property
    def line(self) -> int:
        return self.problems[0][0]

    @property
    def reason(self) -> str:
        return self.problems[0][1]


def read(path: Path, what: str, error: type[DataFileError] = DataFileError) -> str:
    """The file's text, or ``error`` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, [(0, f"cannot read the {what} ({exc.strerror or type(exc).__name__})")]) from None


def load_schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def parse(text: str, file: Path | str, schema: dict[str, Any], error: type[DataFileError] = DataFileError,
          message: Callable[[ValidationError], str] = lambda e: e.message) -> tuple[Any, Lines]:
    """The data of a YAML text valid under ``schema``, with the line of each of its nodes; else
    ``error`` with every problem. ``message`` words a schema error for people (an unknown field is
    worded here, with the line of its key)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(file, [((mark.line + 1) if mark else 0, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise error(file, [(0, f"not valid YAML: {exc}")]) from None
    if root is None:
        raise error(file, [(1, "the file is empty")])
    lines = Lines(root)
    problems = lines.duplicate_keys()
    if problems:
        raise error(file, problems)
    for found in Draft202012Validator(schema).iter_errors(data):
        where = tuple(found.absolute_path)
        if found.validator == "additionalProperties" and isinstance(found.instance, dict):
            extra = sorted(k for k in found.instance if k not in found.schema.get("properties", {}))
            where = (*where, extra[0]) if extra else where
            problems.append((lines.key_line(where), f"{dotted(where)}: unknown field"))
        else:
            problems.append((lines.line(where), f"{dotted(where)}: {message(found)}"))
    if problems:
        raise error(file, problems)
    return data, lines


def dotted(where: Where) -> str:
    """A data path as people read it: ``rules[3].when.age``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


class Lines:
    """Line numbers (1-based) of the nodes of the composed YAML document, by data path."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root

    def _walk(self, where: Where) -> tuple[yaml.Node, yaml.Node | None]:
        node, key_node = self.root, None
        for part in where:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if k.value == part), None)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                break
        return node, key_node

    def line(self, where: Where) -> int:
        return self._walk(where)[0].start_mark.line + 1

    def key_line(self, where: Where) -> int:
        node, key = self._walk(where)
        return (key or node).start_mark.line + 1

    def duplicate_keys(self) -> list[Problem]:
        problems, stack, visited = [], [self.root], set()
        while stack:
            node = stack.pop()
            if id(node) in visited:  # an alias (*bands) is the same node again
                continue
            visited.add(id(node))
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    if key.value in seen:
                        problems.append((key.start_mark.line + 1, f"{key.value}: given twice"))
                    seen.add(key.value)
                    stack.append(value)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
        return problems


# --- versioned files: <id>-<version>.yaml, every version kept -------------------------------------

class Versioned(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=Versioned)


class Versions(Mapping[tuple[str, int], T], Generic[T]):
    """Every version of every file of a kind, by (id, version): a correction is a new version, and
    what was decided under an old one (a score, a schedule) is read with that one."""

    def __init__(self, found: Mapping[tuple[str, int], T]) -> None:
        self._by_key = MappingProxyType(dict(found))

    def __getitem__(self, key: tuple[str, int]) -> T:
        return self._by_key[key]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def latest(self, id: str) -> T:
        """The highest version of ``id``: the one new work uses."""
        versions = [v for (i, v) in self._by_key if i == id]
        if not versions:
            raise KeyError(id)
        return self._by_key[(id, max(versions))]


def load_versions(folder: Path | str, load: Callable[[Path], T],
                  error: type[DataFileError]) -> dict[tuple[str, int], T]:
    """Every ``<id>-<version>.yaml`` of ``folder`` through ``load``; the first bad file raises. The name
    must match the content, so a copy made for a correction cannot keep the old version."""
    found: dict[tuple[str, int], T] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        item = load(path)
        expected = f"{item.id.lower()}-{item.version}.yaml"
        if path.name != expected:
            lines = [n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                     if text.startswith("version:")]
            raise error(path, [(lines[0] if lines else 1, f"version: the file of {item.id} version {item.version} "
                                                          f"must be named {expected}")])
        found[(item.id, item.version)] = item
    return found
