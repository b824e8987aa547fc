"""The ``features`` typer sub-app, driven directly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from sensorfleet.features.cli import features_app
from tests.features.conftest import at, session, write_rows

runner = CliRunner()


def test_list_and_show() -> None:
    listed = runner.invoke(features_app, ["list"])
    assert listed.exit_code == 0 and "module_emva v1" in listed.output and "default v1" in listed.output
    shown = runner.invoke(features_app, ["show", "channel_emva"])
    assert shown.exit_code == 0 and "prnu_pct_R" in shown.output and "ttl 90 d" in shown.output and "[%]" in shown.output
    unknown = runner.invoke(features_app, ["show", "nope"])
    assert unknown.exit_code == 2 and "cohort_7d" in unknown.output and "yield_v1" in unknown.output


def test_build_and_rebuild(tmp_path: Path) -> None:
    write_rows(tmp_path / "root", "module_stats", [session("M1", 0, 0)])
    spine = tmp_path / "spine.parquet"
    pl.DataFrame({"module_id": ["M1"], "label_time": [at(2)]}).with_columns(
        pl.col("label_time").dt.replace_time_zone("UTC")).write_parquet(spine)
    out = tmp_path / "set.parquet"
    args = ["build-training-set", "--spine", str(spine), "--out", str(out), "--service", "yield_v1",
            "--as-of", "2026-03-01T05:00:00+00:00", "--root", str(tmp_path / "root")]
    built = runner.invoke(features_app, args)
    assert built.exit_code == 0, built.output
    again = runner.invoke(features_app, ["rebuild", str(out) + ".manifest.json", "--out", str(tmp_path / "r.parquet")])
    assert again.exit_code == 0 and (tmp_path / "r.parquet").read_bytes() == out.read_bytes()
    bad = runner.invoke(features_app, [*args[:5], "--service", "nope", "--root", str(tmp_path / "root")])
    assert bad.exit_code == 2 and "default" in bad.output
