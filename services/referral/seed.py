"""Load the demonstration service directory: ``python -m services.referral.seed FILE``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from contracts.reference import ServiceCategory, regions
from kernel.config import Settings
from kernel.db import migrate, open_pool
from services.referral import store
from services.referral.app import APP


async def seed(data_file: Path) -> int:
    settings = Settings.from_env()
    await migrate(settings.database_url, APP.schema, APP.migrations)
    data = json.loads(data_file.read_text(encoding="utf-8"))
    count = 0
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    async with pool.connection() as conn, conn.transaction():
        for org in data["organisations"]:
            for service in org.get("services", []):
                ServiceCategory(service["category"])
                assert all(r in regions() for r in service["regions"]), f"unknown region in {org['id']}"
                await store.upsert_directory_service(conn, org["id"], org["name"], org["type"], service["category"],
                                                     service["regions"])
                count += 1
    await pool.close()
    return count


if __name__ == "__main__":
    n = asyncio.run(seed(Path(sys.argv[1])))
    print(f"directory: {n} services")
