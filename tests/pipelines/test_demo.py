"""``sensorfleet demo`` end to end on a tiny fleet: generate once, run, say where things are."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app


def test_demo_generates_runs_and_reuses_the_fleet(tmp_path: Path) -> None:
    root = tmp_path / "data"
    args = ["demo", "--root", str(root), "--modules", "1", "--seed", "3", "--width", "128", "--height", "96"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "synthetic fleet: 1 session(s)" in first.output
    assert "sessions ingested: 1" in first.output
    # the planted broken session is rejected with its reason, and nothing else fails
    assert "sessions rejected: 1" in first.output
    assert "DEMO-broken-truncated-frame" in first.output
    rejections = pl.read_parquet(root / "tables" / "rejections")
    assert rejections["session_id"].to_list() == ["DEMO-broken-truncated-frame"]
    assert "expected" in rejections["reason"][0] and "found" in rejections["reason"][0]
    assert "Where things are" in first.output and "http://127.0.0.1:3000" in first.output
    assert pl.read_parquet(root / "tables" / "module_stats").height == 1
    assert (root / "truth" / "modules.parquet").is_file()
    # the fleet-wide run after the days: final-test labels and the warehouse
    assert "final-test rows: 1 (0 rejected" in first.output
    assert "warehouse: " in first.output and (root / "warehouse.duckdb").is_file()
    query = CliRunner().invoke(app, ["sql", "--root", str(root), "--format", "csv",
                                     "SELECT count(*) AS n FROM module_stats JOIN final_test USING (module_id)"])
    assert query.exit_code == 0 and query.output.splitlines() == ["n", "1"], query.output

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "already holds 2 session(s): not generating" in second.output
    assert "sessions skipped as unchanged: 1" in second.output
    assert "sessions rejected: 1" in second.output


def test_demo_honours_the_root_and_landing_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``demo`` resolves its roots like every command: SENSORFLEET_ROOT / SENSORFLEET_LANDING."""
    import pipelines.demo as demo_module

    seen: dict[str, Path] = {}
    monkeypatch.setenv("SENSORFLEET_ROOT", str(tmp_path / "env-root"))
    monkeypatch.setenv("SENSORFLEET_LANDING", str(tmp_path / "env-landing"))
    monkeypatch.setattr(demo_module, "generate_demo_fleet", lambda paths, *a, **k: seen.update(landing=paths.landing))
    monkeypatch.setattr(demo_module, "add_broken_session", lambda landing, console: None)
    monkeypatch.setattr(demo_module, "run_with_display", lambda paths, console: seen.update(root=paths.root) or _Ok())
    monkeypatch.setattr(demo_module, "print_where", lambda paths, console: None)
    result = CliRunner().invoke(app, ["demo", "--modules", "1"])
    assert result.exit_code == 0, result.output
    assert seen == {"landing": tmp_path / "env-landing", "root": tmp_path / "env-root"}


class _Ok:
    ok = True
    interrupted = False
