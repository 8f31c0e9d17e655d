"""``segin``: the operator's commands on a production host: dead letters, streams, the audit trail.

Developer commands (``segin run``, ``segin token``) come from the ``devstack`` package through the
``segin.commands`` entry points, so kernel never imports them and an image without devstack (the
container image) simply lacks them.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import metadata


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


AUDITED_SCHEMAS = ("intake", "referral", "notifications", "followup", "gateway")


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


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let installed packages add commands (entry point group ``segin.commands``: a function taking
    the subparsers). One whose package is absent here (devstack in the image) is left out."""
    for entry in metadata.entry_points(group="segin.commands"):
        try:
            add = entry.load()
        except ModuleNotFoundError as exc:
            if not exc.name or not f"{entry.module}.".startswith(f"{exc.name}."):
                raise  # not the entry's own package missing, but something it needs: say so
            continue
        add(sub)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="segin", description="Segin operator tools (dlq, nats-provision, audit)"
                                     " and, where devstack is installed, the developer's run and token.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_plugin_commands(sub)
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
