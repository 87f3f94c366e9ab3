"""Imports flow one way: exchange → policies, audit, connectors; nothing imports
exchange, and the audit log, the policy engine and the connectors import nothing
else of ours (the connectors talk to an exchange only over HTTP)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"exchange", "policies", "audit", "connectors", "benchmarks"}
ALLOWED = {
    "audit": {"audit"},
    "policies": {"policies"},
    "connectors": {"connectors"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) - ALLOWED[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {file: names for file, names in offending.items() if names} == {}


def test_nothing_imports_exchange_but_exchange() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for package in ("policies", "audit", "connectors")
        for path in (ROOT / package).rglob("*.py")
        if "exchange" in _imported_packages(path)
    }
    assert importers == set()
    assert any((ROOT / "audit").rglob("*.py")), "the check must have files to read"


def _loaded(modules: str, packages: set[str]) -> list[str]:
    """Which of `packages` a fresh interpreter has loaded after importing `modules`."""
    probe = f"import sys, {modules}\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return sorted(set(ast.literal_eval(result.stdout)) & packages)


def test_the_offline_verifier_needs_only_cryptography() -> None:
    """An auditor runs `python -m audit` without the exchange's dependencies."""
    heavy = {"sqlalchemy", "sqlmodel", "exchange", "fastapi", "pydantic", "casbin"}
    assert _loaded("audit, audit.export, audit.__main__", heavy) == []


def test_the_connectors_load_without_the_server() -> None:
    """A publisher's machine needs the SDK and its commands, not the exchange's
    database layer, web framework or policy engine."""
    commands = "publisher, receiver, follower, simulator, subscribing, product_commands"
    modules = ", ".join(["connectors", *(f"connectors.{c}" for c in commands.split(", "))])
    heavy = {"sqlalchemy", "sqlmodel", "exchange", "fastapi", "casbin", "alembic"}
    assert _loaded(modules, heavy) == []


def test_the_exchange_command_loads_the_server_only_for_server_commands() -> None:
    """`exchange publish` and the other connector commands start fast: building the
    command line imports neither the database layer nor the web app."""
    heavy = {"sqlalchemy", "sqlmodel", "fastapi", "casbin", "alembic"}
    assert _loaded("exchange.cli", heavy) == []
