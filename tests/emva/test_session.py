"""Sessions from zarr: maps group contents, atomic publish, the day run, idempotence, kernels, plots."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import zarr
from emva_helpers import NO_DEFECTS, linear_camera, render_session, write_captures

from sensorfleet.config import Paths
from sensorfleet.emva import (
    DEFECT_CODES,
    CharacterizationConfig,
    characterize_day,
    characterize_frames,
    characterize_session,
    load_maps,
    load_session_rows,
    plot_defect_map,
    plot_ptc,
)
from sensorfleet.emva.session import open_captures
from sensorfleet.synth.params import DefectCounts
from sensorfleet.tables import read_partition

SMALL = linear_camera(96, 80, defects=DefectCounts(hot=4, warm=3, dead=4, stuck=3, noisy=3, clusters=2, bad_columns=1,
                                                   bad_rows=1, blemishes=1))
SMALL_PLAN = {"ptc_levels": 12}


@pytest.fixture(scope="module")
def small() -> tuple:
    return render_session(SMALL, seed=4, session_id="S-1", **SMALL_PLAN)


def test_odd_width_uses_fallback(small: tuple) -> None:
    frames, manifest, _ = small
    odd = manifest.model_copy(update={"sensor": manifest.sensor.model_copy(update={"width": 95})})
    res = characterize_frames(np.ascontiguousarray(frames[:, :, :95]), odd, None)
    full = characterize_frames(frames, manifest, None)
    assert res.module_stats["gain_k_dn_per_e"] == pytest.approx(full.module_stats["gain_k_dn_per_e"], rel=0.02)


def test_session_from_zarr_writes_maps(tmp_path: Path, small: tuple) -> None:
    frames, manifest, _truth = small
    cap = write_captures(tmp_path / "S-1.zarr", frames, manifest, chunk_rows=24)
    out = tmp_path / "maps" / "S-1.zarr"
    res = characterize_session(cap, out)
    ref = characterize_frames(frames, manifest, None)
    for key, a in ref.module_stats.items():  # zarr input == numpy input, exactly
        b = res.module_stats[key]
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), key
    maps = load_maps(out)
    for name in ("dark_offset_dn", "dark_current_dn_per_s", "temporal_dark_noise_dn", "prnu_relative"):
        assert maps[name].dtype == np.float32 and maps[name].shape == (80, 96)
    assert maps["defect_class"].dtype == np.uint8
    assert float(np.median(maps["prnu_relative"])) == pytest.approx(1.0, abs=1e-3)
    assert np.count_nonzero(maps["defect_class"] == DEFECT_CODES["hot"]) == res.defects.filter(pl.col("defect_class") == "hot").height
    attrs = dict(zarr.open_group(str(out), mode="r").attrs)
    assert attrs["source_content_hash"] == "sha-1" and attrs["complete"] is True
    assert attrs["module_stats"]["session_id"] == "S-1"
    assert [p.name for p in out.parent.iterdir()] == ["S-1.zarr"]  # no temp left behind
    stored = load_session_rows(out)
    assert stored.defects.equals(res.defects)
    assert stored.ptc.select(res.ptc.columns).equals(res.ptc)
    assert stored.module_stats["gain_k_dn_per_e"] == res.module_stats["gain_k_dn_per_e"]
    # rewrite over an existing group: replaced atomically
    characterize_session(cap, out)
    assert [p.name for p in out.parent.iterdir()] == ["S-1.zarr"]


def test_incomplete_captures_refused(tmp_path: Path, small: tuple) -> None:
    frames, manifest, _ = small
    cap = write_captures(tmp_path / "S-1.zarr", frames[:, :8], manifest.model_copy(update={}), chunk_rows=8)
    zarr.open_group(str(cap), mode="a").attrs["complete"] = False
    with pytest.raises(ValueError, match="S-1.zarr.*not complete"):
        characterize_session(cap, tmp_path / "m.zarr")


def test_open_captures_reads_the_group_attributes_as_zarr_does_and_names_what_is_missing(
        tmp_path: Path, small: tuple) -> None:
    frames, manifest, _ = small
    cap = write_captures(tmp_path / "S-1.zarr", frames[:, :8], manifest, chunk_rows=8)
    reader, got, attrs = open_captures(cap)
    assert attrs == dict(zarr.open_group(str(cap), mode="r").attrs) and got == manifest
    assert np.array_equal(reader[0], frames[0, :8])
    with pytest.raises(FileNotFoundError, match="nothing.zarr: not a readable zarr group"):
        open_captures(tmp_path / "nothing.zarr")
    shutil.rmtree(cap / "frames")
    with pytest.raises(ValueError, match="S-1.zarr: captures group has no 'frames' array"):
        open_captures(cap)


def test_characterize_day(tmp_path: Path, small: tuple) -> None:
    frames, manifest, _ = small
    paths = Paths(root=tmp_path / "data", landing=tmp_path / "landing")
    day = manifest.capture_date
    (paths.captures / day).mkdir(parents=True)
    write_captures(paths.captures / day / "S-1.zarr", frames, manifest)
    f2, m2, _ = render_session(SMALL, seed=9, session_id="S-2", **SMALL_PLAN)
    write_captures(paths.captures / day / "S-2.zarr", f2, m2, content_hash="sha-2")
    bad = m2.model_copy(update={"session_id": "S-3"})
    write_captures(paths.captures / day / "S-3.zarr", f2[:, :, :-1], bad, content_hash="sha-3")
    (paths.captures / day / ".tmp").mkdir()
    seen: list[str] = []
    rep = characterize_day(paths, day, workers=2, progress=lambda d, t, s: seen.append(s))
    assert rep.characterized == ["S-1", "S-2"] and rep.skipped == []
    assert "S-3" in rep.failed and "expected shape" in rep.failed["S-3"]
    assert sorted(seen) == ["S-1", "S-2", "S-3"]
    ms = read_partition(paths.tables, "module_stats", day)
    assert ms.height == 2 and {"captured_at", "written_at", "gain_k_dn_per_e", "hot_pixels"} <= set(ms.columns)
    pdf = read_partition(paths.tables, "pixel_defects", day)
    assert pdf.height == rep.defect_rows > 0 and "written_at" in pdf.columns
    assert read_partition(paths.tables, "module_channel_stats", day).height == 0  # mono
    assert rep.worst_session_id in ("S-1", "S-2") and rep.worst_ptc is not None
    written = ms.sort("session_id")["written_at"].to_list()
    # second run: nothing recomputed, same rows
    rep2 = characterize_day(paths, day, workers=1)
    assert rep2.skipped == ["S-1", "S-2"] and rep2.characterized == []
    ms2 = read_partition(paths.tables, "module_stats", day).sort("session_id")
    assert ms2["written_at"].to_list() == written
    assert ms2["gain_k_dn_per_e"].to_list() == ms.sort("session_id")["gain_k_dn_per_e"].to_list()
    assert isinstance(ms2["captured_at"][0], datetime) and ms2["captured_at"][0].tzinfo is not None
    assert ms2["captured_at"][0] == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_plots_are_png(small: tuple) -> None:
    frames, manifest, _ = small
    res = characterize_frames(frames, manifest, None)
    png = plot_ptc(res.ptc, float(res.module_stats["gain_k_dn_per_e"]))  # type: ignore[arg-type]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_defect_map(res.defects, 96, 80)[:4] == b"\x89PNG"
    assert plot_defect_map(np.zeros((80, 96), np.uint8), 96, 80)[:4] == b"\x89PNG"


class _Reader:
    """A frame source that is not an in-memory stack (read block by block, like zarr)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.shape = frames.shape

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.array(self.frames[key])


@pytest.mark.parametrize("max_block_bytes", [1, 40_000])
def test_blocked_reads_match_in_place(small: tuple, max_block_bytes: int) -> None:
    """Points split over several blocks (band-level accumulators) give the in-place answers."""
    frames, manifest, _ = small
    full = characterize_frames(frames, manifest, None)
    cfg = CharacterizationConfig(band_rows=6, min_band_bytes=1, max_block_bytes=max_block_bytes)
    res = characterize_frames(_Reader(frames), manifest, None, cfg)
    for k, v in full.module_stats.items():
        if isinstance(v, float) and math.isfinite(v):
            assert res.module_stats[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    assert res.defects.sort("y", "x").equals(full.defects.sort("y", "x"))


def test_session_without_defects_round_trips(tmp_path: Path) -> None:
    """A session with an empty defect table writes and reloads (64 x 48, no planted defects)."""
    p = linear_camera(64, 48, defects=NO_DEFECTS)
    frames, manifest, _ = render_session(p, seed=3, session_id="S-empty", ptc_levels=8)
    res = characterize_frames(frames, manifest, tmp_path / "m.zarr")
    back = load_session_rows(tmp_path / "m.zarr")
    assert back.defects.height == res.defects.height
    assert back.module_stats["gain_k_dn_per_e"] == pytest.approx(res.module_stats["gain_k_dn_per_e"])


def test_long_plot_title_is_wrapped(small: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long title (session ids run to 128 characters) stays inside the figure."""
    from sensorfleet.emva import plots

    frames, manifest, _ = small
    res = characterize_frames(frames, manifest, None)
    figs: list = []
    real_png = plots.figure_png
    def keep(fig: Any) -> bytes:
        figs.append(fig)
        return real_png(fig)

    monkeypatch.setattr(plots, "figure_png", keep)
    png = plot_ptc(res.ptc, None, title="CM-1-000000-20260302T094428 " * 5)
    assert png[:4] == b"\x89PNG"
    fig = figs[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    box = fig.axes[0].title.get_window_extent(FigureCanvasAgg(fig).get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def test_damaged_captures_group_is_named(tmp_path: Path, small: tuple) -> None:
    """A chunk file missing from a group ingest wrote is an error naming the file, not a frame
    band of zeros characterized as if it were data; the day run lists the session as failed."""
    from sensorfleet.ingest.store import IncompleteSessionError

    frames, manifest, _ = small
    day = manifest.capture_date
    paths = Paths(root=tmp_path / "root", landing=tmp_path / "landing")
    cap = write_captures(paths.captures / day / "S-1.zarr", frames, manifest, chunk_rows=24)
    group = zarr.open_group(str(cap), mode="a")
    group.attrs["sensorfleet_version"] = "test"  # written by ingest: every chunk exists
    arr: Any = group["frames"]
    missing = cap / "frames" / arr.metadata.encode_chunk_key((5, 1, 0))
    missing.unlink()
    with pytest.raises(IncompleteSessionError, match="chunk file missing"):
        characterize_session(cap, tmp_path / "m.zarr")
    report = characterize_day(paths, day, workers=1)
    assert "chunk file missing" in report.failed["S-1"] and str(missing) in report.failed["S-1"]


def test_operating_points_counted_as_in_sessions(small: tuple) -> None:
    """``module_stats.n_operating_points`` counts distinct (kind, exposure_s, photons_per_pixel) like
    the ``sessions`` table, also when a point's frames come in two runs (which the PTC keeps apart)."""
    frames, manifest, _ = small
    kinds = [(f.kind, f.exposure_s) for f in manifest.frames]
    spatial = [i for i, k in enumerate(kinds) if k == ("dark", 0.01)]
    other = [i for i, k in enumerate(kinds) if k == ("dark", 0.1)]
    assert len(spatial) >= 4 and other == list(range(other[0], other[0] + len(other)))
    moved = spatial[-2:]  # the last two frames of the 0.01 s darks go after the 0.1 s darks: two runs
    order = [i for i in range(other[-1] + 1) if i not in moved] + moved + list(range(other[-1] + 1, len(kinds)))
    split = manifest.model_copy(update={"frames": [manifest.frames[i] for i in order]})
    res = characterize_frames(np.ascontiguousarray(frames[order]), split, None)
    distinct = len({f.operating_point for f in manifest.frames})
    assert split.n_operating_points == manifest.n_operating_points == distinct
    assert res.module_stats["n_operating_points"] == distinct
    assert res.ptc.filter(pl.col("kind") == "dark").height == len({k for k in kinds if k[0] == "dark"}) + 1
