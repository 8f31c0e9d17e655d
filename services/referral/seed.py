"""Load the demonstration service directory: ``python -m services.referral.seed FILE``.

Each organisation's services are saved through the directory's own endpoint (scope check, request
model, handler, reply model: ``kernel.rpc.bind``), as that organisation would save them: the same
validation, event and audit entry as a real change; the platform steward then approves the
sensitive-category services, as it would after reviewing them (decision record 0016). Each demo
service carries a stable ``id`` (its
seed key): an absent service is created with it, a present one is saved with the version read,
and a save that changes nothing writes nothing, so seeding twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from kernel.config import Settings
from kernel.db import migrate, open_pool
from kernel.errors import NotFound
from kernel.rpc import bind
from contracts.reference import SENSITIVE_SERVICES, ServiceCategory
from kernel.tokens import Principal
from services.referral.app import APP

SEED_SCOPES = frozenset({"directory:read", "directory:write"})
STEWARD = Principal(subject="seed:steward", org_id="segin-steward", client_id="segin-seed",
                    scopes=frozenset({"directory:read", "directory:write", "directory:manage"}), jti="", token="",
                    org_type="STATE")


def organisation_principal(org: dict[str, Any]) -> Principal:
    """The demo organisation itself, maintaining its own services, with the scope of each sensitive
    category it serves (as its mandate gives it)."""
    categories = {ServiceCategory(s["category"]) for s in org.get("services", [])}
    sensitive = {SENSITIVE_SERVICES[c].scope for c in categories if c in SENSITIVE_SERVICES}
    return Principal(subject=f"seed:{org['id']}", org_id=org["id"], client_id="segin-seed",
                     scopes=SEED_SCOPES | sensitive, jti="", token="", org_type=org["type"])


async def seed_organisation(pool: AsyncConnectionPool, org: dict[str, Any]) -> int:
    """Save one organisation's demo services; returns how many it lists."""
    save = bind(f"svc.{APP.name}.directory_save", APP.endpoints["directory_save"], pool).handler
    read = bind(f"svc.{APP.name}.directory_service", APP.endpoints["directory_service"], pool).handler
    approve = bind(f"svc.{APP.name}.directory_approve", APP.endpoints["directory_approve"], pool).handler
    caller = organisation_principal(org)
    for service in org.get("services", []):
        try:
            version = (await read(caller, {"id": service["id"]}))["version"]
        except NotFound:
            version = None
        payload = {**service, "organization_name": org["name"], "organization_type": org["type"]}
        saved = await save(caller, payload | ({"version": version} if version else {}))
        if saved["awaiting_approval"]:
            await approve(STEWARD, {"id": saved["id"], "version": saved["version"]})
    return len(org.get("services", []))


async def seed(data_file: Path) -> int:
    settings = Settings.from_env()
    await migrate(settings.database_url, APP.schema, APP.migrations)
    data = json.loads(data_file.read_text(encoding="utf-8"))
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return sum([await seed_organisation(pool, org) for org in data["organisations"]])
    finally:
        await pool.close()


if __name__ == "__main__":
    n = asyncio.run(seed(Path(sys.argv[1])))
    print(f"directory: {n} services")
