"""``segin run`` and ``segin token``: the whole platform on one machine, and a demo token for it.

Added to the ``segin`` command through the ``segin.commands`` entry point (``pyproject.toml``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

DEFAULT_PORT = 8000
RUN_FILE = "run.json"  # in the data directory: where the running `segin run` answers


def _data_dir() -> Path:
    return Path(os.environ.get("SEGIN_DATA_DIR", ".data")).resolve()


def _token_hint() -> str:
    """The command to type in another shell; it finds the gateway through the data directory."""
    prefix = f"SEGIN_DATA_DIR={os.environ['SEGIN_DATA_DIR']} " if os.environ.get("SEGIN_DATA_DIR") else ""
    return f"{prefix}.venv/bin/segin token dgme"


def _write_run_file(path: Path, url: str) -> None:
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}))


def _remove_run_file(path: Path) -> None:
    """Only our own: a second `segin run` refused for its port must not hide the first one."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def run(args: argparse.Namespace) -> None:
    from devstack.localstack import LocalStackError
    from devstack.platform import Platform
    from kernel.natsauth import redact

    platform = Platform(
        _data_dir(), http_port=args.port, database_url=os.environ.get("DATABASE_URL"),
        nats_url=os.environ.get("NATS_URL"),
    )
    try:
        platform.check_port()
    except LocalStackError as exc:
        raise SystemExit(f"Segin: {exc}. Set SEGIN_PORT to a free port, e.g. SEGIN_PORT={args.port + 1} make run")
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    run_file = platform.data_dir / RUN_FILE
    print("Segin: starting PostgreSQL, NATS, services and gateway…", flush=True)
    try:
        platform.start()  # returns once /readyz answered 200 and every process still runs
        _write_run_file(run_file, platform.base_url)
        nats_users = (f"\n  NATS credentials   {platform.nats.credentials_path}  (one user per process;"
                      " CLIs: NATS_USER=operator, NATS_PASSWORD from that file)") if platform.nats else ""
        print(
            f"""
Segin is running.
  GraphQL API        {platform.graphql_url}
  OAuth metadata     {platform.base_url}/.well-known/oauth-authorization-server
  Readiness          {platform.base_url}/readyz
  PostgreSQL         {platform.database_url}
  NATS               {redact(platform.nats_url)}{nats_users}
  Logs               {platform.log_dir}
  Demo clients       {platform.secrets_file}  (organisations: dgme, ame, iom, unicef, unhcr, csref-gao, …)

Get a demo token:   {_token_hint()}
Stop:               Ctrl-C
""",
            flush=True,
        )
        while not stopping.wait(1):
            for name, proc in platform.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited ({proc.returncode}); see {platform.log_dir}/{name}.log", file=sys.stderr)
                    stopping.set()
    finally:
        print("Segin: stopping…", flush=True)
        _remove_run_file(run_file)
        platform.stop()
        print("Segin: stopped.", flush=True)


def gateway_url() -> str:
    """SEGIN_URL; else the gateway the running `segin run` wrote into the data directory; else
    SEGIN_PORT (or 8000) on this machine."""
    if os.environ.get("SEGIN_URL"):
        return os.environ["SEGIN_URL"]
    try:
        return str(json.loads((_data_dir() / RUN_FILE).read_text())["url"])
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{os.environ.get('SEGIN_PORT', DEFAULT_PORT)}"


def token(args: argparse.Namespace) -> None:
    import httpx

    url = args.url or gateway_url()
    try:
        secrets = json.loads((_data_dir() / "demo-clients.json").read_text())
    except FileNotFoundError:
        raise SystemExit(f"no demo clients in {_data_dir()}: start the platform with `make run` (SEGIN_DATA_DIR "
                         "names another data directory)") from None
    if args.org not in secrets:
        raise SystemExit(f"no demo client for '{args.org}'; known: {', '.join(sorted(secrets))}")
    client = secrets[args.org]
    form = {"grant_type": "client_credentials", **({"scope": args.scope} if args.scope else {})}
    try:
        response = httpx.post(f"{url}/oauth/token", data=form, auth=(client["client_id"], client["client_secret"]))
    except httpx.HTTPError as exc:
        raise SystemExit(f"cannot reach the gateway at {url} ({type(exc).__name__}); is `make run` running?")
    if response.status_code != 200:
        raise SystemExit(f"token refused: {response.text}")
    print(response.json()["access_token"])


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``segin.commands`` entry point: adds ``run`` and ``token`` to the ``segin`` command."""
    r = sub.add_parser("run", help="start the whole platform on this machine (SEGIN_PORT: the gateway's port)")
    r.add_argument("--port", type=int, default=int(os.environ.get("SEGIN_PORT", DEFAULT_PORT)))
    r.set_defaults(func=run)
    t = sub.add_parser("token", help="print an access token for a demo organisation")
    t.add_argument("org")
    t.add_argument("--scope")
    t.add_argument("--url", help="the gateway (default: SEGIN_URL, else the one `segin run` started)")
    t.set_defaults(func=token)
