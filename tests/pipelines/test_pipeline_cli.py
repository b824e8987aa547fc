"""``sensorfleet pipeline run`` through typer's CliRunner on a tiny synthetic fleet + a bad session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
from tiny_landing import make_session  # noqa: E402  (the tiny-session helper of tests/assets)

from assets.characterization import PHYSICAL_BOUNDS, Bound  # noqa: E402
from pipelines.cli import app  # noqa: E402


def test_pipeline_run_summarizes_rejections_and_failed_checks(
    tmp_path: Path, synth_landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(synth_landing, landing)
    make_session(landing, "broken-session", "2026-03-02T12:00:00+00:00", drop_file=True)
    # a bound every module misses, so the summary must name the modules
    monkeypatch.setitem(PHYSICAL_BOUNDS, "gain_k_dn_per_e", Bound(100.0, 200.0))
    root = tmp_path / "data"
    runner = CliRunner()
    args = ["pipeline", "run", "--root", str(root), "--landing", str(landing)]

    first = runner.invoke(app, args)
    out = first.output
    # the bounds check is blocking: the day's features are not built and the run fails
    assert first.exit_code == 1, out
    assert "2026-03-02: 3 ingested, 0 unchanged, 1 rejected, 3 characterized" in out
    assert "blocking asset check failed" in out and "metrics_within_physical_bounds" in out
    assert "sessions ingested: 3" in out
    assert "sessions skipped as unchanged: 0" in out
    assert "sessions rejected: 1" in out
    assert "broken-session (flat_015.raw): frame file is missing" in out
    assert "module_stats.metrics_within_physical_bounds [ERROR]: CM-1-000000" in out
    assert "captures.no_rejected_sessions [WARN]: broken-session" in out
    assert (root / "dagster_home" / "dagster.yaml").is_file()
    assert not (root / "tables" / "module_features").exists()

    monkeypatch.undo()  # physical bounds again: the day completes
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "sessions ingested: 0" in second.output
    assert "sessions skipped as unchanged: 3" in second.output
    assert "computed now" in second.output and "3 characterized (0 new)" in second.output


def test_pipeline_run_rejects_unknown_selection(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--root", str(tmp_path), "--select", "nope"])
    assert result.exit_code != 0
    assert "valid choices" in result.output


def test_pipeline_run_select_and_day(tmp_path: Path, synth_landing: Path) -> None:
    root = tmp_path / "data"
    args = ["pipeline", "run", "--root", str(root), "--landing", str(synth_landing)]
    result = CliRunner().invoke(app, [*args, "--select", "captures", "--day", "2026-03-02"])
    assert result.exit_code == 0, result.output
    assert "sessions ingested: 3" in result.output
    assert "characterized" not in result.output
    assert not (root / "tables" / "module_stats").exists()
