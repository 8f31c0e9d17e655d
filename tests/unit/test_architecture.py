"""Import rules from .importlinter: services and the gateway share only contracts and kernel.

A service importing another would couple their releases and databases behind NATS's back, so the
rule is enforced here rather than by review.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lint_imports_command() -> list[str]:
    """The venv's ``lint-imports`` script (``python -m importlinter`` does not exist)."""
    script = Path(sys.executable).with_name("lint-imports")  # not resolve(): the venv's bin/ is wanted
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [*lint_imports_command(), "--no-cache", "--no-logo", str(REPO / ".importlinter")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"import rules broken (see .importlinter):\n{output}"
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", output)
    assert kept and int(kept.group(1)) >= 4, f"expected at least 4 kept contracts:\n{output}"


def test_every_consumer_a_service_runs_is_declared_in_contracts() -> None:
    """NATS permissions are generated from ``contracts.channels.CONSUMERS``: a consumer missing
    there could not create its durable nor dead-letter, so the declarations must agree."""
    from contracts.channels import CONSUMERS, event_producer
    from services.intake.app import APP as INTAKE
    from services.notifications.app import APP as NOTIFICATIONS
    from services.referral.app import APP as REFERRAL

    declared = {(c.service, c.durable, c.stream) for c in CONSUMERS}
    running = {(app.name, spec.durable, spec.stream) for app in (INTAKE, REFERRAL, NOTIFICATIONS)
               for spec in app.consumers}
    assert running == declared
    for app in (INTAKE, REFERRAL, NOTIFICATIONS):
        assert all(event_producer(s) == app.name for stream in app.streams for s in stream.subjects)
