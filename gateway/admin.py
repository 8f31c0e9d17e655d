"""Command-line administration of the registry: ``python -m gateway.admin --help``.

Client secrets are shown once at creation (or written to a file with mode 0600) and stored
only as argon2 hashes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contracts.reference import OrganisationType
from contracts.scopes import ALL_SCOPES
from gateway.oauth import hasher
from kernel.config import Settings
from kernel.db import migrate

MIGRATIONS = Path(__file__).parent / "migrations"


def upsert_organisation(conn: psycopg.Connection[Any], org_id: str, name: str, org_type: str, scopes: list[str]) -> None:
    OrganisationType(org_type)
    unknown = set(scopes) - ALL_SCOPES
    if unknown:
        raise SystemExit(f"unknown scopes: {', '.join(sorted(unknown))}")
    conn.execute(
        "insert into gateway.organisations (id, name, type, scope_ceiling) values (%s, %s, %s, %s)"
        " on conflict (id) do update set name = excluded.name, type = excluded.type,"
        " scope_ceiling = excluded.scope_ceiling",
        (org_id, name, org_type, scopes),
    )


def create_client(conn: psycopg.Connection[Any], client_id: str, org_id: str, scopes: list[str]) -> str:
    """Create the client, or give it a new secret if it exists; returns the plain secret."""
    secret = secrets.token_urlsafe(32)
    conn.execute(
        "insert into gateway.oauth_clients (client_id, org_id, name, secret_hash, scopes) values (%s, %s, %s, %s, %s)"
        " on conflict (client_id) do update set secret_hash = excluded.secret_hash, scopes = excluded.scopes,"
        " revoked_at = null",
        (client_id, org_id, client_id, hasher.hash(secret), scopes),
    )
    return secret


def seed(conn: psycopg.Connection[Any], data_file: Path, secrets_file: Path) -> dict[str, dict[str, str]]:
    """Demonstration organisations, each with a ``<id>-demo`` client; secrets kept across runs."""
    data = json.loads(data_file.read_text(encoding="utf-8"))
    known: dict[str, dict[str, str]] = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    for org in data["organisations"]:
        upsert_organisation(conn, org["id"], org["name"], org["type"], org["scopes"])
        client_id = f"{org['id']}-demo"
        row = conn.execute("select 1 from gateway.oauth_clients where client_id = %s", (client_id,)).fetchone()
        if row is None or org["id"] not in known:
            known[org["id"]] = {"client_id": client_id, "client_secret": create_client(conn, client_id, org["id"],
                                                                                        org["scopes"])}
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out, indent=2)
    return known


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed", help="load demonstration organisations and clients")
    s.add_argument("data_file", type=Path)
    s.add_argument("--secrets-out", type=Path, required=True)
    o = sub.add_parser("create-org", help="create or update an organisation")
    o.add_argument("org_id")
    o.add_argument("--name", required=True)
    o.add_argument("--type", required=True, choices=[t.value for t in OrganisationType])
    o.add_argument("--scopes", required=True, help="space-separated scope ceiling")
    c = sub.add_parser("create-client", help="create a client (prints its secret once)")
    c.add_argument("client_id")
    c.add_argument("--org", required=True)
    c.add_argument("--scopes", required=True)
    r = sub.add_parser("revoke-client", help="revoke a client: it gets no new tokens")
    r.add_argument("client_id")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    asyncio.run(migrate(settings.database_url, "gateway", MIGRATIONS))
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        if args.command == "seed":
            clients = seed(conn, args.data_file, args.secrets_out)
            print(f"seeded {len(clients)} organisations; client secrets in {args.secrets_out}")
        elif args.command == "create-org":
            upsert_organisation(conn, args.org_id, args.name, args.type, args.scopes.split())
            print(f"organisation {args.org_id} saved")
        elif args.command == "create-client":
            secret = create_client(conn, args.client_id, args.org, args.scopes.split())
            print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
        elif args.command == "revoke-client":
            cur = conn.execute("update gateway.oauth_clients set revoked_at = now() where client_id = %s",
                               (args.client_id,))
            if cur.rowcount == 0:
                print(f"no client {args.client_id}", file=sys.stderr)
                raise SystemExit(1)
            print(f"client {args.client_id} revoked")


if __name__ == "__main__":
    main()
