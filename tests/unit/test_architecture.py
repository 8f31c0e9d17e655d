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
    assert kept and int(kept.group(1)) >= 6, f"expected at least 6 kept contracts:\n{output}"


# Kernel modules that no process imports but the operator runs on a production host (`segin dlq`,
# `segin audit`, `segin nats-provision`).
OPERATOR_TOOLS = {"kernel.cli", "kernel.deadletters"}


def test_kernel_holds_only_what_a_deployed_process_or_the_operator_uses() -> None:
    """A kernel module that no gateway or service module reaches is developer tooling (local
    servers, launchers, demo seeding): it belongs in devstack/, which the image leaves out."""
    import grimp

    graph = grimp.build_graph("kernel", "gateway", "services", "contracts")
    reached: set[str] = set()
    todo = [m for m in graph.modules if m.partition(".")[0] in {"gateway", "services"}]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph.find_modules_directly_imported_by(module)
    kernel = {m for m in graph.modules if m.startswith("kernel.")}
    assert kernel - reached - OPERATOR_TOOLS == set(), "move developer tooling to devstack/"


def test_every_consumer_a_service_runs_is_declared_in_contracts() -> None:
    """NATS permissions are generated from ``contracts.channels.CONSUMERS``: a consumer missing
    there could not create its durable nor dead-letter, so the declarations must agree."""
    from contracts.channels import CONSUMERS, event_producer
    from services.followup.app import APP as FOLLOWUP
    from services.intake.app import APP as INTAKE
    from services.notifications.app import APP as NOTIFICATIONS
    from services.referral.app import APP as REFERRAL

    declared = {(c.service, c.durable, c.stream) for c in CONSUMERS}
    running = {(app.name, spec.durable, spec.stream) for app in (INTAKE, REFERRAL, NOTIFICATIONS, FOLLOWUP)
               for spec in app.consumers}
    assert running == declared
    for app in (INTAKE, REFERRAL, NOTIFICATIONS, FOLLOWUP):
        assert all(event_producer(s) == app.name for stream in app.streams for s in stream.subjects)


def test_segin_keeps_the_operator_commands_where_devstack_is_not_installed() -> None:
    """The image leaves devstack out: `segin dlq|audit|nats-provision` must still work there."""
    code = ("import sys\n"
            "class Absent:\n"  # as if the package were not installed
            "    def find_spec(self, name, *_):\n"
            "        if name.partition('.')[0] == 'devstack':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Absent())\n"
            "from kernel.cli import main; main(['--help'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    commands = re.search(r"\{(.*?)\}", result.stdout)
    assert commands and set(commands.group(1).split(",")) == {"dlq", "nats-provision", "audit"}
    everything = subprocess.run([sys.executable, "-m", "kernel.cli", "--help"], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
    assert "run" in everything.stdout and "token" in everything.stdout, "a developer install adds them"


GATEWAY = REPO / "gateway"
SQL_CALL = re.compile(r"""\.execute\(\s*f?["'](?:select|insert|update|delete|with)\b""", re.IGNORECASE)


def test_the_gateways_sql_lives_in_its_store_only() -> None:
    """Modules above ``gateway/store/`` hold policy, not SQL: a query elsewhere would be missed by a schema change."""
    scattered = sorted(str(p.relative_to(REPO)) for p in GATEWAY.rglob("*.py")
                       if "store" not in p.relative_to(GATEWAY).parts and SQL_CALL.search(p.read_text()))
    assert scattered == []


def test_the_gateway_has_one_password_hasher() -> None:
    hashers = sorted(str(p.relative_to(REPO)) for p in GATEWAY.rglob("*.py") if "PasswordHasher(" in p.read_text())
    assert hashers == ["gateway/auth/passwords.py"]


def test_the_authorization_server_is_split_into_files_a_reader_can_hold() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (GATEWAY / "auth").glob("*.py")}
    assert {"server.py", "grants.py", "models.py", "credentials.py", "discovery.py"} <= set(sizes)
    assert max(sizes.values()) < 250, sizes
