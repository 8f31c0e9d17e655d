"""Write the public GraphQL schema to contracts/schema.graphql.

``python -m gateway.export_sdl`` rewrites it; ``--check`` exits 1 when the committed file differs.
Client teams and reviewers read the SDL without running the gateway, and the tests run the check
so a resolver change cannot silently change the public API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import contracts
from contracts.generate import run_cli
from gateway.schema import schema

SDL_PATH = Path(contracts.__file__).resolve().parent / "schema.graphql"


def render() -> str:
    return schema.as_str().rstrip("\n") + "\n"


def _relative(path: Path) -> str:
    return path.relative_to(SDL_PATH.parent.parent).as_posix()


def check() -> list[str]:
    """The SDL file's path if it is missing or differs from the schema, else nothing."""
    if SDL_PATH.exists() and SDL_PATH.read_text(encoding="utf-8") == render():
        return []
    return [_relative(SDL_PATH)]


def write() -> list[str]:
    """Write the SDL if it changed; returns the paths written."""
    differing = check()
    if differing:
        SDL_PATH.write_text(render(), encoding="utf-8")
    return differing


def main(argv: list[str] | None = None) -> int:
    return run_cli("python -m gateway.export_sdl", __doc__.splitlines()[0], check, write, argv)


if __name__ == "__main__":
    sys.exit(main())
