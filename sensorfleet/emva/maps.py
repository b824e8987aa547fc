"""One streaming pass over a session's frames: per-pixel maps and per-operating-point scalars.

The pass walks the sensor band by band (rows ``y0:y1``), and within a band every operating
point in blocks of frames (:mod:`sensorfleet.emva.kernels`). Each finished band's maps (dark
offset, dark current, spatial dark / flat averages and temporal variances, float32) go to a map
store (:mod:`sensorfleet.emva.mapstore`: in memory, or the output zarr group) and are shown to
an ``on_band`` callback (the analysis takes its samples there). Memory: one block of frames
(``max_block_bytes``) plus one prefetched, both decoded into two reused buffers; the band's int64
accumulators and float32 maps; O(frames) sums. It grows neither with the number of frames nor
with the sensor height. Reading the next block (zarr decompression, which releases the GIL)
overlaps the reduction of the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sensorfleet.emva import kernels
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.mapstore import MapStore, MemoryMapStore
from sensorfleet.manifest import EMVA_FRAME_KINDS, Manifest


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


# map names in the store: published maps by their group name, scratch maps with a leading "_"
DARK_OFFSET = "dark_offset_dn"
DARK_CURRENT = "dark_current_dn_per_s"
DARK_MEAN = "_dark_mean_dn"
DARK_VAR = "_dark_var_dn2"
FLAT_MEAN = "_flat_mean_dn"
FLAT_VAR = "_flat_var_dn2"

MAP_UNITS = {
    DARK_OFFSET: "DN, per-pixel dark signal extrapolated to exposure 0",
    DARK_CURRENT: "DN/s, per-pixel slope of the dark signal over the dark exposures (NaN with one exposure)",
}

BandCallback = Callable[[int, int, dict[str, np.ndarray]], None]
"""``on_band(y0, y1, maps)``: a band of the pass is finished; ``maps`` holds its (y1 - y0, W)
float32 maps by store name (valid during the call only)."""


@dataclass
class PassResult:
    """Output of :func:`per_pixel_pass`: per-point sums (O(frames)) and the store holding the maps.

    Channel index ``c = 2 * (y % 2) + (x % 2)`` (the four CFA sites; mono sums all four).
    The (H, W) float32 maps (``DARK_OFFSET`` per-pixel intercept of the dark signal at exposure 0,
    ``DARK_CURRENT`` slope over the dark exposures (NaN with one), ``DARK_MEAN`` / ``DARK_VAR``
    average and temporal variance of the spatial dark series, ``FLAT_MEAN`` / ``FLAT_VAR`` of the
    spatial flat series) are in ``store``.
    """

    height: int
    width: int
    points: list[OperatingPoint]
    frame_sums: list[np.ndarray]  # per point: (n_frames, 4) int64, sum of DN per CFA site
    pair_sq: list[np.ndarray]  # per point: (n_frames // 2, 4) int64, sum (y_2k - y_2k+1)^2
    pixels_per_site: np.ndarray  # (4,) int64
    dark_spatial: int  # index into points
    flat_spatial: int | None
    with_slope: bool  # the dark current map is finite (>= 2 distinct dark exposures)
    store: MapStore
    read_s: float = 0.0  # seconds the reducer waited for frames
    compute_s: float = 0.0  # seconds in the kernels
    bytes_in: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def operating_points(manifest: Manifest) -> list[OperatingPoint]:
    """The manifest's operating points, darks first, each sorted by photons then exposure.

    A point whose frames are not contiguous in manifest order is split into its contiguous runs
    (e.g. an EMVA 1288 data set whose spatial series repeats a temporal point's photon count):
    each run is a point of its own, so a mislabelled series cannot bias another point's mean.
    ``edge_chart`` frames belong to no point and do not split one.
    """
    pts: list[OperatingPoint] = []
    # contiguity among the EMVA frames only: chart frames between two frames do not split a run
    rank = {i: r for r, i in enumerate(i for i, f in enumerate(manifest.frames) if f.kind in EMVA_FRAME_KINDS)}
    for (kind, exp, ph), idx in manifest.operating_points().items():
        if kind not in EMVA_FRAME_KINDS:  # edge charts are the optics layer's
            continue
        start = 0
        for k in range(1, len(idx) + 1):
            if k == len(idx) or rank[idx[k]] != rank[idx[k - 1]] + 1:
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
        same = [i for i in darks if same_exposure(points[i].exposure_s, points[flat].exposure_s)]
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


def _read_into(frames: ArrayLike3D, a: int, b: int, y0: int, y1: int, out: np.ndarray) -> None:
    """``out[...] = frames[a:b, y0:y1, :]``, decoded straight into ``out`` for a zarr array (no
    fresh block-sized allocation per read: a new 64 MB array per block kept ~100 MB of RSS each);
    a :class:`sensorfleet.ingest.store.FrameReader` decompresses its chunk files into ``out``."""
    direct = getattr(frames, "read_into", None)
    if direct is not None:
        direct(out, slice(a, b), slice(y0, y1))
        return
    get = getattr(frames, "get_basic_selection", None)
    if get is not None:
        try:
            from zarr.core.buffer.cpu import NDBuffer
        except ImportError:  # pragma: no cover - another zarr layout: plain read
            pass
        else:
            get((slice(a, b), slice(y0, y1), slice(None)), out=NDBuffer.from_numpy_array(out))
            return
    out[...] = frames[a:b, y0:y1, :]


def _read_block(frames: ArrayLike3D, indices: Sequence[int], y0: int, y1: int,
                buffer: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(array, first frame, first row) holding the block: an in-memory C-contiguous stack is used
    in place (no copy, rows stay contiguous streams for the kernels), anything else is read into
    ``buffer`` (flat uint16, reused from block to block) or a fresh (b, y1 - y0, W) array."""
    runs = _runs(indices)
    if isinstance(frames, np.ndarray) and frames.flags.c_contiguous:
        return frames, runs[0][0], y0
    width = frames.shape[2]
    shape = (len(indices), y1 - y0, width)
    size = shape[0] * shape[1] * shape[2]
    if buffer is not None and buffer.size >= size:
        out = buffer[:size].reshape(shape)
    else:
        out = np.empty(shape, dtype=np.uint16)
    k = 0
    for a, b in runs:
        _read_into(frames, a, b, y0, y1, out[k : k + b - a])
        k += b - a
    return out, 0, 0


def _pooled(pool: dict[Any, np.ndarray], key: Any, shape: tuple[int, int, int], dtype: Any) -> np.ndarray:
    """An uninitialized C-contiguous buffer of ``shape`` from ``pool`` (allocated on first use,
    then reused for any shape that fits, e.g. the shorter last band: fresh pages would
    page-fault inside the kernels, and a second buffer would double the memory)."""
    size = shape[0] * shape[1] * shape[2]
    flat = pool.get(key)
    if flat is None or flat.size < size:
        flat = pool[key] = np.zeros(size, dtype)
    return flat[:size].reshape(shape)


@dataclass(frozen=True)
class BlockSpec:
    """One kernel call: rows ``y0:y1`` of the frames ``indices`` (manifest order), in segments
    ``(point, first frame within the point, frames)``, the points' order."""

    segments: tuple[tuple[int, int, int], ...]
    y0: int
    y1: int
    indices: tuple[int, ...]


def _schedule(points: Sequence[OperatingPoint], height: int, band: int, limit: int) -> list[BlockSpec]:
    """The pass's kernel calls, band by band: at most ``limit`` frames each, following the points'
    order, a point split at even frame counts."""
    plan: list[BlockSpec] = []
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        segs: list[tuple[int, int, int]] = []
        seg_idx: list[int] = []
        for i, p in enumerate(points):
            j = 0
            while j < p.n_frames:
                room = limit - len(seg_idx)
                if room < 2 and segs:
                    plan.append(BlockSpec(tuple(segs), y0, y1, tuple(seg_idx)))
                    segs, seg_idx = [], []
                    continue
                c = min(p.n_frames - j, room)
                if j + c < p.n_frames:
                    c -= c % 2
                segs.append((i, j, c))
                seg_idx = seg_idx + list(p.indices[j : j + c])
                j += c
        if segs:
            plan.append(BlockSpec(tuple(segs), y0, y1, tuple(seg_idx)))
    return plan


def _blocks(frames: ArrayLike3D, plan: list[BlockSpec]) -> Iterator[tuple[BlockSpec, tuple[np.ndarray, int, int], float]]:
    """Yield (spec, block, wait_s) with the next block read in a background thread, into one of
    two reused buffers (the one the previous block, now reduced, used)."""
    if not plan:
        return
    buffers: list[np.ndarray | None] = [None, None]
    if not (isinstance(frames, np.ndarray) and frames.flags.c_contiguous):
        most = max(len(b.indices) * (b.y1 - b.y0) for b in plan) * int(frames.shape[2])
        buffers = [np.empty(most, np.uint16), np.empty(most, np.uint16) if len(plan) > 1 else None]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[tuple[np.ndarray, int, int]] = pool.submit(
            _read_block, frames, plan[0].indices, plan[0].y0, plan[0].y1, buffers[0])
        for k, spec in enumerate(plan):
            t0 = time.perf_counter()
            block = pending.result()
            wait = time.perf_counter() - t0
            if k + 1 < len(plan):
                nxt = plan[k + 1]
                pending = pool.submit(_read_block, frames, nxt.indices, nxt.y0, nxt.y1, buffers[(k + 1) % 2])
            yield spec, block, wait


@dataclass(frozen=True)
class PassSetup:
    """What the pass knows before it reads a frame: the points, their kernel roles, the dark
    regression and the maps it writes."""

    points: list[OperatingPoint]
    dark_spatial: int
    flat_spatial: int | None
    specs: tuple[kernels.PointSpec, ...]
    regression: kernels.DarkRegression
    dark_points: frozenset[int]
    last_dark: int
    map_names: tuple[str, ...]


def point_roles(points: Sequence[OperatingPoint], dark_spatial: int, flat_spatial: int | None) -> list[kernels.SegmentRole]:
    """Each point's kernel role: the spatial series get per-pixel maps, the other dark points feed
    the dark-current regression straight from their frames (no per-pixel accumulators for them),
    the other flat points give frame and pair sums only."""
    role = kernels.SegmentRole
    return [role.SPATIAL_DARK if i == dark_spatial else role.SPATIAL_FLAT if i == flat_spatial
            else role.DARK_RUN if p.kind == "dark" else role.FRAME_SUMS for i, p in enumerate(points)]


def _setup(manifest: Manifest) -> PassSetup:
    points = operating_points(manifest)
    dark_i, flat_i = choose_spatial(points)
    dark_idx = [i for i, p in enumerate(points) if p.kind == "dark"]
    regression = kernels.dark_regression([points[i].exposure_s for i in dark_idx])
    tbar = regression.exposure_mean_s
    specs = tuple(kernels.PointSpec(p.n_frames, r, p.exposure_s - tbar)
                  for p, r in zip(points, point_roles(points, dark_i, flat_i), strict=True))
    names = (DARK_OFFSET, DARK_CURRENT, DARK_MEAN, DARK_VAR) + ((FLAT_MEAN, FLAT_VAR) if flat_i is not None else ())
    return PassSetup(points, dark_i, flat_i, specs, regression, frozenset(dark_idx), dark_idx[-1], names)


def _check_frames(frames: ArrayLike3D, manifest: Manifest) -> None:
    expected = (len(manifest.frames), manifest.sensor.height, manifest.sensor.width)
    shape = tuple(int(s) for s in frames.shape)
    if shape != expected:
        raise ValueError(
            f"frames of session {manifest.session_id!r}: expected shape "
            f"{expected} (manifest frames, sensor.height, sensor.width), found {shape}"
        )


def _frames_per_block(config: CharacterizationConfig, band: int, width: int) -> int:
    """Frames per block of at most ``max_block_bytes`` (even, >= 2)."""
    per_block = max(2, int(config.max_block_bytes // max(band * width * 2, 1)))
    return per_block - per_block % 2


_NO_FLAT = np.empty((1, 1), np.float32)


def _band_outputs(band_maps: dict[str, np.ndarray]) -> kernels.BandOutputs:
    return kernels.BandOutputs(
        band_maps[DARK_MEAN], band_maps[DARK_VAR], band_maps.get(FLAT_MEAN, _NO_FLAT),
        band_maps.get(FLAT_VAR, _NO_FLAT), band_maps[DARK_OFFSET], band_maps[DARK_CURRENT])


def _kernel_plan(setup: PassSetup, spec: BlockSpec, block: tuple[np.ndarray, int, int], in_place: bool,
                 band_maps: dict[str, np.ndarray], reg_local: bool, pool: dict[Any, np.ndarray]) -> kernels.BlockPlan:
    """The kernel call of one block (``block`` = (array, first frame, first row) of
    :func:`_read_block`). The band-level accumulators come from ``pool``: per-pixel sums when a
    point with per-pixel sums is split over calls, regression sums unless ``reg_local`` (zeroed
    by the band's first call)."""
    array, f0, r0 = block
    segments = spec.segments
    points = setup.points
    h = spec.y1 - spec.y0
    width = array.shape[2]
    b = len(spec.indices)
    if in_place:
        idx = np.fromiter((k for i, j, c in segments for k in points[i].indices[j : j + c]), np.int64, b)
    else:
        idx = np.arange(f0, f0 + b, dtype=np.int64)
    split = any(setup.specs[i].role != kernels.SegmentRole.FRAME_SUMS and not (j == 0 and c == points[i].n_frames)
                for i, j, c in segments)
    pix_acc = _pooled(pool, "pix", (2, h, width), np.int64) if split else np.empty((2, 1, 1), np.int64)
    if reg_local:
        reg_acc = np.empty((2, 1, 1))
    else:
        reg_acc = _pooled(pool, "reg", (2, h, width), np.float64)
        if segments[0][:2] == (0, 0):
            reg_acc.fill(0.0)
    solve = any(i == setup.last_dark and j + c == points[i].n_frames for i, j, c in segments)
    return kernels.block_plan(array, r0, idx, segments, setup.specs, setup.regression, _band_outputs(band_maps),
                              pix_acc, reg_acc, reg_local, solve)


def _regression_is_local(setup: PassSetup, spec: BlockSpec) -> bool:
    """The band's first call holds every dark point whole: the regression sums stay row-local."""
    whole = {i for i, j, c in spec.segments if i in setup.dark_points and j == 0 and c == setup.points[i].n_frames}
    return whole == setup.dark_points


def _add_row_sums(plan: kernels.BlockPlan, spec: BlockSpec, frame_sums: list[np.ndarray],
                  pair_sq: list[np.ndarray]) -> None:
    """Fold the kernel's per-row sums (split by column parity) into the per-point sums by CFA
    site ``2 * (y % 2) + x % 2``."""
    par = spec.y0 % 2
    rfs, rps = plan.row_frame_sums, plan.row_pair_sq
    sums = [rfs[(rp - par) % 2 :: 2].sum(axis=0) for rp in (0, 1)]  # (b, 2) per row parity
    pairs = [rps[(rp - par) % 2 :: 2].sum(axis=0) for rp in (0, 1)]
    for s, (i, j, c) in enumerate(spec.segments):
        a, q = int(plan.segments.start[s]), int(plan.segments.pair[s])
        for rp in (0, 1):
            site = 2 * rp
            frame_sums[i][j : j + c, site : site + 2] += sums[rp][a : a + c]
            pair_sq[i][j // 2 : j // 2 + c // 2, site : site + 2] += pairs[rp][q : q + c // 2]


@dataclass(frozen=True)
class _PassTotals:
    frame_sums: list[np.ndarray]
    pair_sq: list[np.ndarray]
    read_s: float
    compute_s: float
    bytes_in: int


def _reduce(frames: ArrayLike3D, manifest: Manifest, setup: PassSetup, plan: list[BlockSpec], store: MapStore,
            on_band: BandCallback | None) -> _PassTotals:
    """Run the kernel calls of ``plan``, committing each finished band's maps to ``store``."""
    frame_sums = [np.zeros((p.n_frames, 4), np.int64) for p in setup.points]
    pair_sq = [np.zeros((p.n_frames // 2, 4), np.int64) for p in setup.points]
    in_place = isinstance(frames, np.ndarray) and frames.flags.c_contiguous
    read_s = compute_s = 0.0
    bytes_in = 0
    pool: dict[Any, np.ndarray] = {}
    reg_local = False
    band_maps: dict[str, np.ndarray] = {}
    for k, (spec, block, wait) in enumerate(_blocks(frames, plan)):
        read_s += wait
        t0 = time.perf_counter()
        if not band_maps:
            band_maps = {name: store.buffer(name, spec.y0, spec.y1) for name in setup.map_names}
            band_maps[DARK_CURRENT].fill(np.nan)
        if block[0].dtype != np.uint16:
            raise ValueError(f"frames of session {manifest.session_id!r}: expected uint16, found {block[0].dtype}")
        bytes_in += len(spec.indices) * (spec.y1 - spec.y0) * block[0].shape[2] * 2
        if spec.segments[0][:2] == (0, 0):  # the band's first call
            reg_local = _regression_is_local(setup, spec)
        kplan = _kernel_plan(setup, spec, block, in_place, band_maps, reg_local, pool)
        kernels.reduce_block(kplan)
        _add_row_sums(kplan, spec, frame_sums, pair_sq)
        compute_s += time.perf_counter() - t0
        if k + 1 == len(plan) or plan[k + 1].y0 != spec.y0:  # the band is finished
            if on_band is not None:
                on_band(spec.y0, spec.y1, band_maps)
            for name in setup.map_names:
                store.commit(name, spec.y0, band_maps[name])
            band_maps = {}
    return _PassTotals(frame_sums, pair_sq, read_s, compute_s, bytes_in)


def pixels_per_site(height: int, width: int) -> np.ndarray:
    """(4,) int64: pixels of each CFA site ``2 * (y % 2) + x % 2``."""
    ys = np.arange(height) % 2
    xs = np.arange(width) % 2
    return np.array([np.count_nonzero(ys == a) * np.count_nonzero(xs == c) for a in (0, 1) for c in (0, 1)], np.int64)


def per_pixel_pass(
    frames: ArrayLike3D,
    manifest: Manifest,
    config: CharacterizationConfig = CharacterizationConfig(),
    store: MapStore | None = None,
    on_band: BandCallback | None = None,
) -> PassResult:
    """Reduce ``frames`` ((n, H, W) uint16, manifest order) to maps and per-point sums in one pass.

    Per-pixel sums are kept only for the dark points (dark offset / dark current regression)
    and the spatial flat point; the other flat points only give frame sums and pair sums.
    The maps go band by band into ``store`` (an in-memory one when None); ``on_band`` sees each
    finished band. Memory: one block of frames (+ one prefetched) and one band's accumulators and
    maps, whatever the store.
    """
    t_start = time.perf_counter()
    _check_frames(frames, manifest)
    h_total, w_total = manifest.sensor.height, manifest.sensor.width
    setup = _setup(manifest)
    if store is None:
        store = MemoryMapStore(h_total, w_total)
    for name in setup.map_names:
        store.create(name, np.float32, MAP_UNITS.get(name, ""))
    band = _band_rows(frames, config, h_total)
    # An in-memory C-contiguous stack is reduced in place, one kernel call per band holding every
    # point (per-pixel sums never leave the cache); anything else is read in blocks.
    in_place = isinstance(frames, np.ndarray) and frames.flags.c_contiguous
    limit = sum(p.n_frames for p in setup.points) if in_place else _frames_per_block(config, band, w_total)
    totals = _reduce(frames, manifest, setup, _schedule(setup.points, h_total, band, limit), store, on_band)
    return PassResult(
        height=h_total,
        width=w_total,
        points=setup.points,
        frame_sums=totals.frame_sums,
        pair_sq=totals.pair_sq,
        pixels_per_site=pixels_per_site(h_total, w_total),
        dark_spatial=setup.dark_spatial,
        flat_spatial=setup.flat_spatial,
        with_slope=setup.regression.with_slope,
        store=store,
        read_s=totals.read_s,
        compute_s=totals.compute_s,
        bytes_in=totals.bytes_in,
        timings={"pass_s": time.perf_counter() - t_start},
    )
