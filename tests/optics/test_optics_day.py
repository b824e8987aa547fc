"""The optics day runner on an ingested synthetic fleet with edge charts: tables, curves, truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sensorfleet.config import Paths
from sensorfleet.emva import characterize_day
from sensorfleet.emva.flatblocks import GRID, stored_means
from sensorfleet.emva.session import open_captures
from sensorfleet.ingest import ingest_day, list_ingested
from sensorfleet.optics import characterize_optics_day
from sensorfleet.optics.chart import analyse_chart
from sensorfleet.optics.day import SESSION_CURVES_SUFFIX, curves_path, read_curves
from sensorfleet.optics.session import (
    _shading_frames,
    flat_site_blocks,
    session_optics,
    write_curves,
)
from sensorfleet.optics.shading import shading
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet
from sensorfleet.tables import read_partition, stored_fingerprint

DAY = "2026-03-02"
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def day_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, pl.DataFrame, object]:
    base = tmp_path_factory.mktemp("optics_day")
    paths = Paths(root=base / "root", landing=base / "landing")
    common = {"start": START, "span_days": 0.2, "workers": 1, "fault_fraction": 0.0, "pixel_format": "npy"}
    generate_fleet(FleetConfig(modules=3, seed=4, edge_charts=True, **common), paths.landing, base / "truth")
    generate_fleet(FleetConfig(modules=1, seed=5, **common), paths.landing, base / "truth")  # no chart
    generate_fleet(FleetConfig(modules=1, seed=6, width=128, height=96, edge_charts=True, **common),
                   paths.landing, base / "truth")  # chart squares too small to find
    ingest_day(paths, DAY, workers=1)
    report = characterize_optics_day(paths, DAY)
    return paths, pl.read_parquet(base / "truth" / "modules.parquet"), report


def test_tables_and_curves_are_written(day_run: tuple) -> None:
    paths, truth, report = day_run
    assert not report.failed and len(report.sessions) == 5
    sfr = read_partition(paths.tables, "sfr", DAY)
    module = read_partition(paths.tables, "module_optics", DAY)
    assert module.height == 5
    charts = truth.filter(pl.col("lens_sigma0_px").is_not_null() & (pl.col("width") == 640))
    for sid in charts["session_id"]:
        rows = sfr.filter(pl.col("session_id") == sid)
        assert rows.height == 36 * 5 and (rows.filter(pl.col("channel") == "L")["quality"] == "ok").sum() >= 34
        curves = read_curves(report.curves, sid)
        assert curves["session_id"].unique().to_list() == [sid]
        assert curves.filter(pl.col("channel") == "L")["edge_id"].n_unique() >= 34
    plain = module.filter(pl.col("chart_frames") == 0)
    assert plain.height == 1 and plain["mtf50_center_cy_per_px"].is_null().all()
    assert plain["relative_illumination_g"].is_not_null().all()
    small = truth.filter(pl.col("width") == 128)["session_id"][0]
    lost = sfr.filter(pl.col("session_id") == small)
    assert lost.height == 1 and lost["quality"][0] == "not_found" and "frame_" in lost["reason"][0]
    assert report.worst_session_id in set(charts["session_id"])


def test_module_optics_against_the_truth(day_run: tuple) -> None:
    paths, truth, _ = day_run
    module = read_partition(paths.tables, "module_optics", DAY).join(truth, on="session_id")
    for row in module.filter(pl.col("chart_frames") > 0, pl.col("width") == 640).iter_rows(named=True):
        assert row["mtf50_center_cy_per_px"] == pytest.approx(row["mtf50_center_true_cy_per_px"], rel=0.05)
        assert row["mtf50_corner_min_cy_per_px"] == pytest.approx(row["mtf50_corner_min_true_cy_per_px"], rel=0.08)
        assert row["colour_shading_r_pct"] == pytest.approx(row["colour_shading_r_true_pct"], abs=0.6)
        assert row["colour_shading_b_pct"] == pytest.approx(row["colour_shading_b_true_pct"], abs=0.6)
        assert row["relative_illumination_g"] == pytest.approx(row["relative_illumination_g_true"], abs=0.01)


def test_a_rerun_keeps_the_rows_and_their_written_at(day_run: tuple) -> None:
    paths, _, _ = day_run
    before = read_partition(paths.tables, "module_optics", DAY)
    characterize_optics_day(paths, DAY)
    after = read_partition(paths.tables, "module_optics", DAY)
    assert after.equals(before)


def test_module_rows_equal_the_mean_frames_path(day_run: tuple) -> None:
    """The day runner sums frames in integers and takes the flat's block means from the sums: its
    rows equal those of float64 mean frames (the chart analysed as before, :func:`shading` on the
    dark-subtracted mean flat) to float rounding."""
    paths, _, report = day_run
    module = read_partition(paths.tables, "module_optics", DAY)
    sfr = read_partition(paths.tables, "sfr", DAY)
    for group in list_ingested(paths, DAY):
        frames, manifest, _ = open_captures(group)

        def mean(indices: list[int], frames: object = frames) -> np.ndarray:
            return np.mean([frames[i].astype(np.float64) for i in indices], axis=0)  # type: ignore[index]

        row = module.filter(pl.col("session_id") == manifest.session_id).row(0, named=True)
        flat, dark = _shading_frames(manifest) or ([], [])
        expected = shading(mean(flat) - mean(dark), manifest.sensor.cfa_pattern)
        for name, value in expected.relative_illumination.items():
            assert row[f"relative_illumination_{'g' if name == 'mono' else name.lower()}"] == pytest.approx(value, rel=1e-12)
        assert row["colour_shading_r_pct"] == pytest.approx(expected.colour_shading_r_pct, rel=1e-10)
        assert row["colour_shading_b_pct"] == pytest.approx(expected.colour_shading_b_pct, rel=1e-10)
        charts = [i for i, f in enumerate(manifest.frames) if f.kind == "edge_chart"]
        if charts and manifest.sensor.width == 640:
            edges = analyse_chart(mean(charts), manifest.sensor.cfa_pattern, 4095.0)
            mine = sfr.filter(pl.col("session_id") == manifest.session_id).sort("edge_id", "channel")
            assert mine["mtf50_cy_per_px"].to_list() == [
                None if math.isnan(m.mtf50_cy_per_px) else m.mtf50_cy_per_px
                for m in sorted(edges, key=lambda m: (m.roi.edge_id, m.channel))]


def test_the_day_curve_file_holds_each_sessions_curves_and_replaces_the_sidecars(day_run: tuple) -> None:
    paths, _, report = day_run
    assert report.curves == curves_path(paths, DAY)
    day_curves = read_curves(report.curves)
    sessions = []
    for group in list_ingested(paths, DAY):
        frames, manifest, _ = open_captures(group)
        own = session_optics(frames, manifest, datetime.now(UTC)).curves
        if own.height:
            sessions.append(manifest.session_id)
            assert read_curves(report.curves, manifest.session_id).equals(own)  # the same values, in order
    assert day_curves["session_id"].unique(maintain_order=True).to_list() == sorted(sessions)
    assert day_curves.height == sum(read_curves(report.curves, s).height for s in sessions)
    stale = write_curves(day_curves.head(3), paths.maps / DAY / f"{sessions[0]}{SESSION_CURVES_SUFFIX}")
    characterize_optics_day(paths, DAY)
    assert not stale.exists() and read_curves(report.curves).equals(day_curves)


def test_the_flat_blocks_come_from_the_characterization_when_it_is_current(
        day_run: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The characterization publishes the spatial flat's block means (from its mean maps) in each
    maps group; they equal the ones the optics step sums from the frames, and a run after the
    characterization takes them from there and gives the same rows; a stale group is ignored."""
    paths, _, _ = day_run
    other = Paths(root=tmp_path / "root", landing=tmp_path / "landing")
    other.root.mkdir()
    (other.root / "captures").symlink_to(paths.captures, target_is_directory=True)
    characterize_day(other, DAY, workers=1)
    from_frames = characterize_optics_day(other, DAY).module_optics
    for group in list_ingested(other, DAY):
        frames, manifest, attrs = open_captures(group)
        mine = flat_site_blocks(frames, manifest)
        stored = stored_means(other.maps / DAY / group.name, attrs["content_hash"], (4, GRID, GRID))
        assert mine is not None and stored is not None
        np.testing.assert_allclose(stored, mine, rtol=1e-6)  # float32 mean maps against integer sums
        assert stored_means(other.maps / DAY / group.name, "xxh3_128:other", (4, GRID, GRID)) is None

    def no_frames(*_: object) -> None:
        raise AssertionError("the flat frames were read although the maps group holds their blocks")

    monkeypatch.setattr("sensorfleet.optics.session.flat_site_blocks", no_frames)
    report = characterize_optics_day(other, DAY)
    assert not report.failed
    from_maps = report.module_optics
    shading_columns = [c for c in from_maps.columns if c.startswith(("relative_illumination", "colour_shading"))]
    assert from_maps.select(shading_columns).to_numpy() == pytest.approx(
        from_frames.select(shading_columns).to_numpy(), rel=1e-6, nan_ok=True)


def test_a_rerun_leaves_an_unchanged_curve_file_alone_and_rewrites_a_different_one(day_run: tuple) -> None:
    paths, _, report = day_run
    day_curves = read_curves(report.curves)
    before = report.curves.stat()
    characterize_optics_day(paths, DAY)
    after = report.curves.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    write_curves(day_curves.head(5), report.curves)  # not the day's curves any more
    characterize_optics_day(paths, DAY)
    assert read_curves(report.curves).equals(day_curves)


def test_an_unchanged_curve_file_is_known_from_its_fingerprint(day_run: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """The curve file carries the fingerprint of its curves: a rerun leaves it alone without
    reading it; a file without one (an earlier version's) is read and compared, and left alone
    when it holds the day's curves."""
    import sensorfleet.optics.day as day_module

    paths, _, report = day_run
    characterize_optics_day(paths, DAY)
    day_curves = read_curves(report.curves)
    fingerprint = stored_fingerprint(report.curves)
    assert fingerprint is not None and fingerprint.startswith(b"sha256 ")
    before = report.curves.stat()
    with monkeypatch.context() as m:
        m.setattr(day_module, "_holds", lambda *a: pytest.fail("the stored curves were read"))
        characterize_optics_day(paths, DAY)
    after = report.curves.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    write_curves(day_curves, report.curves)  # the same curves, no fingerprint
    before = report.curves.stat()
    characterize_optics_day(paths, DAY)
    after = report.curves.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert stored_fingerprint(report.curves) is None and read_curves(report.curves).equals(day_curves)
    report.curves.unlink()
    characterize_optics_day(paths, DAY)
    assert stored_fingerprint(report.curves) == fingerprint and read_curves(report.curves).equals(day_curves)


def test_worst_module_is_the_lowest_measured_corner_else_centre() -> None:
    from sensorfleet.optics.day import worst_module

    corner, centre = "mtf50_corner_min_cy_per_px", "mtf50_center_cy_per_px"
    rows = pl.DataFrame({"session_id": ["a", "b", "c", "d"], corner: [0.3, None, float("nan"), 0.2],
                         centre: [0.1, 0.05, 0.4, 0.3]})
    assert worst_module(rows) == "d"
    assert worst_module(rows.with_columns(pl.lit(None).alias(corner))) == "b"  # no corner measured
    assert worst_module(rows.with_columns(pl.lit(float("nan")).alias(corner), pl.lit(None).alias(centre))) is None
    assert worst_module(rows.with_columns(pl.Series(corner, [0.2, None, 0.2, 0.2]))) == "a"  # a tie: the first row
    assert worst_module(pl.DataFrame()) is None
