"""Shared fixtures: real PostgreSQL and NATS servers started by the suite itself, on free ports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.localstack import NatsServer, PostgresServer


def traversable_tmpdir(prefix: str) -> Path:
    """A temporary directory the unprivileged PostgreSQL user can reach when tests run as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    path = traversable_tmpdir("segin-servers-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(servers_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(servers_dir / "postgres")
    server.start()
    yield server
    server.stop()
    if server.data_dir != server.requested_dir:
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(servers_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(servers_dir / "nats")
    server.start()
    yield server
    server.stop()
