"""Run the gateway: ``python -m gateway``.

SEGIN_HOST / SEGIN_PORT say where to listen; SEGIN_GATEWAY_WORKERS how many processes share the
port (the gateway is CPU-bound: token checks and GraphQL; every worker is stateless).
Forwarding headers are not uvicorn's business here: uvicorn would believe them from 127.0.0.1 by
default, where any local user sits. The app believes them only from SEGIN_FORWARDED_ALLOW_IPS
(``gateway.addresses``).
"""

import os

import uvicorn

workers = int(os.environ.get("SEGIN_GATEWAY_WORKERS", "1"))
uvicorn.run(
    "gateway.app:create_app",
    factory=True,
    workers=workers if workers > 1 else None,
    host=os.environ.get("SEGIN_HOST", "127.0.0.1"),
    port=int(os.environ.get("SEGIN_PORT", "8000")),
    log_config=None,
    proxy_headers=False,
    timeout_graceful_shutdown=10,
)
