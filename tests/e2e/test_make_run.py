"""`make run` as a new user meets it: a taken port, and a demo token from another shell."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from devstack.localstack import free_port
from tests.conftest import traversable_tmpdir

pytestmark = pytest.mark.e2e

SEGIN = str(Path(sys.executable).with_name("segin"))  # the venv's script, as `make run` calls it
STARTED = "Segin is running."


def _env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: no SEGIN_* or server URLs inherited from the test run."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith("SEGIN_") and k not in {"DATABASE_URL", "NATS_URL"}}
    return {**keep, "PYTHONUNBUFFERED": "1", **extra}


class _AlwaysReady(BaseHTTPRequestHandler):
    """Whatever else holds the port, even another Segin: answers 200 to /readyz."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = traversable_tmpdir("segin-make-run-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_segin_run_refuses_a_taken_port_before_starting_anything(workdir: Path) -> None:
    squatter = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysReady)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    port = squatter.server_address[1]
    try:
        result = subprocess.run([SEGIN, "run"], cwd=workdir, env=_env(SEGIN_PORT=str(port)),
                                capture_output=True, text=True, timeout=180)
    finally:
        squatter.shutdown()
        squatter.server_close()
    assert result.returncode != 0
    assert "SEGIN_PORT" in result.stderr and str(port) in result.stderr, result.stderr
    assert STARTED not in result.stdout
    data = workdir / ".data"
    assert not (data / "postgres").exists() and not (data / "nats").exists(), "nothing may have started"


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The launcher's output, line by line, without blocking the test on a silent process."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], text: str, proc: subprocess.Popen[str], timeout: float = 240) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line == "" and proc.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} not printed; output:\n{''.join(seen)}")


def test_segin_token_reaches_the_gateway_that_segin_run_started_on_another_port(workdir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([SEGIN, "run"], cwd=workdir, env=_env(SEGIN_PORT=str(port)), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = _lines(proc)
        _wait_for(lines, STARTED, proc)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        hint = _wait_for(lines, "Get a demo token:", proc, timeout=30)
        assert ".venv/bin/segin token dgme" in hint

        # Another shell in the same folder: no SEGIN_PORT, no SEGIN_URL.
        token = subprocess.run([SEGIN, "token", "dgme"], cwd=workdir, env=_env(), capture_output=True,
                               text=True, timeout=60)
        assert token.returncode == 0, token.stderr
        assert token.stdout.strip().count(".") == 2, "a JWT"
        assert json.loads((workdir / ".data" / "run.json").read_text())["url"] == f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert not (workdir / ".data" / "run.json").exists(), "a stopped platform is no longer where tokens come from"
