"""A throw-away PostgreSQL database for the database benchmarks (deadline_scan, followup_scan, overdue_counts).

``scratch_database(label)`` yields the URL of a fresh, empty database and drops it afterwards. Without
``DATABASE_URL`` it first starts a private PostgreSQL (devstack.localstack) in a temporary directory,
made 0755 so that the unprivileged postgres user can enter it when running as root, and stops and
removes it at the end; with ``DATABASE_URL`` it creates the database on that server.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from devstack.localstack import PostgresServer  # noqa: E402


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A fresh database ``<label>_bench_<hex>`` (server in ``segin-<label>-bench-*`` when private)."""
    server: PostgresServer | None = None
    tmp: str | None = None
    base = os.environ.get("DATABASE_URL")
    try:
        if not base:
            tmp = tempfile.mkdtemp(prefix=f"segin-{label}-bench-")
            os.chmod(tmp, 0o755)  # the unprivileged postgres user must enter it when running as root
            server = PostgresServer(Path(tmp) / "postgres")
            server.start()
            base = server.url
        name = f"{label}_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            yield make_conninfo(base, dbname=name)
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
