"""Test helpers: the test camera and capture plan (built on the core simulator), defect matching
against truth, captures groups built from numpy stacks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr
from zarr.codecs import BloscCodec

from sensorfleet.manifest import Manifest
from sensorfleet.synth.params import DefectCounts, ModuleParams
from sensorfleet.synth.physics import ModuleMaps
from sensorfleet.synth.plan import CapturePlan, PlannedFrame
from sensorfleet.synth.session import simulate_session

LINE_CLASSES = {"bad_column", "bad_row"}

#: the defects of the test camera (every class, a few of each)
TEST_DEFECTS = DefectCounts(hot=12, warm=12, dead=12, stuck=8, noisy=10, clusters=4, bad_columns=1, bad_rows=1,
                            blemishes=2)
NO_DEFECTS = DefectCounts()
BLEMISH_RADIUS_PX = (6.0, 10.0)


def linear_camera(width: int = 160, height: int = 128, *, cfa_pattern: str = "mono",
                defects: DefectCounts = TEST_DEFECTS, **overrides: Any) -> ModuleParams:
    """The EMVA 1288 linear camera the characterization tests recover: K = 0.25 DN/e-, QE 0.6,
    read noise 6 e-, dark current 100 e-/s, DSNU 8 e-, PRNU 1 %, full well 14000 e-, a cos^4 lens
    (0.9 at the corner) decentred by (+6, -4) px, blemishes of 6-10 px radius.

    Row/column fixed-pattern noise, the dark-current spread and the non-linearity near full well
    are off: what the analysis reports is then exactly these parameters (the fleet tests cover
    the full model). ``overrides`` replace any :class:`ModuleParams` field.
    """
    size = min(width, height)
    defects = replace(defects, blemish_radius_min_frac=BLEMISH_RADIUS_PX[0] / size,
                      blemish_radius_max_frac=BLEMISH_RADIUS_PX[1] / size)
    fields: dict[str, Any] = dict(
        system_gain_dn_per_e=0.25, quantum_efficiency_r=0.6, quantum_efficiency_g=0.6, quantum_efficiency_b=0.6,
        read_noise_e=6.0, dark_current_25c_e_per_s=100.0, black_level_dn=64.0, dsnu_offset_e=8.0, prnu_pct=1.0,
        full_well_e=14000.0, shading_corner_rel=0.9, shading_center_dx_frac=6.0 / (width / 2),
        shading_center_dy_frac=-4.0 / (height / 2), row_fpn_e=0.0, column_fpn_e=0.0,
        dark_current_spread_sigma=0.0, nonlinearity_knee_frac=1.0, nonlinearity_loss_frac=0.0, defects=defects,
    )
    fields.update(overrides)
    return ModuleParams.clean(width, height, cfa_pattern=cfa_pattern, **fields)


def capture_plan(params: ModuleParams, *, dark_exposures_s: tuple[float, ...] = (0.01, 0.1, 0.2, 0.4),
              flat_exposure_s: float = 0.01, ptc_levels: int = 14, frames_per_point: int = 2,
              spatial_frames: int = 16) -> CapturePlan:
    """Darks at each exposure (``spatial_frames`` at the flat exposure, else ``frames_per_point``),
    then ``ptc_levels`` flat levels from 2 % to 115 % of the mean pixel's saturation, the one
    nearest 50 % with ``spatial_frames`` frames."""
    blocks: list[tuple[PlannedFrame, int]] = []
    for t in dark_exposures_s:
        spatial = bool(np.isclose(t, flat_exposure_s))
        blocks.append((PlannedFrame("dark", t, 0.0, "averaging_dark" if spatial else "dark_series"),
                       spatial_frames if spatial else frames_per_point))
    saturation_photons = params.full_well_e / params.mean_quantum_efficiency
    levels = np.linspace(0.02, 1.15, ptc_levels) * saturation_photons
    mid = int(np.argmin(np.abs(levels - 0.5 * saturation_photons)))
    for i, photons in enumerate(levels):
        blocks.append((PlannedFrame("flat", flat_exposure_s, float(round(photons, 3)),
                                    "averaging_flat" if i == mid else "ptc"),
                       spatial_frames if i == mid else frames_per_point))
    return CapturePlan.from_blocks(blocks, ptc_exposure_s=flat_exposure_s)


def render_session(params: ModuleParams, seed: int, session_id: str = "sim-1",
                   **plan: Any) -> tuple[np.ndarray, Manifest, ModuleMaps]:
    """Frames ``(n, H, W) uint16``, manifest and truth of ``params`` under :func:`capture_plan`
    (``plan`` its keyword arguments), rendered in memory by the core simulator."""
    return simulate_session(params, capture_plan(params, **plan), seed, session_id)


def truth_pixels(maps: ModuleMaps) -> list[tuple[int, int, str]]:
    """Injected defective pixels as (x, y, class); cluster members as class 'cluster'."""
    return [(d.x, d.y, "cluster" if d.cluster_id is not None else d.defect_class)
            for d in maps.defects if d.defect_class != "blemish"]


def truth_blemishes(maps: ModuleMaps) -> list[tuple[float, float, float]]:
    """Injected blemishes as (x, y, radius_px)."""
    return [(d.x, d.y, float(d.radius_px or 0.0)) for d in maps.defects if d.defect_class == "blemish"]


def truth_count(maps: ModuleMaps, kind: str) -> int:
    """How many clusters, bad columns, bad rows or blemishes were injected."""
    if kind == "cluster":
        return len({d.cluster_id for d in maps.defects if d.cluster_id is not None})
    return len({(d.x if kind == "bad_column" else d.y) if kind != "blemish" else (d.x, d.y)
                for d in maps.defects if d.defect_class == kind})


def match_defects(
    truth: Iterable[tuple[int, int, str]], found: pl.DataFrame, classes: Iterable[str]
) -> dict[str, tuple[float, float]]:
    """Per class (recall, precision) of found pixels vs truth pixels at the same (x, y).

    A pixel where a bad row crosses a bad column counts for either line class.
    """
    t: dict[tuple[int, int], set[str]] = {}
    for x, y, c in truth:
        t.setdefault((x, y), set()).add(c)
    f: dict[tuple[int, int], str] = {}
    for x, y, c in found.filter(pl.col("defect_class") != "blemish").select("x", "y", "defect_class").iter_rows():
        f[(x, y)] = c

    def same(a: set[str], b: str) -> bool:
        return b in a or (b in LINE_CLASSES and bool(a & LINE_CLASSES))

    out = {}
    for c in classes:
        tc = [k for k, v in t.items() if c in v]
        fc = [k for k, v in f.items() if v == c]
        hit = sum(1 for k in tc if k in f and same(t[k], f[k]))
        good = sum(1 for k in fc if k in t and same(t[k], c))
        out[c] = (hit / len(tc) if tc else 1.0, good / len(fc) if fc else 1.0)
    return out


def match_blemishes(truth: Iterable[tuple[float, float, float]], found: pl.DataFrame) -> tuple[float, float]:
    """(recall, precision) of blemish centres: a found centre within the true radius is a hit."""
    tb = list(truth)
    fb = found.filter(pl.col("defect_class") == "blemish").select("x", "y").rows()
    hit = sum(1 for x, y, r in tb if any(np.hypot(fx - x, fy - y) <= r for fx, fy in fb))
    good = sum(1 for fx, fy in fb if any(np.hypot(fx - x, fy - y) <= r for x, y, r in tb))
    return (hit / len(tb) if tb else 1.0, good / len(fb) if fb else 1.0)


def write_captures(path: Path, frames: np.ndarray, manifest: Manifest, chunk_rows: int = 32,
                   content_hash: str = "sha-1") -> Path:
    """A captures group as the ingest writes it: ``frames`` (n, H, W) uint16 + manifest attrs."""
    group = zarr.open_group(str(path), mode="w")
    n, h, w = frames.shape
    arr = group.create_array(
        "frames", shape=frames.shape, dtype=np.uint16, chunks=(1, min(chunk_rows, h), w),
        compressors=[BloscCodec(cname="lz4", shuffle="bitshuffle", clevel=5)],
    )
    arr[...] = frames
    group.attrs.update({
        "session_id": manifest.session_id,
        "manifest": manifest.model_dump(mode="json"),
        "content_hash": content_hash,
        "complete": True,
    })
    return path
