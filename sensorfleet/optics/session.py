"""The optics of one session: its edge chart (every edge, every channel, the module's sharpness)
and its flats (relative illumination, colour shading), as table rows and SFR curves.

Inputs from the captures group: the ``edge_chart`` frames, summed in integers and analysed as their mean. The shading
comes from the characterization's spatial flat and dark series (:func:`_shading_frames`: the flat
point with the most frames, ties the middle one in photons, and the dark point at its exposure):
their block means as the characterization published them in its maps group
(:mod:`sensorfleet.emva.flatblocks`, computed on its mean maps during its pass) when it is current
for these captures, else the same blocks from the frames, summed here in integers.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.maps import choose_spatial, operating_points
from sensorfleet.ingest.store import FrameReader
from sensorfleet.manifest import Manifest
from sensorfleet.optics.chart import LUMINANCE, MONO, ChartConfig, EdgeMeasurement, analyse_chart
from sensorfleet.optics.module import QUADRANTS, module_sharpness
from sensorfleet.optics.shading import colour_blocks, shading_of_blocks, site_block_means

CURVE_SCHEMA = {"session_id": pl.String, "edge_id": pl.Int64, "channel": pl.String,
                "frequency_cy_per_px": pl.Float64, "mtf": pl.Float64}


@dataclass(frozen=True)
class SessionOptics:
    """The rows of one session: ``sfr`` (DataFrame), ``module_optics`` (one row), the curves."""

    session_id: str
    sfr: pl.DataFrame
    module: dict[str, Any]
    curves: pl.DataFrame


def _frame_sum(frames: FrameReader, indices: list[int]) -> np.ndarray:
    """The sum ``(H, W)`` of the frames ``indices``, in unsigned integers (uint32: exact for fewer
    than 65537 uint16 frames). Each chunk touched is read whole into one reused buffer (the
    reader decompresses it straight there, no temporary) and its wanted frames added: a chunk
    several frames deep (small sensors) is decompressed once, not once per frame."""
    total = np.zeros(frames.shape[1:], dtype=np.uint32 if len(indices) < 65537 else np.uint64)
    depth = max(1, int(frames.chunks[0]))
    buffer = _chunk_buffer((depth, *frames.shape[1:]))
    for chunk, wanted in chunk_groups(indices, depth):
        frames.read_chunk_into(buffer, chunk)
        for i in wanted:
            _accumulate(total.ravel(), buffer[i - chunk * depth].ravel())
    return total


_buffers = threading.local()


def _chunk_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """This thread's uint16 buffer of ``shape``, kept for the next session of the same size (a
    day's sessions share their sensor size; a fresh multi-MB array per session cost its page
    faults each time)."""
    held: np.ndarray | None = getattr(_buffers, "chunk", None)
    if held is None or held.shape != shape:
        held = _buffers.chunk = np.empty(shape, np.uint16)
    return held


def chunk_groups(indices: list[int], depth: int) -> list[tuple[int, list[int]]]:
    """``indices`` grouped by the chunk of ``depth`` frames that holds them, chunks in order (a
    repeated index stays repeated: a sum counts it again)."""
    groups: dict[int, list[int]] = {}
    for i in sorted(indices):
        groups.setdefault(i // depth, []).append(i)
    return sorted(groups.items())


@numba.njit(cache=True, nogil=True)
def _accumulate(total: np.ndarray, frame: np.ndarray) -> None:
    """``total += frame`` (flat, same size; the unsigned sum is exact, as ``np.add``)."""
    for i in range(total.size):
        total[i] += frame[i]


def _shading_frames(manifest: Manifest) -> tuple[list[int], list[int]] | None:
    """(flat, dark) frame indices of the shading: the characterization's spatial series
    (:func:`sensorfleet.emva.maps.choose_spatial`); None without a flat or a dark at its exposure."""
    points = operating_points(manifest)
    if not any(p.kind == "dark" for p in points):
        return None
    dark, flat = choose_spatial(points)
    if flat is None or not same_exposure(points[dark].exposure_s, points[flat].exposure_s):
        return None
    return list(points[flat].indices), list(points[dark].indices)


def flat_site_blocks(frames: FrameReader, manifest: Manifest) -> np.ndarray | None:
    """The ``(sites, 16, 16)`` block means (DN) of the dark-subtracted spatial flat per CFA site, from
    the frames (what the characterization publishes, :mod:`sensorfleet.emva.flatblocks`); None
    without a flat or a dark at its exposure."""
    chosen = _shading_frames(manifest)
    if chosen is None:
        return None
    flat, dark = chosen
    return site_block_means(_frame_sum(frames, flat), len(flat), _frame_sum(frames, dark), len(dark),
                            manifest.sensor.cfa_pattern == "mono")


def _sfr_frame(edges: list[EdgeMeasurement], ids: dict[str, Any], chart_files: str,
               written_at: datetime) -> pl.DataFrame:
    """The session's ``sfr`` rows, one per edge and channel, built column by column (a non-finite
    angle, MTF or SNR as null)."""
    n, rois = len(edges), [m.roi for m in edges]

    def const(name: str, value: Any) -> pl.Series:
        return pl.Series(name, [value]).new_from_index(0, n)

    def ints(name: str, values: list[int]) -> pl.Series:
        return pl.Series(name, values, dtype=pl.Int64)

    def floats(name: str, values: list[float], finite: bool = False) -> pl.Series:
        a = np.array(values, dtype=np.float64)
        return pl.Series(name, np.where(np.isfinite(a), a, np.nan), nan_to_null=True) if finite else pl.Series(name, a)

    def texts(name: str, values: list[str]) -> pl.Series:
        return pl.Series(name, values, dtype=pl.String)

    return pl.DataFrame([
        *(const(k, v) for k, v in ids.items()),
        ints("edge_id", [r.edge_id for r in rois]), ints("square", [r.square for r in rois]),
        texts("side", [r.side for r in rois]), texts("channel", [m.channel for m in edges]),
        floats("x_px", [m.x_px for m in edges]), floats("y_px", [m.y_px for m in edges]),
        ints("roi_x0", [r.x0 for r in rois]), ints("roi_y0", [r.y0 for r in rois]),
        ints("roi_width", [r.x1 - r.x0 for r in rois]), ints("roi_height", [r.y1 - r.y0 for r in rois]),
        floats("field_frac", [m.field_frac for m in edges]), texts("orientation", [m.orientation for m in edges]),
        texts("direction", [m.direction for m in edges]),
        floats("angle_deg", [m.angle_deg for m in edges], finite=True),
        floats("mtf50_cy_per_px", [m.mtf50_cy_per_px for m in edges], finite=True),
        floats("mtf_nyquist4", [m.mtf_nyquist4 for m in edges], finite=True),
        floats("mtf_nyquist2", [m.mtf_nyquist2 for m in edges], finite=True),
        floats("edge_snr", [m.edge_snr for m in edges], finite=True),
        texts("quality", [m.quality for m in edges]), texts("reason", [m.reason for m in edges]),
        const("chart_frames", chart_files), const("written_at", written_at),
    ])


def _not_found_row(manifest: Manifest, ids: dict[str, Any], chart_files: str) -> dict[str, Any]:
    channel = MONO if manifest.sensor.cfa_pattern == "mono" else LUMINANCE
    return ids | {
        "edge_id": -1, "square": -1, "side": "", "channel": channel, "x_px": None, "y_px": None, "roi_x0": None,
        "roi_y0": None, "roi_width": None, "roi_height": None, "field_frac": None, "orientation": "", "direction": "",
        "angle_deg": None, "mtf50_cy_per_px": None, "mtf_nyquist4": None, "mtf_nyquist2": None, "edge_snr": None,
        "quality": "not_found", "reason": f"no square of the chart found in {chart_files}", "chart_frames": chart_files,
    }


def _curves(session_id: str, edges: list[EdgeMeasurement]) -> pl.DataFrame:
    """The SFR curves of the measured edges up to 1 cycle/pixel, edge after edge: every curve
    concatenated, then one mask (no per-edge array operations)."""
    good = [m for m in edges if m.sfr is not None]
    if not good:
        return pl.DataFrame(schema=CURVE_SCHEMA)
    sfrs = [m.sfr for m in good if m.sfr is not None]
    frequency = np.concatenate([r.frequency_cy_per_px for r in sfrs])
    keep = frequency <= 1.0
    idx = np.repeat(np.arange(len(good)), [r.frequency_cy_per_px.size for r in sfrs])[keep]  # the curve of each row
    return pl.DataFrame([
        pl.Series("session_id", [session_id], dtype=pl.String).new_from_index(0, int(idx.size)),
        pl.Series("edge_id", np.array([m.roi.edge_id for m in good], dtype=np.int64)[idx]),
        pl.Series("channel", [m.channel for m in good], dtype=pl.String).gather(idx),
        pl.Series("frequency_cy_per_px", frequency[keep]),
        pl.Series("mtf", np.concatenate([r.mtf for r in sfrs])[keep]),
    ])


def _module_row(manifest: Manifest, edges: list[EdgeMeasurement], n_chart: int,
                site_blocks: np.ndarray | None) -> dict[str, Any]:
    s = manifest.sensor
    sharp = module_sharpness(edges, s.width, s.height)
    row: dict[str, Any] = {
        "lot_id": s.lot_id, "wafer_id": s.wafer_id, "station_id": manifest.station_id, "cfa_pattern": s.cfa_pattern,
        "chart_frames": n_chart, "edges_found": sharp.edges_found, "edges_ok": sharp.edges_ok,
        "mtf50_center_cy_per_px": sharp.mtf50_center, "mtf50_corner_min_cy_per_px": sharp.mtf50_corner_min,
        **{f"mtf50_corner_{q}_cy_per_px": sharp.corner_mtf50[q] for q in QUADRANTS},
        "field_uniformity": sharp.field_uniformity, "mtf50_tilt_cy_per_px": sharp.tilt_mtf50_diff,
        "relative_illumination_r": math.nan, "relative_illumination_g": math.nan, "relative_illumination_b": math.nan,
        "colour_shading_r_pct": math.nan, "colour_shading_b_pct": math.nan,
    }
    if site_blocks is not None:
        sh = shading_of_blocks(colour_blocks(site_blocks, s.cfa_pattern))
        for name, value in sh.relative_illumination.items():
            row[f"relative_illumination_{'g' if name == MONO else name.lower()}"] = value
        row["colour_shading_r_pct"], row["colour_shading_b_pct"] = sh.colour_shading_r_pct, sh.colour_shading_b_pct
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def session_optics(frames: FrameReader, manifest: Manifest, written_at: datetime,
                   config: ChartConfig = ChartConfig(), site_blocks: np.ndarray | None = None) -> SessionOptics:
    """Every edge of the session's chart (if any) and its module row, stamped ``written_at``.
    ``site_blocks``: the spatial flat's block means per CFA site as the characterization published
    them (:mod:`sensorfleet.emva.flatblocks`); None: taken from the frames (:func:`flat_site_blocks`)."""
    ids = {"session_id": manifest.session_id, "module_id": manifest.module_id, "captured_at": manifest.captured_at}
    charts = [i for i, f in enumerate(manifest.frames) if f.kind == "edge_chart"]
    chart_files = ", ".join(manifest.frames[i].file for i in charts)
    edges: list[EdgeMeasurement] = []
    sfr = pl.DataFrame()
    if charts:
        boxes = manifest.frames[charts[0]].roi
        edges = analyse_chart(_frame_sum(frames, charts), manifest.sensor.cfa_pattern,
                              float(2**manifest.sensor.bit_depth - 1),
                              [(b.x, b.y, b.width, b.height) for b in boxes] if boxes else None, config,
                              n_frames=len(charts))
        sfr = (_sfr_frame(edges, ids, chart_files, written_at) if edges else
               pl.DataFrame([_not_found_row(manifest, ids, chart_files) | {"written_at": written_at}],
                            infer_schema_length=None))
    if site_blocks is None:
        site_blocks = flat_site_blocks(frames, manifest)
    module = ids | _module_row(manifest, edges, len(charts), site_blocks) | {"written_at": written_at}
    return SessionOptics(manifest.session_id, sfr, module, _curves(manifest.session_id, edges))


def write_curves(curves: pl.DataFrame, path: Path) -> Path:
    """Write SFR curves to ``path`` atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # swept by sweep_stale_temporaries if left
    curves.write_parquet(tmp, compression="lz4")
    tmp.replace(path)
    return path
