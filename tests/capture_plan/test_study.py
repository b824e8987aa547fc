"""The capture-plan study on a tiny synthetic fleet (8 modules of 64 x 48): the table it writes,
the recommendation against the tolerances and a decision check, and the deviations growing as
frames are dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from models.fleet import build_fleet
from sensorfleet.capture_plan.study import (
    NO_CHAMPION,
    Decisions,
    StudyResult,
    StudySettings,
    run_study,
    study_sessions,
)
from sensorfleet.capture_plan.tolerance import DEFAULT_TOLERANCES, Tolerance
from sensorfleet.config import Paths
from sensorfleet.registry import CAPTURE_PLANS
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.tables import read_partition

FLEET = FleetConfig(modules=8, seed=11, width=64, height=48, span_days=2.0, stations=1, workers=1,
                    start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return build_fleet(tmp_path_factory.mktemp("plan-fleet"), FLEET, workers=1)


@pytest.fixture(scope="module")
def study(fleet: Paths) -> StudyResult:
    return run_study(fleet, StudySettings(workers=1), now=NOW)


def _eligible(plans: pl.DataFrame, max_share: float) -> pl.DataFrame:
    return plans.filter(pl.col("metrics_within_tolerance") & (pl.col("failed_modules") == 0) & (
        pl.col("changed_decisions_share").is_null() | (pl.col("changed_decisions_share") <= max_share)))


def test_the_study_writes_its_table_and_recommends_the_shortest_plan_within_tolerance(fleet: Paths,
                                                                                      study: StudyResult) -> None:
    plans = study.plans
    stored = read_partition(fleet.tables, CAPTURE_PLANS.name, "2026-04-01").drop("study_date")
    assert stored.equals(CAPTURE_PLANS.conform(plans))
    assert len(study.sessions) == 8 and set(plans["modules"].to_list()) == {8}
    full = plans.filter(pl.col("plan_id") == "full").row(0, named=True)
    assert full["worst_tolerance_ratio"] == 0.0 and full["station_time_saved_pct"] == 0.0
    assert full["station_time_s"] == plans["station_time_s"].max()
    best = study.recommended
    assert plans["recommended"].sum() == 1 and best["metrics_within_tolerance"]
    assert best["worst_tolerance_ratio"] <= 1.0 and best["station_time_s"] < full["station_time_s"]
    assert best["station_time_s"] == _eligible(plans, 0.02)["station_time_s"].min()
    # metrics only without a decision check, and said so
    assert set(plans["models"].to_list()) == {NO_CHAMPION} and plans["changed_decisions_share"].is_null().all()
    # each row's worst metric is the largest deviation / tolerance among the metrics of its plan
    worst = study.deviations.group_by("plan_id").agg(pl.col("ratio").max().alias("r"))
    joined = plans.join(worst, on="plan_id")
    assert (joined["worst_tolerance_ratio"] == joined["r"]).all()


def test_deviation_grows_as_frames_are_dropped(study: StudyResult) -> None:
    devs = study.deviations
    def dsnu(plan: str) -> float:
        return float(devs.filter((pl.col("plan_id") == plan) & (pl.col("metric") == "dsnu_e"))["deviation"].item())
    assert dsnu("full") == 0.0 < dsnu("f8") < dsnu("f4") < dsnu("f2")
    # fewer dark exposures: only the dark-signal metrics move, the spatial series stay exact
    darks = devs.filter(pl.col("plan_id").str.starts_with("d"))
    assert darks.filter(pl.col("metric").is_in(["gain_k_dn_per_e", "prnu_pct"]))["deviation"].max() == 0.0
    assert darks.filter(pl.col("metric") == "dark_current_e_per_s")["deviation"].min() > 0.0


def test_tolerances_move_the_recommendation(fleet: Paths) -> None:
    loose = tuple(Tolerance(t.metric, 1e9, False) for t in DEFAULT_TOLERANCES)
    shortest = run_study(fleet, StudySettings(tolerances=loose, modules=3, workers=1), write=False)
    assert shortest.recommended["station_time_s"] == shortest.plans["station_time_s"].min()
    exact = tuple(Tolerance(t.metric, 1e-12, t.relative) for t in DEFAULT_TOLERANCES)
    strict = run_study(fleet, StudySettings(tolerances=exact, modules=3, workers=1), write=False)
    best = strict.recommended
    assert best["worst_tolerance_ratio"] <= 1.0 and best["station_time_s"] > shortest.recommended["station_time_s"]
    # every shorter plan it passed over is outside the (exact) tolerance
    shorter = strict.plans.filter(pl.col("station_time_s") < best["station_time_s"])
    assert shorter.height and not shorter["metrics_within_tolerance"].any()


def test_changed_decisions_veto_a_plan(fleet: Paths, study: StudyResult) -> None:
    vetoed = study.recommended["plan_id"]

    def check(modules: pl.DataFrame, channels: pl.DataFrame) -> Decisions:
        per_plan = modules.group_by("plan_id").agg(pl.len().alias("decisions_checked")).with_columns(
            changed=pl.when(pl.col("plan_id") == vetoed).then(pl.col("decisions_checked")).otherwise(0),
            yield_changed=pl.lit(0), alarms_changed=pl.when(pl.col("plan_id") == vetoed).then(1).otherwise(0))
        return Decisions(per_plan, "a test check")

    result = run_study(fleet, StudySettings(workers=1), check, write=False)
    row = result.plans.filter(pl.col("plan_id") == vetoed).row(0, named=True)
    assert row["changed_decisions_share"] == 1.0 and row["decisions_checked"] == 8 and not row["recommended"]
    assert result.recommended["plan_id"] != vetoed and result.recommended["models"] == "a test check"
    assert result.recommended["station_time_s"] >= study.recommended["station_time_s"]


def test_sessions_by_days_and_modules(fleet: Paths) -> None:
    every = study_sessions(fleet)
    assert len(every) == 8 and len({s.module_id for s in every}) == 8
    latest = study_sessions(fleet, days=1)
    assert 0 < len(latest) < 8 and {s.day for s in latest} == {max(s.day for s in every)}
    picked = study_sessions(fleet, modules=3)
    assert [s.session_id for s in picked] == [every[0].session_id, every[4].session_id, every[7].session_id]


@pytest.mark.parametrize(("bad", "message"), [
    (dict(coverage=0.0), "coverage"), (dict(max_changed_share=1.5), "max_changed_share"),
    (dict(frame_overhead_s=-0.1), "frame_overhead_s"), (dict(days=0), "days"), (dict(modules=0), "modules"),
    (dict(tolerances=()), "tolerance"),
])
def test_bad_settings_say_what_is_wrong(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StudySettings(**bad)  # type: ignore[arg-type]


def test_an_empty_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no module_stats rows"):
        run_study(Paths(root=tmp_path, landing=tmp_path / "landing"), StudySettings(workers=1))
