"""Imports go one way: pipelines -> assets -> (models, sensorfleet), models -> sensorfleet.

Read from the source (every import statement, lazy ones inside functions included), so a
forbidden import fails here even on a code path no other test runs.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, set[str]] = {
    "sensorfleet": {"pipelines", "assets", "models", "dagster"},
    "models": {"pipelines", "assets", "dagster"},
    "assets": {"pipelines"},
}
"""Top-level packages each layer must never import (``dagster`` covers ``dagster_*`` too)."""


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _banned(package: str, forbidden: set[str]) -> bool:
    return package in forbidden or ("dagster" in forbidden and package.startswith("dagster_"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_never_imports_upward(layer: str) -> None:
    modules = sorted((REPO / layer).rglob("*.py"))
    assert modules or layer == "models", f"{layer}/: no modules found"
    wrong = [
        f"{path.relative_to(REPO)}:{line}: imports {package}"
        for path in modules
        for line, package in imported_packages(path.read_text())
        if _banned(package, FORBIDDEN[layer])
    ]
    assert not wrong, "imports against the layering (see docs/architecture.md):\n" + "\n".join(wrong)


def test_the_checker_sees_lazy_and_dotted_imports() -> None:
    source = "import os\ndef f():\n    from pipelines.runner import run_pipeline\nimport dagster_duckdb.x\n"
    assert sorted(imported_packages(source)) == [(1, "os"), (3, "pipelines"), (4, "dagster_duckdb")]
    assert _banned("dagster_duckdb", FORBIDDEN["sensorfleet"])


def test_core_and_cli_help_load_without_dagster() -> None:
    """Every core module imports without Dagster, and ``sensorfleet --help`` (the console
    script, ``pipelines.cli``) does not load it either."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import sensorfleet\n"
        "for m in pkgutil.walk_packages(sensorfleet.__path__, 'sensorfleet.'):\n"
        "    importlib.import_module(m.name)\n"
        "from typer.testing import CliRunner\n"
        "from pipelines.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert all(c in result.output for c in ('demo', 'import-emva', 'pipeline', 'synth')), result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'assets')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
