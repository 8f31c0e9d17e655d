"""Run the gateway: ``python -m gateway`` (host and port from SEGIN_HOST / SEGIN_PORT)."""

import os

import uvicorn

from gateway.app import create_app

uvicorn.run(
    create_app(),
    host=os.environ.get("SEGIN_HOST", "127.0.0.1"),
    port=int(os.environ.get("SEGIN_PORT", "8000")),
    log_config=None,
    proxy_headers=True,
    timeout_graceful_shutdown=10,
)
