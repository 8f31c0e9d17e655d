"""The whole platform on one machine: servers, migrations, demo seed, every process.

Used by ``make run`` (through ``segin run``) and by the end-to-end tests, so that what the
tests drive is exactly what a person starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from typing import Any

from devstack.localstack import LocalStackError, NatsServer, PostgresServer, free_port, port_taken
from kernel.natsauth import OPERATOR, NatsAuth, servers

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = ROOT / "deploy" / "demo" / "organisations.json"
SERVICES = ("intake", "referral", "notifications", "followup")


class Platform:
    """Starts and stops PostgreSQL, NATS, the four services and the gateway as child processes."""

    def __init__(self, data_dir: Path, *, http_port: int | None = None, database_url: str | None = None,
                 nats_url: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.http_port = http_port or free_port()
        self.postgres = None if database_url else PostgresServer(self.data_dir / "postgres")
        self.nats = None if nats_url else NatsServer(self.data_dir / "nats")
        self._database_url, self._nats_url = database_url, nats_url
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = self.data_dir / "logs"

    @property
    def database_url(self) -> str:
        return self._database_url or self.postgres.url  # type: ignore[union-attr]

    @property
    def nats_url(self) -> str:
        return self._nats_url or self.nats.url  # type: ignore[union-attr]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "demo-clients.json"

    def nats_auth(self, role: str = OPERATOR) -> NatsAuth:
        """The NATS credentials of a role: the private server's, or those of the environment
        (NATS_USER/NATS_PASSWORD, NATS_CREDS) when NATS_URL names servers of one's own."""
        return self.nats.auth(role) if self.nats else NatsAuth.from_env()

    def nats_options(self, role: str = OPERATOR) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` as ``role`` (tests use the operator)."""
        return {"servers": servers(self.nats_url), **self.nats_auth(role).options()}

    def env(self, role: str = OPERATOR) -> dict[str, str]:
        """A child process's environment; each process gets its own NATS credentials."""
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            **(self.nats.auth(role).env() if self.nats else {}),
            "SEGIN_ISSUER": self.base_url,
            "SEGIN_PORT": str(self.http_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def check_port(self) -> None:
        """Refuse before starting anything when the gateway's port is taken: otherwise the gateway
        dies after the servers started, and whoever holds the port answers our readiness probe."""
        host = os.environ.get("SEGIN_HOST", "127.0.0.1")
        if port_taken(host, self.http_port):
            raise LocalStackError(f"port {self.http_port} on {host} is already in use (another `make run`?)")

    def start(self, *, seed: bool = True) -> None:
        self.check_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.log_dir.chmod(0o700)  # logs hold addresses, client and case ids: their owner's only
        if self.postgres:
            self.postgres.start()
        if self.nats:
            self.nats.start()
        self.provision()
        if seed:
            self.seed()
        for name in (*SERVICES, "gateway"):
            self.start_process(name)
        self.wait_ready()

    def provision(self) -> None:
        """Streams and the revocation bucket, made with the operator's credentials (services may
        only use them)."""
        from kernel.bus import connect, provision

        async def go() -> None:
            nc = await connect(self.env()["NATS_URL"], "segin-operator", self.nats_auth())
            try:
                await provision(nc.jetstream(timeout=10), replicas=int(os.environ.get("SEGIN_STREAM_REPLICAS", "1")))
            finally:
                await nc.close()

        asyncio.run(go())

    def seed(self) -> None:
        for args in (["-m", "gateway.admin", "seed", str(DEMO_DATA), "--secrets-out", str(self.secrets_file)],
                     ["-m", "services.referral.seed", str(DEMO_DATA)]):
            subprocess.run([sys.executable, *args], env=self.env(), check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)

    def start_process(self, name: str) -> None:
        module = "gateway" if name == "gateway" else f"services.{name}"
        log = os.fdopen(os.open(self.log_dir / f"{name}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        os.fchmod(log.fileno(), 0o600)  # also a log made by an older version
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module], env=self.env(name), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_process(self, name: str) -> None:
        """SIGKILL, as a crash would: no graceful shutdown."""
        proc = self.processes.pop(name)
        proc.kill()
        proc.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=3)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.3)
        raise RuntimeError(f"platform not ready after {timeout}s: {last}")

    def client_credentials(self, org_id: str) -> tuple[str, str]:
        data = json.loads(self.secrets_file.read_text())
        return data[org_id]["client_id"], data[org_id]["client_secret"]

    def token(self, org_id: str, scope: str | None = None) -> str:
        client_id, secret = self.client_credentials(org_id)
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        response = httpx.post(f"{self.base_url}/oauth/token", data=form, auth=(client_id, secret), timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system, children included) each part has used so far: every service, the
        gateway, and PostgreSQL and NATS when this platform started them. For benchmarks, from /proc."""
        roots = {name: proc.pid for name, proc in self.processes.items()}
        for name, server in (("postgres", self.postgres), ("nats", self.nats)):
            proc = getattr(server, "_proc", None)
            if proc is not None:
                roots[name] = proc.pid
        return process_cpu(roots)

    def stop(self) -> None:
        """Gateway first (no new work), then services (they finish in-flight work), then servers."""
        for name in ("gateway", *SERVICES):
            proc = self.processes.pop(name, None)
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()


def scratch(prefix: str = "segin-bench-", **options: Any) -> Platform:
    """A platform (not started) in a fresh temporary directory, for a test, a benchmark or a one-off run;
    ``discard`` removes it. The directory is 0755: the unprivileged postgres user must enter it when this
    runs as root. ``options``: ``Platform``'s (ports, servers already running, environment)."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    data_dir.chmod(0o755)
    return Platform(data_dir, **options)


def discard(platform: Platform) -> None:
    """Stop a ``scratch`` platform and remove its directories (PostgreSQL's too, when it had to put its data
    elsewhere)."""
    platform.stop()
    if platform.postgres is not None and platform.postgres.data_dir != platform.postgres.requested_dir:
        shutil.rmtree(platform.postgres.data_dir, ignore_errors=True)
    shutil.rmtree(platform.data_dir, ignore_errors=True)


def process_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system, children included) of each named process tree, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            rest = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]) / tick)
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    out = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            total += table.get(pid, (0, 0.0))[1]
            todo.extend(children.get(pid, []))
        out[name] = total
    return out
