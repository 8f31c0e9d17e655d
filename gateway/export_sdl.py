"""Write the public GraphQL schema to contracts/schema.graphql.

``python -m gateway.export_sdl`` rewrites it; ``--check`` exits 1 when the committed file differs.
Client teams and reviewers read the SDL without running the gateway, and the tests run the check
so a resolver change cannot silently change the public API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import contracts
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


def write() -> bool:
    """Write the SDL if it changed; returns whether it did."""
    if not check():
        return False
    SDL_PATH.write_text(render(), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.export_sdl", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed SDL is out of date")
    args = parser.parse_args(argv)
    if args.check:
        differing = check()
        for path in differing:
            print(f"out of date: {path}")
        if differing:
            print("run `make contracts` to regenerate")
            return 1
        return 0
    if write():
        print(f"wrote {_relative(SDL_PATH)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
