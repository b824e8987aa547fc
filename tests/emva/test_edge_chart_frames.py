"""Edge-chart frames are the optics layer's: the EMVA 1288 analysis, its operating points and
its photon-transfer curve ignore them, wherever they sit in the session."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from emva_helpers import linear_camera, render_session, write_captures

from sensorfleet.emva import CharacterizationConfig, characterize_frames, characterize_session
from sensorfleet.emva.maps import operating_points
from sensorfleet.manifest import Manifest, count_operating_points

CAMERA = linear_camera(64, 48, cfa_pattern="RGGB")


def _with_charts(frames: np.ndarray, manifest: Manifest, at: int) -> tuple[np.ndarray, Manifest]:
    """Insert two chart frames (bright noise) before frame ``at``."""
    chart = np.random.default_rng(0).integers(100, 3000, (2, *frames.shape[1:]), dtype=np.uint16)
    data = manifest.model_dump(mode="json")
    entries = [{"file": f"chart_{i}.npy", "kind": "edge_chart", "exposure_s": 0.01, "photons_per_pixel": 9000.0}
               for i in range(2)]
    data["frames"] = data["frames"][:at] + entries + data["frames"][at:]
    return np.concatenate([frames[:at], chart, frames[at:]]), Manifest.model_validate(data)


def test_emva_results_do_not_change_with_chart_frames() -> None:
    frames, manifest, _ = render_session(CAMERA, seed=2, ptc_levels=12)
    plain = characterize_frames(frames, manifest, None)
    for at in (0, 10, len(frames)):
        more, with_charts = _with_charts(frames, manifest, at)
        assert with_charts.n_operating_points == manifest.n_operating_points
        assert [p.key for p in operating_points(with_charts)] == [p.key for p in operating_points(manifest)]
        result = characterize_frames(more, with_charts, None)
        for name, value in plain.module_stats.items():
            if name in ("n_frames",):
                continue
            other = result.module_stats[name]
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(other), name
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            else:
                assert other == value or abs(other - value) <= 1e-9 * abs(value), (at, name, value, other)
        shift = (result.ptc["first_frame"] >= at).cast(int) * 2  # frames after the charts moved by 2
        assert result.ptc.with_columns(result.ptc["first_frame"] - shift).equals(plain.ptc)


def test_count_operating_points_skips_edge_charts() -> None:
    points = [("dark", 0.01, 0.0), ("flat", 0.01, 100.0), ("edge_chart", 0.01, 9000.0), ("flat", 0.01, 100.0)]
    assert count_operating_points(points) == 2


def test_banded_zarr_session_with_chart_frames(tmp_path: Path) -> None:
    """From a captures group (blocks read around the chart frames), with a maps group written."""
    frames, manifest, _ = render_session(CAMERA, seed=2, ptc_levels=12)
    plain = characterize_frames(frames, manifest, None)
    more, with_charts = _with_charts(frames, manifest, 10)
    group = write_captures(tmp_path / "S.zarr", more, with_charts, chunk_rows=16)
    result = characterize_session(group, tmp_path / "maps" / "S.zarr",
                                  CharacterizationConfig(map_band_rows=16))
    for name in ("gain_k_dn_per_e", "read_noise_e", "dsnu_e", "prnu_pct", "dark_current_e_per_s"):
        assert result.module_stats[name] == pytest.approx(plain.module_stats[name], rel=1e-6), name
