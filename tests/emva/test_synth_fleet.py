"""Characterize a small synthetic fleet (sensorfleet.synth) and compare with its ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from emva_helpers import match_blemishes, match_defects

from sensorfleet import rawio
from sensorfleet.emva import characterize_frames
from sensorfleet.manifest import load_manifest
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet

POINT_CLASSES = ["hot", "dead", "stuck", "cluster", "bad_column", "bad_row", "warm", "noisy"]


def _load(session_dir: Path) -> tuple[np.ndarray, object]:
    m = load_manifest(session_dir)
    frames = np.empty((len(m.frames), m.sensor.height, m.sensor.width), np.uint16)
    for i, f in enumerate(m.frames):
        rawio.read_frame(session_dir / f.file, m.pixel_format, m.sensor.width, m.sensor.height, out=frames[i])
    return frames, m


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, pl.DataFrame, pl.DataFrame]:
    scale = float(os.environ.get("SENSORFLEET_TEST_SCALE", "1"))
    root = tmp_path_factory.mktemp("fleet")
    modules = max(10, int(10 * scale))
    cfg = FleetConfig(modules=modules, seed=5, width=320, height=240, pixel_format="npy", fault_fraction=0.5, workers=2)
    generate_fleet(cfg, root / "landing", root / "truth")
    truth = pl.read_parquet(root / "truth" / "modules.parquet")
    defects = pl.read_parquet(root / "truth" / "defects.parquet")
    results = []
    for sid in truth["session_id"].to_list():
        frames, m = _load(root / "landing" / sid)
        results.append(characterize_frames(frames, m, None))  # type: ignore[arg-type]
    return results, truth, defects


def test_fleet_metrics_against_truth(fleet: tuple) -> None:
    results, truth, _ = fleet
    for res in results:
        s = res.module_stats
        t = truth.filter(pl.col("session_id") == s["session_id"]).row(0, named=True)
        where = f"{s['session_id']} ({t['fault_class']})"
        assert s["gain_k_dn_per_e"] == pytest.approx(t["system_gain_dn_per_e"], rel=0.01), where
        assert s["read_noise_e"] == pytest.approx(t["read_noise_e"], rel=0.03), where
        assert s["dark_current_e_per_s"] == pytest.approx(t["dark_current_e_per_s"], rel=0.03), where
        assert s["dsnu_e"] == pytest.approx(t["dsnu_e"], rel=0.05), where
        assert s["prnu_pct"] == pytest.approx(t["prnu_pct"], rel=0.05), where


def test_fleet_defects_against_truth(fleet: tuple) -> None:
    """Pooled over the fleet: every class recalled >= 99 % with >= 99 % precision, blemishes >= 95 %."""
    results, _, defects = fleet
    truth_px: list[tuple[int, int, str]] = []
    found: list[pl.DataFrame] = []
    blemishes: list[tuple[float, float, float]] = []
    for k, res in enumerate(results):
        sid = res.module_stats["session_id"]
        td = defects.filter(pl.col("session_id") == sid)
        off = 100_000 * k  # keep modules apart when pooling pixel positions
        for x, y, c, cid in td.select("x", "y", "class", "cluster_id").iter_rows():
            if c == "blemish":
                continue
            truth_px.append((x + off, y, "cluster" if cid is not None else c))
        found.append(res.defects.with_columns(pl.col("x") + off))
        blem = td.filter(pl.col("class") == "blemish")
        blemishes += [(x + off, y, r) for x, y, r in blem.select("x", "y", "radius_px").iter_rows()]
    pooled = pl.concat(found)
    classes = {c for _, _, c in truth_px}
    assert {"hot", "dead", "cluster", "bad_column"} <= classes, classes  # the fleet exercises them
    scores = match_defects(truth_px, pooled, POINT_CLASSES)
    for c, (recall, precision) in scores.items():
        assert recall >= 0.99 and precision >= 0.99, (c, recall, precision)
    assert len(blemishes) >= 2
    recall, precision = match_blemishes(blemishes, pooled)
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)
