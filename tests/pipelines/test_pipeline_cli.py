"""``sensorfleet pipeline run`` through typer's CliRunner on a tiny synthetic fleet + a bad session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

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
    # no model trained yet: one summary line per score table, not a warning per day and table
    for table in ("anomaly_scores", "yield_predictions", "spatial_scores"):
        assert f"  {table}: not scored on 1 day(s): " in second.output, second.output
    # told before PyTorch is imported: the model store does not exist yet
    assert "spatial_scores: not scored on 1 day(s): no model trained yet (no model store at" in second.output
    assert "WARNING" not in second.output
    # a warning check on features names them, as the others name their modules
    null_rate = next(line for line in second.output.splitlines() if "module_features.feature_null_rate [WARN]" in line)
    assert "% null)" in null_rate and "see the UI" not in null_rate, null_rate


def test_pipeline_run_select_and_day(tmp_path: Path, synth_landing: Path) -> None:
    root = tmp_path / "data"
    args = ["pipeline", "run", "--root", str(root), "--landing", str(synth_landing)]
    result = CliRunner().invoke(app, [*args, "--select", "captures", "--day", "2026-03-02"])
    assert result.exit_code == 0, result.output
    assert "sessions ingested: 3" in result.output
    assert "characterized" not in result.output
    assert not (root / "tables" / "module_stats").exists()


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args, env={"COLUMNS": "1000"})  # errors on one line, not boxed narrow


def _flat(output: str) -> str:
    return " ".join(output.replace("\u2502", " ").split())


def test_pipeline_run_fails_fast_on_a_missing_landing_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    result = _invoke(["pipeline", "run", "--root", str(root), "--landing", str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert "landing root" in _flat(result.output) and "does not exist" in _flat(result.output)
    assert not (root / "dagster_home").exists()  # nothing created before the error


def test_pipeline_run_reports_an_unparseable_day_as_a_bad_date(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    result = _invoke(["pipeline", "run", "--root", str(tmp_path), "--day", "2026-13-45"])
    assert result.exit_code == 2, result.output
    assert "'2026-13-45' is not a date YYYY-MM-DD" in _flat(result.output)
    assert "outside the accepted range" not in _flat(result.output)
    assert not (tmp_path / "dagster_home").exists()


def test_pipeline_run_unknown_asset_lists_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    result = _invoke(["pipeline", "run", "--root", str(tmp_path), "--select", "modul_stats"])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert "modul_stats: unknown asset or group" in text and "module_stats" in text and "captures" in text
    assert not (tmp_path / "dagster_home").exists()


def test_a_day_without_data_writes_nothing(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    make_session(landing, "a", "2024-05-01T10:00:00+00:00", seed=1)
    result = _invoke(["pipeline", "run", "--root", str(tmp_path), "--day", "2024-05-03"])
    assert result.exit_code == 0, result.output
    assert "2024-05-03: no sessions in the landing root or captures" in _flat(result.output)
    assert not (tmp_path / "tables").exists() and not (tmp_path / "captures").exists()


def test_a_failed_ingest_still_counts_what_it_published(
    tmp_path: Path, synth_landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session that fails for a reason other than its input (here: no space left on device)
    fails the day's run, and the summary counts the sessions the run did publish."""
    import errno

    import sensorfleet.ingest.day as ingest_day_module

    real = ingest_day_module.ingest_session
    victim = sorted(p.name for p in synth_landing.iterdir() if p.is_dir())[0]

    def full_disk_for_one(session_dir: Path, **kwargs: object) -> object:
        if session_dir.name == victim:
            raise OSError(errno.ENOSPC, "No space left on device", str(session_dir))
        return real(session_dir, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_day_module, "ingest_session", full_disk_for_one)
    root = tmp_path / "data"
    args = ["pipeline", "run", "--root", str(root), "--landing", str(synth_landing),
            "--select", "captures", "--day", "2026-03-02"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "no space left on device" in result.output.lower()
    assert "2026-03-02: 2 ingested" in result.output, result.output
    assert "sessions ingested: 2" in result.output
