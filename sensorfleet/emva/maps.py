"""One streaming pass over a session's frames: per-pixel maps and per-operating-point scalars.

The pass walks the sensor band by band (rows ``y0:y1``), and within a band every operating
point in blocks of frames (:mod:`sensorfleet.emva.kernels`). Peak memory is the block
(``max_block_bytes``), the band's int64 accumulators and the float32 output maps; it does not grow
with the number of frames. Reading the next block (zarr decompression, which releases the GIL)
overlaps the reduction of the current one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sensorfleet.emva import kernels
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.manifest import Manifest


class ArrayLike3D(Protocol):
    """``(n, H, W)`` uint16 frames: a numpy array or a zarr array (``frames[a:b, y0:y1, :]``)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...


@dataclass(frozen=True)
class OperatingPoint:
    """Frames sharing (kind, exposure_s, photons_per_pixel), in manifest order."""

    kind: str
    exposure_s: float
    photons_per_pixel: float
    indices: tuple[int, ...]

    @property
    def n_frames(self) -> int:
        return len(self.indices)

    @property
    def key(self) -> tuple[str, float, float]:
        return (self.kind, self.exposure_s, self.photons_per_pixel)


@dataclass
class PassResult:
    """Output of :func:`per_pixel_pass`.

    Channel index ``c = 2 * (y % 2) + (x % 2)`` (the four CFA sites; mono sums all four).
    Maps are ``(H, W) float32``.
    """

    height: int
    width: int
    points: list[OperatingPoint]
    frame_sums: list[np.ndarray]  # per point: (n_frames, 4) int64, sum of DN per CFA site
    pair_sq: list[np.ndarray]  # per point: (n_frames // 2, 4) int64, sum (y_2k - y_2k+1)^2
    pixels_per_site: np.ndarray  # (4,) int64
    dark_spatial: int  # index into points
    flat_spatial: int | None
    dark_offset_dn: np.ndarray  # per-pixel intercept of the dark signal at exposure 0
    dark_current_dn_per_s: np.ndarray  # per-pixel slope over the dark exposures (NaN with one)
    dark_mean_dn: np.ndarray  # average of the spatial dark series
    dark_var_dn2: np.ndarray  # per-pixel temporal variance of the spatial dark series
    flat_mean_dn: np.ndarray | None  # average of the spatial flat series
    flat_var_dn2: np.ndarray | None
    read_s: float = 0.0  # seconds the reducer waited for frames
    compute_s: float = 0.0  # seconds in the kernels
    bytes_in: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dark_exposures_s(self) -> np.ndarray:
        return np.array([p.exposure_s for p in self.points if p.kind == "dark"])

    def dark_at(self, exposure_s: float) -> np.ndarray:
        """Per-pixel mean dark signal (DN) at ``exposure_s``: the spatial dark series when it was
        taken at that exposure, otherwise the per-pixel linear dark model."""
        sp = self.points[self.dark_spatial]
        if np.isclose(sp.exposure_s, exposure_s, rtol=1e-9, atol=0.0) or not np.isfinite(
            self.dark_current_dn_per_s[0, 0]
        ):
            return self.dark_mean_dn
        return (self.dark_offset_dn + self.dark_current_dn_per_s * np.float32(exposure_s)).astype(
            np.float32
        )


def operating_points(manifest: Manifest) -> list[OperatingPoint]:
    """The manifest's operating points, darks first, each sorted by photons then exposure.

    A point whose frames are not contiguous in manifest order is split into its contiguous runs
    (e.g. an EMVA 1288 data set whose spatial series repeats a temporal point's photon count):
    each run is a point of its own, so a mislabelled series cannot bias another point's mean.
    """
    pts: list[OperatingPoint] = []
    for (kind, exp, ph), idx in manifest.operating_points().items():
        start = 0
        for k in range(1, len(idx) + 1):
            if k == len(idx) or idx[k] != idx[k - 1] + 1:
                pts.append(OperatingPoint(kind, exp, ph, tuple(idx[start:k])))
                start = k
    return sorted(pts, key=lambda p: (p.kind != "dark", p.photons_per_pixel, p.exposure_s, p.indices[0]))


def choose_spatial(points: Sequence[OperatingPoint]) -> tuple[int, int | None]:
    """(dark, flat) indices of the spatial series: the flat point with the most frames (ties: the
    middle of the illumination series), and the dark point at its exposure with the most frames
    (else the dark point with the most frames)."""
    flats = [i for i, p in enumerate(points) if p.kind == "flat"]
    darks = [i for i, p in enumerate(points) if p.kind == "dark"]
    flat: int | None = None
    if flats:
        most = max(points[i].n_frames for i in flats)
        tied = [i for i in flats if points[i].n_frames == most]
        flat = tied[len(tied) // 2]
    if not darks:
        raise ValueError("manifest has no dark frames: expected at least one dark operating point")
    pool = darks
    if flat is not None:
        same = [i for i in darks if np.isclose(points[i].exposure_s, points[flat].exposure_s)]
        pool = same or darks
    dark = max(pool, key=lambda i: (points[i].n_frames, points[i].exposure_s))
    return dark, flat


def _band_rows(frames: ArrayLike3D, config: CharacterizationConfig, height: int) -> int:
    """Rows per band: ``band_rows``, raised so that one frame's band holds >= ``min_band_bytes``
    (fewer, larger kernel calls on narrow sensors), rounded up to the zarr chunk height."""
    chunks = getattr(frames, "chunks", None)
    width = int(frames.shape[2])
    rows = max(1, config.band_rows, -(-config.min_band_bytes // max(2 * width, 1)))
    if chunks is not None and len(chunks) == 3:
        ch = int(chunks[1])
        rows = -(-rows // ch) * ch
    return min(rows, height)


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _read_block(frames: ArrayLike3D, indices: Sequence[int], y0: int, y1: int) -> tuple[np.ndarray, int, int]:
    """(array, first frame, first row) holding the block: an in-memory C-contiguous stack is used
    in place (no copy, rows stay contiguous streams for the kernels), anything else is read into a
    fresh (b, y1 - y0, W) array."""
    runs = _runs(indices)
    if len(runs) == 1 and isinstance(frames, np.ndarray) and frames.flags.c_contiguous:
        return frames, runs[0][0], y0
    if len(runs) == 1:
        a, b = runs[0]
        return np.ascontiguousarray(frames[a:b, y0:y1, :]), 0, 0
    width = frames.shape[2]
    out = np.empty((len(indices), y1 - y0, width), dtype=np.uint16)
    k = 0
    for a, b in runs:
        out[k : k + b - a] = frames[a:b, y0:y1, :]
        k += b - a
    return out, 0, 0


def _as_words(block: np.ndarray) -> np.ndarray | None:
    """A C-contiguous (n, H, W) uint16 array as (n, H, W / 2) uint32 words (two pixels each, the
    low half the even column), or None (odd width, not contiguous, big endian)."""
    if block.shape[2] % 2 or not block.flags.c_contiguous or not np.little_endian or block.ctypes.data % 4:
        return None
    try:
        return block.view(np.uint32)
    except ValueError:
        return None


def _zeroed(pool: dict[Any, np.ndarray], key: Any, h: int, w: int, dtype: Any) -> np.ndarray:
    """A zeroed (h, w) accumulator from ``pool`` (allocated on first use, then reused)."""
    arr = pool.get(key)
    if arr is None or arr.shape[0] < h:
        arr = pool[key] = np.zeros((h, w), dtype)
        return arr
    view = arr[:h]
    view.fill(0)
    return view


def _blocks(
    frames: ArrayLike3D, plan: list[tuple[list[tuple[int, int]], int, int, Sequence[int]]]
) -> Iterator[tuple[list[tuple[int, int]], int, int, tuple[np.ndarray, int, int], float]]:
    """Yield (segments, y0, y1, block, wait_s) with the next block read in a background thread."""
    if not plan:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[tuple[np.ndarray, int, int]] = pool.submit(_read_block, frames, plan[0][3], plan[0][1], plan[0][2])
        for k, (point, y0, y1, _idx) in enumerate(plan):
            t0 = time.perf_counter()
            block = pending.result()
            wait = time.perf_counter() - t0
            if k + 1 < len(plan):
                nxt = plan[k + 1]
                pending = pool.submit(_read_block, frames, nxt[3], nxt[1], nxt[2])
            yield point, y0, y1, block, wait


def per_pixel_pass(
    frames: ArrayLike3D, manifest: Manifest, config: CharacterizationConfig = CharacterizationConfig()
) -> PassResult:
    """Reduce ``frames`` ((n, H, W) uint16, manifest order) to maps and per-point sums in one pass.

    Per-pixel sums are kept only for the dark points (dark offset / dark current regression)
    and the spatial flat point; the other flat points only give frame sums and pair sums.
    """
    n_expected = len(manifest.frames)
    h_total, w_total = manifest.sensor.height, manifest.sensor.width
    shape = tuple(int(s) for s in frames.shape)
    if shape != (n_expected, h_total, w_total):
        raise ValueError(
            f"frames of session {manifest.session_id!r}: expected shape "
            f"{(n_expected, h_total, w_total)} (manifest frames, sensor.height, sensor.width), found {shape}"
        )
    points = operating_points(manifest)
    dark_i, flat_i = choose_spatial(points)
    dark_idx = [i for i, p in enumerate(points) if p.kind == "dark"]
    t = np.array([points[i].exposure_s for i in dark_idx])
    tbar = float(t.mean())
    stt = float(((t - tbar) ** 2).sum())
    with_slope = len(dark_idx) >= 2 and stt > 0

    band = _band_rows(frames, config, h_total)
    frame_band_bytes = band * w_total * 2
    per_block = max(2, int(config.max_block_bytes // max(frame_band_bytes, 1)))
    per_block -= per_block % 2

    f32 = np.float32
    dark_offset = np.empty((h_total, w_total), f32)
    dark_current = np.full((h_total, w_total), np.nan, f32)
    dark_mean = np.empty((h_total, w_total), f32)
    dark_var = np.empty((h_total, w_total), f32)
    flat_mean = np.empty((h_total, w_total), f32) if flat_i is not None else None
    flat_var = np.empty((h_total, w_total), f32) if flat_i is not None else None
    frame_sums = [np.zeros((p.n_frames, 4), np.int64) for p in points]
    pair_sq = [np.zeros((p.n_frames // 2, 4), np.int64) for p in points]
    # per-pixel sums only for the spatial series; the other dark runs feed the dark-current
    # regression straight from their frames (no per-pixel accumulators for them)
    pixel_points = {dark_i} | ({flat_i} if flat_i is not None else set())
    regression_points = set(dark_idx) - pixel_points

    # blocks: (segments [(point, frames)], y0, y1, frame indices). Points without per-pixel maps
    # (the photon-transfer pairs) share blocks, so narrow sensors make few, large kernel calls.
    plan: list[tuple[list[tuple[int, int]], int, int, Sequence[int]]] = []
    for y0 in range(0, h_total, band):
        y1 = min(h_total, y0 + band)
        pending: list[tuple[int, int]] = []
        pending_idx: list[int] = []
        for i, p in enumerate(points):
            if i not in pixel_points and i not in regression_points and p.n_frames % 2 == 0 and p.n_frames <= per_block:
                if len(pending_idx) + p.n_frames > per_block:
                    plan.append((pending, y0, y1, pending_idx))
                    pending, pending_idx = [], []
                pending.append((i, p.n_frames))
                pending_idx = pending_idx + list(p.indices)
                continue
            for s in range(0, p.n_frames, per_block):
                chunk = p.indices[s : s + per_block]
                plan.append(([(i, len(chunk))], y0, y1, chunk))
        if pending:
            plan.append((pending, y0, y1, pending_idx))

    read_s = 0.0
    compute_s = 0.0
    bytes_in = 0
    state: dict[Any, Any] = {}
    pool: dict[Any, np.ndarray] = {}
    offsets = {i: 0 for i in range(len(points))}
    for segments, y0, y1, (array, f0, r0), wait in _blocks(frames, plan):
        read_s += wait
        t0 = time.perf_counter()
        if array.dtype != np.uint16:
            raise ValueError(f"frames of session {manifest.session_id!r}: expected uint16, found {array.dtype}")
        b = sum(c for _i, c in segments)
        h = y1 - y0
        bytes_in += b * h * w_total * 2
        if state.get("band") != y0:
            # accumulators are allocated once and re-zeroed per band: fresh np.zeros pages would
            # page-fault inside the kernels (~4 ms per 4 MB, as much as the arithmetic)
            state = {"band": y0, "tm": _zeroed(pool, "tm", h, w_total, np.float64),
                     "m": _zeroed(pool, "m", h, w_total, np.float64)}
            offsets = {k: 0 for k in range(len(points))}
        rfs = np.empty((h, b, 2), np.int64)
        rps = np.empty((h, b // 2, 2), np.int64)
        words = _as_words(array)
        i = segments[0][0]
        p = points[i]
        if i in pixel_points and offsets[i] == 0:
            state[("s", i)] = _zeroed(pool, ("s", i), h, w_total, np.int64)
            state[("q", i)] = _zeroed(pool, ("q", i), h, w_total, np.int64)
        if words is not None:
            if i in pixel_points:
                kernels.pixels_and_stats(array, words, f0, b, r0, state[("s", i)], state[("q", i)], rfs, rps)
            elif i in regression_points:
                kernels.dark_run_and_stats(array, words, f0, b, r0, p.exposure_s - tbar, 1.0 / p.n_frames,
                                           state["tm"], state["m"], rfs, rps)
            else:
                kernels.stats_only(words, f0, b, r0, h, rfs, rps)
        else:
            block = np.ascontiguousarray(array[f0 : f0 + b, r0 : r0 + h])
            if i in pixel_points:
                kernels.accumulate_pixels_generic(block, state[("s", i)], state[("q", i)], rfs, rps)
            else:
                kernels.accumulate_scalars_generic(block, rfs, rps)
                if i in regression_points:
                    kernels.add_dark_run(block, p.exposure_s - tbar, 1.0 / p.n_frames, state["tm"], state["m"])
        par = y0 % 2
        sums = [rfs[(rp - par) % 2 :: 2].sum(axis=0) for rp in (0, 1)]  # (b, 2) per row parity
        pairs = [rps[(rp - par) % 2 :: 2].sum(axis=0) for rp in (0, 1)]
        seg0 = 0
        for i, count in segments:
            start = offsets[i]
            for rp in (0, 1):
                site = 2 * rp
                frame_sums[i][start : start + count, site : site + 2] += sums[rp][seg0 : seg0 + count]
                pair_sq[i][start // 2 : start // 2 + count // 2, site : site + 2] += pairs[rp][seg0 // 2 : seg0 // 2 + count // 2]
            offsets[i] = start + count
            seg0 += count
        p = points[i]
        if i in pixel_points and offsets[i] == p.n_frames:
            acc_s, acc_q = state.pop(("s", i)), state.pop(("q", i))
            if p.kind == "dark":
                kernels.add_regression_from_sums(acc_s, p.n_frames, p.exposure_s - tbar, state["tm"], state["m"])
            if i == dark_i:
                kernels.finalize_moments(acc_s, acc_q, p.n_frames, dark_mean[y0:y1], dark_var[y0:y1])
            if i == flat_i and flat_mean is not None and flat_var is not None:
                kernels.finalize_moments(acc_s, acc_q, p.n_frames, flat_mean[y0:y1], flat_var[y0:y1])
        if p.kind == "dark" and i == dark_idx[-1] and offsets[i] == p.n_frames:
            # last dark point of this band (darks come first): solve the regression
            kernels.solve_regression(state["tm"], state["m"], stt if with_slope else 1.0, len(dark_idx), tbar,
                                     with_slope, dark_offset[y0:y1], dark_current[y0:y1])
        compute_s += time.perf_counter() - t0

    ys = np.arange(h_total) % 2
    xs = np.arange(w_total) % 2
    pixels = np.array(
        [np.count_nonzero(ys == a) * np.count_nonzero(xs == c) for a in (0, 1) for c in (0, 1)], np.int64
    )
    return PassResult(
        height=h_total,
        width=w_total,
        points=points,
        frame_sums=frame_sums,
        pair_sq=pair_sq,
        pixels_per_site=pixels,
        dark_spatial=dark_i,
        flat_spatial=flat_i,
        dark_offset_dn=dark_offset,
        dark_current_dn_per_s=dark_current,
        dark_mean_dn=dark_mean,
        dark_var_dn2=dark_var,
        flat_mean_dn=flat_mean,
        flat_var_dn2=flat_var,
        read_s=read_s,
        compute_s=compute_s,
        bytes_in=bytes_in,
    )
