"""Command-line administration of the registry: ``python -m gateway.admin --help``.

Client secrets and people's passwords are shown once at creation (or written to a file with mode
0600) and stored only as argon2 hashes.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from contracts.reference import OrganisationType
from contracts.scopes import ALL_SCOPES, ROLE_SCOPES
from gateway import keys
from gateway.auth import lockout, passwords, people, revocation
from gateway.auth.login import read_secret
from gateway.auth.throttle import pseudonym
from gateway.store import clients, organisations
from gateway.store import revocations as revocation_store
from gateway.store.connections import SyncConnection
from kernel.config import Settings
from kernel.db import migrate

MIGRATIONS = Path(__file__).parent / "migrations"
PUBLIC_GRANTS = ["authorization_code", "refresh_token"]
# The platform's own web app, shared by every organisation's people (a public client: PKCE, no secret);
# it belongs to the platform steward's organisation (the first demo organisation if there is none).
DEMO_WEB_CLIENT = {"client_id": "segin-web", "owner": "segin-steward",
                   "redirect_uris": ["http://127.0.0.1:8765/callback", "http://localhost:8765/callback"]}
# One demonstration person per demonstration organisation (fictional names); the platform steward
# belongs to the steward's organisation.
DEMO_PEOPLE: dict[str, list[tuple[str, str, str]]] = {
    "segin-steward": [("steward", "Intendance de la plateforme Segin", "platform_steward")],
    "dgme": [("awa.dgme", "Awa Keïta", "case_worker")],
    "ame": [("moussa.ame", "Moussa Diarra", "case_worker")],
    "iom": [("fatoumata.iom", "Fatoumata Sangaré", "case_worker")],
    "unicef": [("ibrahim.unicef", "Ibrahim Touré", "case_worker")],
    "unhcr": [("mariam.unhcr", "Mariam Cissé", "case_worker")],
    "csref-gao": [("oumar.csref-gao", "Oumar Maïga", "case_worker")],
    "csref-bamako": [("kadiatou.csref-bamako", "Kadiatou Coulibaly", "case_worker")],
    "croix-rouge": [("seydou.croix-rouge", "Seydou Dembélé", "case_worker")],
    "cnrm": [("aminata.cnrm", "Aminata Sidibé", "supervisor")],
}

Conn = SyncConnection


def _check_scopes(scopes: list[str]) -> None:
    unknown = set(scopes) - ALL_SCOPES
    if unknown:
        raise SystemExit(f"unknown scopes: {', '.join(sorted(unknown))}")


def check_redirect_uri(uri: str) -> None:
    """Exact, absolute URIs only: https, http on the loopback (RFC 8252 §7.3), or an app's private scheme."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.scheme:
        raise SystemExit(f"redirect URI must be absolute and without a fragment: {uri}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        if host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
            return
        raise SystemExit(f"plain http redirect URIs are allowed on the loopback only: {uri}")
    if "." in parts.scheme and parts.scheme not in ("http", "https"):  # e.g. ml.segin.app:/callback
        return
    raise SystemExit(f"unsupported redirect URI: {uri}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def upsert_organisation(conn: Conn, org_id: str, name: str, org_type: str, scopes: list[str]) -> None:
    OrganisationType(org_type)
    _check_scopes(scopes)
    organisations.upsert_organisation(conn, org_id, name, org_type, scopes)


def create_client(conn: Conn, client_id: str, org_id: str, scopes: list[str]) -> str:
    """Create a confidential client-credentials client, or give it a new secret; returns the plain secret."""
    secret = register_client(conn, client_id, org_id, scopes)
    assert secret is not None
    return secret


def register_client(conn: Conn, client_id: str, org_id: str, scopes: list[str], *, public: bool = False,
                    redirect_uris: list[str] | None = None, grant_types: list[str] | None = None,
                    shared: bool = False) -> str | None:
    """Create or update a client; returns its new secret (None for a public client, which has none)."""
    _check_scopes(scopes)
    redirect_uris = redirect_uris or []
    grant_types = grant_types or (PUBLIC_GRANTS if public else ["client_credentials"])
    for uri in redirect_uris:
        check_redirect_uri(uri)
    if "authorization_code" in grant_types and not redirect_uris:
        raise SystemExit("the authorization_code grant needs at least one --redirect-uri")
    if public and "client_credentials" in grant_types:
        raise SystemExit("a public client cannot use client_credentials (it has no secret)")
    secret = None if public else secrets.token_urlsafe(32)
    clients.upsert_client(conn, client_id, org_id, passwords.hash_secret(secret) if secret else None, scopes,
                          redirect_uris, grant_types, "none" if public else "client_secret_basic", shared)
    return secret


def seed(conn: Conn, data_file: Path, secrets_file: Path) -> dict[str, dict[str, Any]]:
    """Demonstration organisations, each with a ``<id>-demo`` client and a demo person; secrets kept across runs.

    The secrets file maps each organisation to its ``client_id``/``client_secret`` and, under
    ``people``, each demo person's ``password``, ``role`` and ``name``.
    """
    data = json.loads(data_file.read_text(encoding="utf-8"))
    known: dict[str, dict[str, Any]] = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    for org in data["organisations"]:
        upsert_organisation(conn, org["id"], org["name"], org["type"], org["scopes"])
        client_id = f"{org['id']}-demo"
        entry = known.setdefault(org["id"], {})
        if not clients.is_registered(conn, client_id) or "client_secret" not in entry:
            entry.update(client_id=client_id, client_secret=create_client(conn, client_id, org["id"], org["scopes"]))
        entry["people"] = _seed_people(conn, org["id"], entry.get("people", {}))
    org_ids = [o["id"] for o in data["organisations"]]
    if org_ids:
        owner = str(DEMO_WEB_CLIENT["owner"]) if DEMO_WEB_CLIENT["owner"] in org_ids else org_ids[0]
        register_client(conn, str(DEMO_WEB_CLIENT["client_id"]), owner, sorted(ALL_SCOPES), public=True,
                        redirect_uris=list(DEMO_WEB_CLIENT["redirect_uris"]), shared=True)
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out, indent=2, ensure_ascii=False)
    return known


def _seed_people(conn: Conn, org_id: str, known: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The organisation's demo people; a password is (re)generated only when it is not already known."""
    result: dict[str, dict[str, str]] = {}
    for username, name, role in DEMO_PEOPLE.get(org_id, [(f"agent.{org_id}", f"Agent {org_id}", "case_worker")]):
        password = known.get(username, {}).get("password")
        if not people.exists(conn, username) or not password:
            password = people.generate_password()
            people.create(conn, username, org_id, role, name, password)
        result[username] = {"password": password, "role": role, "name": name}
    return result


def revoke_client(conn: Conn, settings: Settings, client_id: str) -> None:
    """Revoke in the database, then tell every process at once (or the gateway will, within seconds)."""
    entries = revocation.revoke_client(conn, client_id)
    if entries is None:
        print(f"no client {client_id}", file=sys.stderr)
        raise SystemExit(1)
    conn.commit()
    try:
        asyncio.run(asyncio.wait_for(revocation.publish_once(settings.nats_url, entries,
                                                             replicas=settings.stream_replicas,
                                                             auth=settings.nats_auth), 15))
        revocation_store.mark_published(conn, [e.key for e in entries])
        print(f"client {client_id} revoked; its live tokens are refused everywhere")
    except Exception as exc:
        print(f"client {client_id} revoked; NATS not reachable ({type(exc).__name__}): the gateway will "
              "publish the revocation within seconds of reaching it")


def create_person(conn: Conn, args: argparse.Namespace) -> dict[str, str]:
    if args.role not in ROLE_SCOPES:
        raise SystemExit(f"unknown role '{args.role}'; roles: {', '.join(sorted(ROLE_SCOPES))}")
    generated = not args.password_stdin
    password = people.generate_password() if generated else sys.stdin.readline().rstrip("\r\n")
    try:
        person_id = people.create(conn, args.username, args.org, args.role, args.name, password)
    except (ValueError, psycopg.errors.ForeignKeyViolation, psycopg.errors.CheckViolation) as exc:
        raise SystemExit(f"person not saved: {str(exc).splitlines()[0]}") from None
    lockout.clear(conn, pseudonym(read_secret(conn), args.username))  # a new password starts afresh
    return {"username": args.username.strip().lower(), "person_id": person_id, "org": args.org, "role": args.role,
            **({"password": password} if generated else {})}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed", help="load demonstration organisations, clients and people")
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
    c.add_argument("--public", action="store_true", help="a browser or mobile app: no secret, PKCE")
    c.add_argument("--redirect-uri", action="append", default=[], help="exact redirect URI (repeatable)")
    c.add_argument("--grant-types", help="space-separated; default client_credentials, or "
                                         "'authorization_code refresh_token' for --public")
    c.add_argument("--shared", action="store_true", help="the platform's own app, for people of every organisation")
    r = sub.add_parser("revoke-client", help="revoke a client: no new tokens, and its live tokens stop working")
    r.add_argument("client_id")
    p = sub.add_parser("create-person", help="create a person who signs in (prints a generated password once)")
    p.add_argument("username")
    p.add_argument("--org", required=True)
    p.add_argument("--role", required=True, choices=sorted(ROLE_SCOPES))
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    u = sub.add_parser("unlock-person", help="lift a lock-out after failed sign-ins")
    u.add_argument("username")
    sub.add_parser("rotate-keys", help="add a new token signing key; older keys stay published until unused")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    asyncio.run(migrate(settings.database_url, "gateway", MIGRATIONS))
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        if args.command == "seed":
            clients = seed(conn, args.data_file, args.secrets_out)
            print(f"seeded {len(clients)} organisations; client secrets and demo passwords in {args.secrets_out}")
        elif args.command == "create-org":
            upsert_organisation(conn, args.org_id, args.name, args.type, args.scopes.split())
            print(f"organisation {args.org_id} saved")
        elif args.command == "create-client":
            grants = args.grant_types.split() if args.grant_types else None
            secret = register_client(conn, args.client_id, args.org, args.scopes.split(), public=args.public,
                                     redirect_uris=args.redirect_uri, grant_types=grants, shared=args.shared)
            print(json.dumps({"client_id": args.client_id, **({"client_secret": secret} if secret else {})}))
        elif args.command == "revoke-client":
            revoke_client(conn, settings, args.client_id)
        elif args.command == "create-person":
            print(json.dumps(create_person(conn, args), ensure_ascii=False))
        elif args.command == "unlock-person":
            if not people.exists(conn, args.username):
                raise SystemExit(f"no person {args.username}")
            lockout.clear(conn, pseudonym(read_secret(conn), args.username))
            print(f"{args.username} unlocked")
        elif args.command == "rotate-keys":
            kid = keys.rotate(conn)
            print(json.dumps({"kid": kid}))


if __name__ == "__main__":
    main()
