"""``segin``: run the whole platform on one machine, get a demo token, inspect dead letters."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def _data_dir() -> Path:
    return Path(os.environ.get("SEGIN_DATA_DIR", ".data")).resolve()


def run(args: argparse.Namespace) -> None:
    from kernel.platform import Platform

    platform = Platform(
        _data_dir(), http_port=args.port, database_url=os.environ.get("DATABASE_URL"),
        nats_url=os.environ.get("NATS_URL"),
    )
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print("Segin: starting PostgreSQL, NATS, services and gateway…", flush=True)
    try:
        platform.start()
        print(
            f"""
Segin is running.
  GraphQL API        {platform.graphql_url}
  OAuth metadata     {platform.base_url}/.well-known/oauth-authorization-server
  Readiness          {platform.base_url}/readyz
  PostgreSQL         {platform.database_url}
  NATS               {platform.nats_url}
  Logs               {platform.log_dir}
  Demo clients       {platform.secrets_file}  (organisations: dgme, ame, iom, unicef, unhcr, csref-gao, …)

Get a demo token:   .venv/bin/segin token dgme
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
        platform.stop()
        print("Segin: stopped.", flush=True)


def token(args: argparse.Namespace) -> None:
    import httpx

    secrets = json.loads((_data_dir() / "demo-clients.json").read_text())
    if args.org not in secrets:
        raise SystemExit(f"no demo client for '{args.org}'; known: {', '.join(sorted(secrets))}")
    client = secrets[args.org]
    form = {"grant_type": "client_credentials", **({"scope": args.scope} if args.scope else {})}
    response = httpx.post(f"{args.url}/oauth/token", data=form, auth=(client["client_id"], client["client_secret"]))
    if response.status_code != 200:
        raise SystemExit(f"token refused: {response.text}")
    print(response.json()["access_token"])


def dlq(args: argparse.Namespace) -> None:
    import asyncio

    from kernel.bus import connect
    from kernel.config import Settings
    from kernel.deadletters import list_dead_letters, replay

    async def go() -> None:
        nc = await connect(Settings.from_env().nats_url, "segin-cli")
        js = nc.jetstream()
        try:
            if args.action == "list":
                letters = await list_dead_letters(js, args.consumer)
                for d in letters:
                    print(f"{d.sequence}\t{d.consumer}\t{d.original_subject}\t{d.event_id}\t{d.error}")
                print(f"{len(letters)} dead letter(s)")
            else:
                sequences = args.sequences or [d.sequence for d in await list_dead_letters(js, args.consumer)]
                for seq in sequences:
                    d = await replay(js, seq)
                    print(f"replayed {seq} to {d.original_subject}")
        finally:
            await nc.close()

    asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="segin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="start the whole platform on this machine")
    r.add_argument("--port", type=int, default=int(os.environ.get("SEGIN_PORT", "8000")))
    r.set_defaults(func=run)
    t = sub.add_parser("token", help="print an access token for a demo organisation")
    t.add_argument("org")
    t.add_argument("--scope")
    t.add_argument("--url", default=os.environ.get("SEGIN_URL", "http://127.0.0.1:8000"))
    t.set_defaults(func=token)
    d = sub.add_parser("dlq", help="list or replay dead-lettered events (uses NATS_URL)")
    d.add_argument("action", choices=["list", "replay"])
    d.add_argument("sequences", nargs="*", type=int, help="dead-letter sequences to replay (default: all listed)")
    d.add_argument("--consumer", help="only this consumer's dead letters, e.g. referral-arrivals")
    d.set_defaults(func=dlq)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
