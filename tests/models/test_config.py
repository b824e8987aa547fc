"""Where MLflow lives: the root's SQLite file by default, the environment's URI when set."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensorfleet.config import resolve_tracking


def test_default_is_sqlite_and_artifacts_under_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SENSORFLEET_ROOT", str(tmp_path))
    tracking = resolve_tracking()
    assert tracking.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    assert tracking.artifacts == tmp_path.resolve() / "mlflow" / "artifacts"


def test_the_environment_wins_and_a_server_keeps_its_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    tracking = resolve_tracking(tmp_path)
    assert tracking.uri == "http://127.0.0.1:5000" and tracking.artifacts is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'x.db'}")
    assert resolve_tracking(tmp_path).artifacts == tmp_path.resolve() / "mlflow" / "artifacts"


def test_connecting_to_one_root_does_not_pin_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's set_tracking_uri exports MLFLOW_TRACKING_URI; connect must not leave it behind,
    or every later root in the process would use the first root's tracking database."""
    from models.tracking import connect

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    connect(tmp_path / "a")
    assert resolve_tracking(tmp_path / "b").uri == f"sqlite:///{(tmp_path / 'b').resolve() / 'mlflow' / 'mlflow.db'}"


def test_no_model_before_the_store_exists_without_creating_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the first training the root has no tracking database: asking for a champion says
    so without creating the database (scoring a day before any training stays cheap)."""
    from models.tracking import NoSuchModelError, resolve_version, store_missing

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    db = tmp_path.resolve() / "mlflow" / "mlflow.db"
    assert store_missing(tmp_path) == db
    with pytest.raises(NoSuchModelError, match=r"model 'm' has no version with alias 'champion' yet.*no model store at"):
        resolve_version("m", "champion", tmp_path)
    assert not db.exists()
    db.parent.mkdir(parents=True)
    db.touch()
    assert store_missing(tmp_path) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert store_missing(tmp_path) is None  # a server: only asking it can tell


def test_a_new_model_store_is_set_up_without_mlflows_info_lines(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = ("import sys; from models.tracking import connect; "
            "connect(sys.argv[1]).search_experiments(); print('store ready')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    assert "store ready" in done.stdout
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()  # the store was made in that process
    assert "Creating initial MLflow database tables" not in done.stderr, done.stderr


def test_a_promotion_reason_says_what_the_metric_was_measured_on() -> None:
    from models.tracking import Candidate, held_out

    def candidate(metrics: dict[str, float]) -> Candidate:
        return Candidate(name="m", model=None, params={}, metrics=metrics, primary="roc_auc",
                         evaluate=lambda _m: 0.0, example=None, output=None)

    assert held_out(candidate({"roc_auc": 0.47, "test_modules": 24.0, "failures": 3.0, "chance_roc_auc": 0.5})) == (
        " (held out: 24 modules, 3 positive; chance 0.5000)")
    assert held_out(candidate({"roc_auc": 0.9, "test_modules": 30.0, "positives": 6.0})) == " (held out: 30 modules, 6 positive)"
    assert held_out(candidate({"roc_auc": 0.9})) == ""
