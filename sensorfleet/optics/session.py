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

import hashlib
import json
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
from sensorfleet.tables import CONTENT_KEY

CURVE_SCHEMA = {"session_id": pl.String, "edge_id": pl.Int64, "channel": pl.String,
                "frequency_cy_per_px": pl.Float64, "mtf": pl.Float64}


@dataclass(frozen=True)
class SfrRows:
    """One session's ``sfr`` rows as columns, for :func:`sfr_frame` to build a day's in one go:
    ``constants`` one value for every row (the session's ids, chart files, ``written_at``),
    ``columns`` one value per edge and channel (``height`` of them)."""

    constants: dict[str, Any]
    columns: dict[str, list[Any]]
    height: int


@dataclass(frozen=True)
class CurveRows:
    """One session's SFR curves as arrays, for :func:`curves_frame`: row ``i`` is a value of
    the curve of edge ``edge_id[i]`` in channel ``channels[curve[i]]``."""

    session_id: str
    edge_id: np.ndarray  # (rows,) int64
    channels: list[str]  # one per measured edge and channel
    curve: np.ndarray  # (rows,) int64, index into channels
    frequency_cy_per_px: np.ndarray  # (rows,) float64
    mtf: np.ndarray  # (rows,) float64

    @property
    def height(self) -> int:
        return int(self.curve.size)


@dataclass(frozen=True)
class SessionOptics:
    """The rows of one session: ``sfr`` (columns, or the one-row frame of a chart without a
    square; None without a chart), ``module_optics`` (one row), the curves (None without a
    measured edge). A day's sessions are made into DataFrames together (:func:`sfr_frame`,
    :func:`curves_frame`): per session, polars' fixed cost per call was ~1.5 ms of a 640 x 480
    module's CPU."""

    session_id: str
    sfr_rows: SfrRows | pl.DataFrame | None
    module: dict[str, Any]
    curve_rows: CurveRows | None

    @property
    def sfr(self) -> pl.DataFrame:
        """The session's ``sfr`` rows (an empty frame without a chart)."""
        return sfr_frame([self.sfr_rows] if self.sfr_rows is not None else [])

    @property
    def curves(self) -> pl.DataFrame:
        """The session's SFR curves (:data:`CURVE_SCHEMA`; empty without a measured edge)."""
        return curves_frame([self.curve_rows] if self.curve_rows is not None else [])


def _frame_sum(frames: FrameReader, indices: list[int]) -> np.ndarray:
    """The sum ``(H, W)`` of the frames ``indices``, in unsigned integers (uint32: exact for fewer
    than 65537 uint16 frames). Each chunk touched is decompressed into one reused buffer (the
    reader decompresses it straight there, no temporary; only the blocks from its first wanted
    frame to its last) and its wanted frames added in one compiled call: a chunk several frames deep
    (small sensors) is decompressed once, not once per frame."""
    total = np.zeros(frames.shape[1:], dtype=np.uint32 if len(indices) < 65537 else np.uint64)
    depth = max(1, int(frames.chunks[0]))
    buffer = _chunk_buffer((depth, *frames.shape[1:]))
    for chunk, wanted in chunk_groups(indices, depth):
        ks = np.array(wanted, np.int64) - chunk * depth  # the wanted frames' places in the chunk
        frames.read_chunk_into(buffer, chunk, range(int(ks[0]), int(ks[-1]) + 1))
        _accumulate(total.reshape(-1), buffer.reshape(depth, -1), ks)
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
def _accumulate(total: np.ndarray, frames: np.ndarray, ks: np.ndarray) -> None:
    """``total += frames[k]`` for each ``k`` in ``ks`` (``total`` flat ``(P,)``, ``frames`` ``(depth,
    P)``), frame after frame over one-dimensional rows (a loop that vectorizes: 0.07 ms for 4
    640 x 480 frames, where a loop over pixel blocks indexing ``frames[k, i]`` took 0.55); the
    unsigned sum is exact, as ``np.add``."""
    for k in ks:
        frame = frames[k]
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


def _sfr_rows(edges: list[EdgeMeasurement], ids: dict[str, Any], chart_files: str, written_at: datetime) -> SfrRows:
    """The session's ``sfr`` rows, one per edge and channel, as columns (:func:`sfr_frame`)."""
    rois = [m.roi for m in edges]
    columns: dict[str, list[Any]] = {
        "edge_id": [r.edge_id for r in rois], "square": [r.square for r in rois], "side": [r.side for r in rois],
        "channel": [m.channel for m in edges], "x_px": [m.x_px for m in edges], "y_px": [m.y_px for m in edges],
        "roi_x0": [r.x0 for r in rois], "roi_y0": [r.y0 for r in rois], "roi_width": [r.x1 - r.x0 for r in rois],
        "roi_height": [r.y1 - r.y0 for r in rois], "field_frac": [m.field_frac for m in edges],
        "orientation": [m.orientation for m in edges], "direction": [m.direction for m in edges],
        "angle_deg": [m.angle_deg for m in edges], "mtf50_cy_per_px": [m.mtf50_cy_per_px for m in edges],
        "mtf_nyquist4": [m.mtf_nyquist4 for m in edges], "mtf_nyquist2": [m.mtf_nyquist2 for m in edges],
        "edge_snr": [m.edge_snr for m in edges], "quality": [m.quality for m in edges],
        "reason": [m.reason for m in edges],
    }
    return SfrRows(ids | {"chart_frames": chart_files, "written_at": written_at}, columns, len(edges))


_SFR_INTS = ("edge_id", "square", "roi_x0", "roi_y0", "roi_width", "roi_height")
_SFR_TEXTS = ("side", "channel", "orientation", "direction", "quality", "reason")
#: non-finite values of these become null (the others are finite by construction)
_SFR_FINITE = ("angle_deg", "mtf50_cy_per_px", "mtf_nyquist4", "mtf_nyquist2", "edge_snr")
_SFR_FIRST = ("session_id", "module_id", "captured_at")
_SFR_LAST = ("chart_frames", "written_at")


def _columns_frame(parts: list[SfrRows]) -> pl.DataFrame:
    """The rows of ``parts`` (in order) as one frame, built column by column: each session's
    constants gathered to its rows, a non-finite angle, MTF or SNR as null."""
    idx = np.repeat(np.arange(len(parts)), [p.height for p in parts])

    def const(name: str) -> pl.Series:
        return pl.Series(name, [p.constants[name] for p in parts]).gather(idx)

    def column(name: str) -> pl.Series:
        values = [v for p in parts for v in p.columns[name]]
        if name in _SFR_INTS:
            return pl.Series(name, values, dtype=pl.Int64)
        if name in _SFR_TEXTS:
            return pl.Series(name, values, dtype=pl.String)
        a = np.array(values, dtype=np.float64)
        return pl.Series(name, np.where(np.isfinite(a), a, np.nan), nan_to_null=True) if name in _SFR_FINITE else pl.Series(name, a)

    return pl.DataFrame([*(const(k) for k in _SFR_FIRST), *(column(k) for k in parts[0].columns),
                         *(const(k) for k in _SFR_LAST)])


def sfr_frame(parts: list[SfrRows | pl.DataFrame]) -> pl.DataFrame:
    """The ``sfr`` rows of sessions' ``parts`` in order, one frame: each run of sessions with
    edges built at once (:func:`_columns_frame`), a not-found row as its own frame, all
    concatenated diagonally (types relaxed); an empty frame without parts."""
    frames: list[pl.DataFrame] = []
    run: list[SfrRows] = []
    for part in parts:
        if isinstance(part, SfrRows):
            run.append(part)
            continue
        if run:
            frames.append(_columns_frame(run))
            run = []
        frames.append(part)
    if run:
        frames.append(_columns_frame(run))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _not_found_row(manifest: Manifest, ids: dict[str, Any], chart_files: str) -> dict[str, Any]:
    channel = MONO if manifest.sensor.cfa_pattern == "mono" else LUMINANCE
    return ids | {
        "edge_id": -1, "square": -1, "side": "", "channel": channel, "x_px": None, "y_px": None, "roi_x0": None,
        "roi_y0": None, "roi_width": None, "roi_height": None, "field_frac": None, "orientation": "", "direction": "",
        "angle_deg": None, "mtf50_cy_per_px": None, "mtf_nyquist4": None, "mtf_nyquist2": None, "edge_snr": None,
        "quality": "not_found", "reason": f"no square of the chart found in {chart_files}", "chart_frames": chart_files,
    }


def _curve_rows(session_id: str, edges: list[EdgeMeasurement]) -> CurveRows | None:
    """The SFR curves of the measured edges up to 1 cycle/pixel, edge after edge: every curve
    concatenated, then one mask (no per-edge array operations); None without a measured edge."""
    good = [m for m in edges if m.sfr is not None]
    if not good:
        return None
    sfrs = [m.sfr for m in good if m.sfr is not None]
    frequency = np.concatenate([r.frequency_cy_per_px for r in sfrs])
    keep = frequency <= 1.0
    idx = np.repeat(np.arange(len(good)), [r.frequency_cy_per_px.size for r in sfrs])[keep]  # the curve of each row
    return CurveRows(session_id, np.array([m.roi.edge_id for m in good], dtype=np.int64)[idx],
                     [m.channel for m in good], idx, frequency[keep], np.concatenate([r.mtf for r in sfrs])[keep])


def curves_fingerprint(parts: list[CurveRows]) -> bytes:
    """A fingerprint of the curves :func:`curves_frame` makes of ``parts``: SHA-256 of every value
    that makes them (session ids, edge ids, channels, frequencies, MTF), ~1 ms for a 640 x 480
    day's 60 000 rows, against ~2-3 ms to read and compare the stored file."""
    digest = hashlib.sha256(f"curves 1; {len(parts)} sessions".encode())
    for p in parts:
        digest.update(json.dumps([p.session_id, p.channels, p.height]).encode())
        for values in (p.edge_id, p.curve, p.frequency_cy_per_px, p.mtf):
            digest.update(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).data)
    return f"sha256 {digest.hexdigest()}".encode()


def curves_frame(parts: list[CurveRows]) -> pl.DataFrame:
    """The curves of sessions' ``parts`` in order as one frame (:data:`CURVE_SCHEMA`)."""
    if not parts:
        return pl.DataFrame(schema=CURVE_SCHEMA)
    sessions = np.repeat(np.arange(len(parts)), [p.height for p in parts])
    first = np.cumsum([0] + [len(p.channels) for p in parts[:-1]])  # each session's first channel index
    return pl.DataFrame([
        pl.Series("session_id", [p.session_id for p in parts], dtype=pl.String).gather(sessions),
        pl.Series("edge_id", np.concatenate([p.edge_id for p in parts])),
        pl.Series("channel", [c for p in parts for c in p.channels], dtype=pl.String).gather(
            np.concatenate([p.curve + f for p, f in zip(parts, first.tolist(), strict=True)])),
        pl.Series("frequency_cy_per_px", np.concatenate([p.frequency_cy_per_px for p in parts])),
        pl.Series("mtf", np.concatenate([p.mtf for p in parts])),
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
    sfr: SfrRows | pl.DataFrame | None = None
    if charts:
        boxes = manifest.frames[charts[0]].roi
        edges = analyse_chart(_frame_sum(frames, charts), manifest.sensor.cfa_pattern,
                              float(2**manifest.sensor.bit_depth - 1),
                              [(b.x, b.y, b.width, b.height) for b in boxes] if boxes else None, config,
                              n_frames=len(charts))
        sfr = (_sfr_rows(edges, ids, chart_files, written_at) if edges else
               pl.DataFrame([_not_found_row(manifest, ids, chart_files) | {"written_at": written_at}],
                            infer_schema_length=None))
    if site_blocks is None:
        site_blocks = flat_site_blocks(frames, manifest)
    module = ids | _module_row(manifest, edges, len(charts), site_blocks) | {"written_at": written_at}
    return SessionOptics(manifest.session_id, sfr, module, _curve_rows(manifest.session_id, edges))


def write_curves(curves: pl.DataFrame, path: Path, fingerprint: bytes | None = None) -> Path:
    """Write SFR curves to ``path`` atomically (temporary name, then rename), with their
    :func:`curves_fingerprint` in the parquet metadata when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # swept by sweep_stale_temporaries if left
    metadata = {CONTENT_KEY.decode(): fingerprint.decode()} if fingerprint is not None else None
    curves.write_parquet(tmp, compression="lz4", metadata=metadata)
    tmp.replace(path)
    return path
