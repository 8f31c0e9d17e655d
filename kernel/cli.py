"""``segin``: run the whole platform on one machine, get a demo token, inspect dead letters, check the audit trail."""

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
    from kernel.natsauth import redact
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
    try:
        response = httpx.post(f"{args.url}/oauth/token", data=form, auth=(client["client_id"], client["client_secret"]))
    except httpx.HTTPError as exc:
        raise SystemExit(f"cannot reach the gateway at {args.url} ({type(exc).__name__}); is `make run` running?")
    if response.status_code != 200:
        raise SystemExit(f"token refused: {response.text}")
    print(response.json()["access_token"])


def dlq(args: argparse.Namespace) -> None:
    import asyncio

    from kernel.bus import connect
    from kernel.config import Settings
    from kernel.deadletters import list_dead_letters, replay

    async def go() -> None:
        settings = Settings.from_env()
        nc = await connect(settings.nats_url, "segin-cli", settings.nats_auth)
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


def nats_provision(_args: argparse.Namespace) -> None:
    """Create the streams and the revocation bucket with operator credentials (services may not)."""
    import asyncio

    from kernel.bus import connect, provision
    from kernel.config import Settings

    async def go() -> None:
        settings = Settings.from_env()
        nc = await connect(settings.nats_url, "segin-operator", settings.nats_auth)
        try:
            await provision(nc.jetstream(timeout=10), replicas=settings.stream_replicas)
        finally:
            await nc.close()

    asyncio.run(go())
    print("streams and the REVOKED_TOKENS bucket are in place")


AUDITED_SCHEMAS = ("intake", "referral", "notifications", "gateway")


def audit(args: argparse.Namespace) -> None:
    """Verify, anchor or search the audit chains (uses DATABASE_URL); exits 1 when a chain is broken."""
    import asyncio

    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    from kernel import audit as trail

    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL to the platform's database")
    expected: dict[str, tuple[int, str]] = {}
    for item in getattr(args, "expect", None) or []:
        schema, _, head = item.partition("=")
        seq, _, digest = head.partition(":")
        if not (schema and seq.isdigit() and digest):
            raise SystemExit(f"--expect takes SCHEMA=SEQ:HASH, not {item!r}")
        expected[schema] = (int(seq), digest)

    async def go() -> int:
        async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            schemas = []
            for schema in args.schema or AUDITED_SCHEMAS:
                cur = await conn.execute("select to_regclass(format('%%I.audit_log', %s::text)) is not null as present",
                                         (schema,))
                row = await cur.fetchone()
                if row and row["present"]:
                    schemas.append(schema)
                elif args.action != "search":
                    print(f"{schema}: no audit log, skipped")
            broken = 0
            for schema in schemas:
                if args.action == "verify":
                    head = await trail.chain_head(conn, schema)
                    problems = await trail.verify(conn, schema, expected_head=expected.get(schema))
                    if problems:
                        broken += 1
                        print(f"{schema}: {len(problems)} problem(s)")
                        for p in problems:
                            print(f"  {p.kind}\tseq {p.seq}\t{p.detail}")
                    else:
                        print(f"{schema}: chain intact" + (f", head {head[0]}:{head[1]}" if head else ", empty"))
                elif args.action == "head":
                    head = await trail.chain_head(conn, schema)
                    print(f"{schema}={head[0]}:{head[1]}" if head else f"{schema}: empty")
                else:
                    after = None
                    while True:
                        page = await trail.search(conn, schema, case_id=args.case, org_id=args.org, actor=args.actor,
                                                  first=trail.MAX_PAGE, after=after)
                        for node in page["nodes"]:
                            print(json.dumps({"schema": schema, **node}))
                        after = page["page_info"]["end_cursor"]
                        if not page["page_info"]["has_next_page"]:
                            break
            if args.action == "verify" and (broken or any(s not in schemas for s in expected)):
                for s in expected:
                    if s not in schemas:
                        print(f"{s}: a head was expected but there is no audit log")
                return 1
            return 0

    from kernel.errors import SeginError

    try:
        code = asyncio.run(go())
    except SeginError as exc:
        raise SystemExit(f"{exc.field or 'error'}: {exc.message}") from None
    raise SystemExit(code)


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
    n = sub.add_parser("nats-provision", help="create the streams and the revocation bucket (operator credentials;"
                                             " uses NATS_URL, NATS_USER/NATS_PASSWORD or NATS_CREDS)")
    n.set_defaults(func=nats_provision)
    a = sub.add_parser("audit", help="verify, anchor or search the audit trail (uses DATABASE_URL)")
    a.add_argument("action", choices=["verify", "head", "search"],
                   help="verify: recompute every chain (exit 1 if broken); head: print each chain's head to keep"
                        " elsewhere; search: print matching entries as JSON lines, newest first")
    a.add_argument("--schema", action="append",
                   help=f"only this schema (repeatable; default: {', '.join(AUDITED_SCHEMAS)})")
    a.add_argument("--expect", action="append", metavar="SCHEMA=SEQ:HASH",
                   help="verify: a head printed earlier by 'segin audit head'; detects deletion of the newest entries")
    a.add_argument("--case", help="search: entries about this case id")
    a.add_argument("--org", help="search: entries made by this organisation")
    a.add_argument("--actor", help="search: entries made by this subject")
    a.set_defaults(func=audit)
    args = parser.parse_args(argv)
    if args.command == "audit" and args.action == "search" and not (args.case or args.org or args.actor):
        parser.error("audit search needs --case, --org or --actor")
    args.func(args)


if __name__ == "__main__":
    main()
