"""The CLI runner: two runs of one capture day never overlap (the day's run lock)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
from tiny_landing import make_session  # noqa: E402  (the tiny-session helper of tests/assets)

from pipelines.runner import PipelineSummary, run_pipeline  # noqa: E402
from sensorfleet.config import resolve_paths  # noqa: E402
from sensorfleet.locks import day_run_lock_file, file_lock  # noqa: E402

DAY = "2024-05-01"


def test_a_second_run_of_a_day_waits_for_the_first(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    make_session(paths.landing, "a", f"{DAY}T10:00:00+00:00", seed=1)
    waiting = threading.Event()
    waited_on: list[Path] = []
    summaries: list[PipelineSummary] = []

    def on_wait(day: str, lock_file: Path) -> None:
        waited_on.append(lock_file)
        waiting.set()

    def second_run() -> None:
        summaries.append(run_pipeline(paths, select=["captures"], days=[DAY], on_day_wait=on_wait))

    with file_lock(day_run_lock_file(paths, DAY)) as held:  # the first run, as another process would hold it
        assert held
        runner = threading.Thread(target=second_run)
        runner.start()
        assert waiting.wait(120), "the second run did not report that it waits"
        runner.join(1.0)
        assert runner.is_alive()  # still waiting: it has not run the day
        assert not (paths.captures / DAY).exists()
    runner.join(300)
    assert not runner.is_alive()
    assert waited_on == [day_run_lock_file(paths, DAY)]
    (summary,) = summaries
    assert summary.ok and summary.days[0].ingested == 1
    assert (paths.captures / DAY / "a.zarr").is_dir()


def test_a_free_day_runs_without_waiting(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    make_session(paths.landing, "a", f"{DAY}T10:00:00+00:00", seed=1)
    waits: list[str] = []
    summary = run_pipeline(paths, select=["captures"], days=[DAY], on_day_wait=lambda day, _: waits.append(day))
    assert summary.ok and waits == []
    with file_lock(day_run_lock_file(paths, DAY), blocking=False) as held:
        assert held  # released after the run


def test_a_run_over_several_days_draws_the_station_charts_on_its_last_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import AssetKey

    from assets.stations import CHART_NOT_DRAWN, STATION_SPC
    from pipelines.runner import prepare_instance
    from pipelines.up_to_date import latest_materialization, metadata_value
    from tests.stations.station_fleet import fleet_modules, write_module_stats

    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    days = write_module_stats(paths.tables, fleet_modules(4, days=12))[-3:]
    for day in days:  # the days' sessions as ingest leaves them (the station step reads module_stats)
        (paths.captures / day / "session.zarr").mkdir(parents=True)
    import pipelines.runner

    helpers: list[str] = []
    monkeypatch.setattr(pipelines.runner, "start_helper", lambda: helpers.append("started") or True)
    summary = run_pipeline(paths, select=["stations"], days=days, figure_helper=True)
    assert summary.ok and [d.run_id is not None for d in summary.days] == [True, True, True]
    assert helpers == ["started"]  # several days: the figure helper is worth its start
    instance = prepare_instance(paths)

    def chart(day: str) -> str:
        record = latest_materialization(instance, AssetKey(STATION_SPC), day)
        assert record is not None
        return str(metadata_value(record, "station_charts"))

    assert [chart(d) for d in days[:2]] == [CHART_NOT_DRAWN.format(day=d) for d in days[:2]]
    assert "data:image/png;base64," in chart(days[2])
    assert [(paths.root / "plots" / d / "station-spc.png").is_file() for d in days] == [False, False, True]
    single = run_pipeline(paths, select=["stations"], days=[days[0]], force=True, figure_helper=True)
    assert single.ok and "data:image/png;base64," in chart(days[0])  # one day: drawn
    assert helpers == ["started"]  # and no helper started for one day


def test_an_interrupted_day_stops_the_run_and_the_next_command_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during a day's run (Dagster turns SIGINT into an interruption of the step): the
    days after it are not run, nor the labels and warehouse; run again, it goes on."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    import assets.stations
    from tests.stations.station_fleet import fleet_modules, write_module_stats

    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    days = write_module_stats(paths.tables, fleet_modules(4, days=12))[-3:]
    for day in days:
        (paths.captures / day / "session.zarr").mkdir(parents=True)
    real = assets.stations.watch_stations_day

    def interrupted_on_the_second_day(p, day, config):  # type: ignore[no-untyped-def]
        if day == days[1]:
            raise DagsterExecutionInterruptedError()
        return real(p, day, config)

    monkeypatch.setattr(assets.stations, "watch_stations_day", interrupted_on_the_second_day)
    summary = run_pipeline(paths, select=["stations", "warehouse"], days=days)
    assert [d.day for d in summary.days] == days[:2] and summary.not_run == days[2:]
    assert summary.interrupted and summary.days[1].interrupted and not summary.days[0].interrupted
    assert summary.fleet is None and not (paths.root / "warehouse.duckdb").exists()
    monkeypatch.setattr(assets.stations, "watch_stations_day", real)
    again = run_pipeline(paths, select=["stations", "warehouse"], days=days)
    assert again.ok and not again.interrupted and [d.day for d in again.days] == days and again.fleet is not None
