"""The console script's commands load lazily: the top-level help imports none of them, and the
help each declares for the listing is its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from pipelines.cli import COMMANDS as PIPELINE_COMMANDS
from sensorfleet.cli import COMMANDS as CORE_COMMANDS

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("dagster", "numba", "polars", "duckdb", "zarr", "torch", "scipy")


@pytest.mark.parametrize("name", sorted({**CORE_COMMANDS, **PIPELINE_COMMANDS}))
def test_declared_help_is_the_commands_own(name: str) -> None:
    lazy = {**CORE_COMMANDS, **PIPELINE_COMMANDS}[name]
    command = lazy.load(name)
    own = " ".join((command.help or "").split())
    assert own.startswith(lazy.help), f"{name}: declared {lazy.help!r}, its own help is {own!r}"


@pytest.mark.parametrize("args", [["--help"], ["sql", "--help"], ["features", "--help"], ["pipeline", "run", "--help"],
                                  ["plan", "study", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    probe = (
        "import sys\nfrom pipelines.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "Usage" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


def test_the_app_lists_every_command() -> None:
    group = typer.main.get_group(__import__("pipelines.cli").cli.app)
    assert group.list_commands(None) == sorted({**CORE_COMMANDS, **PIPELINE_COMMANDS})


def test_an_unknown_command_lists_the_valid_ones() -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["synht"], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    assert "No such command 'synht'; valid commands: demo, features, import-emva, models, pipeline, plan, sql, synth" in result.output
