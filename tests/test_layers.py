"""Imports flow one way: exchange → policies, exchange → audit; nothing imports exchange,
and the audit log and the policy engine import nothing else of ours."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"exchange", "policies", "audit", "connectors", "benchmarks"}
ALLOWED = {
    "audit": {"audit"},
    "policies": {"policies"},
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
        for package in ("policies", "audit")
        for path in (ROOT / package).rglob("*.py")
        if "exchange" in _imported_packages(path)
    }
    assert importers == set()
    assert any((ROOT / "audit").rglob("*.py")), "the check must have files to read"


def test_the_offline_verifier_needs_only_cryptography() -> None:
    """An auditor runs `python -m audit` without the exchange's dependencies."""
    import subprocess
    import sys

    probe = (
        "import sys, audit, audit.export, audit.__main__\n"
        "heavy = {'sqlalchemy', 'sqlmodel', 'exchange', 'fastapi', 'pydantic', 'casbin'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
