"""The characterization as one pass over the frames and a few sweeps over the stored maps, band by band.

Memory model (H x W sensor, n frames, a band of ``h`` rows):

- O(band): the pass's block of frames (``max_block_bytes``, + one prefetched) and accumulators,
  and in every sweep a few (h, W) float32 planes read from / written to the map store;
- O(H + W): line profiles (every k-th row / column, >= 160 per line), per-row and per-column
  counts and means, bad-line flags;
- O(SAMPLE) = O(1): strided samples at fixed global positions for every robust median / sigma
  (the same positions :func:`sensorfleet.emva.defects.sample` takes from a whole map);
- O(H x W / 256): shading block medians;
- O(#defects): coordinates, classes and values of the point defects, the "low" pixels of the
  blemish search, and the defect rows themselves;
- O(frames): per-frame and per-pair sums of the photon-transfer curve.

With the zarr store (:class:`sensorfleet.emva.mapstore.ZarrMapStore`) the full-resolution maps
live on disk, so peak memory does not grow with the sensor area; with the in-memory store (no
maps group written) the maps are (H, W) arrays and each sweep is one band (no sweep overhead).

Sequence (each step needs what the previous one finished):

0. pass over the frames (:func:`sensorfleet.emva.maps.per_pixel_pass`): dark offset, dark
   current, spatial dark and flat averages and variances; per band the temporal dark noise map,
   samples of the dark signal at the longest exposure, dark noise, dark current, flat noise and
   flat - dark (whole map and per CFA site), coarse samples for the sums' shifts and the dark
   line profiles;
1. sweep A: relative response (flat - dark) / channel median -> ``prnu_relative``, shading block
   medians; then the shading fit;
2. sweep B: samples of response / shading (per site and whole map) -> channel medians of the
   corrected response and its robust sigma;
3. sweep C: corrected response, point classes, per-line point counts, point-defect coordinates,
   response line profiles; then bad lines and clusters (sparse labelling);
4. sweep E: blemish search (box filter with a halo of ``blemish_smooth_px // 2`` rows, "low"
   pixels kept sparse, labelled sparsely);
5. sweep D: final class map -> ``defect_class``, the defect rows, class counts, and the
   good-pixel sums of every spatial statistic (float64, per CFA site and whole sensor).

Each step returns a frozen result (:mod:`sensorfleet.emva.steps`). Results do not depend on the band
height (tests/emva/test_banded.py).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from sensorfleet.emva import band_kernels as bk
from sensorfleet.emva.config import DEFECT_CODES, CharacterizationConfig
from sensorfleet.emva.defects import (
    LINE_SAMPLE,
    StridedSample,
    label_sparse,
    line_flags,
    median_of,
    median_sigma,
    point_classes,
    point_consts,
    site_plane_shape,
)
from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.flatblocks import FlatBlockSums, to_attr
from sensorfleet.emva.maps import (
    DARK_CURRENT,
    DARK_MEAN,
    DARK_OFFSET,
    DARK_VAR,
    FLAT_MEAN,
    FLAT_VAR,
    ArrayLike3D,
    OperatingPoint,
    choose_spatial,
    operating_points,
    per_pixel_pass,
)
from sensorfleet.emva.mapstore import MapStore, bands
from sensorfleet.emva.metrics import GoodPixelSums
from sensorfleet.emva.shading import Blemish, ShadingBlocks, ShadingFit
from sensorfleet.emva.steps import (
    BandedAnalysis,
    BlemishSearch,
    DarkSummary,
    DefectSummary,
    LineDefects,
    LineProfiles,
    PointDefects,
    ResponseSummary,
)
from sensorfleet.manifest import Manifest

RESPONSE = "prnu_relative"
NOISE = "temporal_dark_noise_dn"
CLASSES = "defect_class"
MAP_UNITS = {
    RESPONSE: "relative response (flat - dark) / median of its CFA channel; includes lens shading",
    NOISE: "DN, per-pixel temporal std of the spatial dark series",
    CLASSES: "uint8 code: " + ", ".join(f"{c}={n}" for n, c in DEFECT_CODES.items()) + ", 0=good",
}
FILL_STRIDE = 16  # the shading fit's fill value: median of every 16th sampled response value
SHIFT_GRID = 128  # the sums' shifts: medians of a grid of ~SHIFT_GRID x SHIFT_GRID pixels (2x2 cells)
F32 = np.float32
PHASE_PROBE: Callable[[str], None] | None = None
"""Called with each step's name when it ends (benchmarks use it to read the peak memory per step)."""


def _std_into(var: np.ndarray, out: np.ndarray) -> np.ndarray:
    """sqrt(max(var, 0)) as float32 into ``out``."""
    np.maximum(var, 0, out=out, dtype=np.float32)
    return np.sqrt(out, out=out)


def _site_rows(site: int, y0: int) -> int:
    """First row (band-relative) of CFA site ``site`` in a band starting at global row ``y0``."""
    return (site // 2 - y0) % 2


def _divide_sites(a: np.ndarray, y0: int, meds: Sequence[float], out: np.ndarray) -> np.ndarray:
    """``a / med`` of each pixel's CFA site (float32; NaN where the median is 0), into ``out``."""
    if len(set(meds)) == 1:
        if meds[0] != 0:
            np.divide(a, meds[0], out=out)
        else:
            out.fill(np.nan)
        return out
    for s, med in enumerate(meds):
        r0, c0 = _site_rows(s, y0), s % 2
        out[r0::2, c0::2] = a[r0::2, c0::2] / med if med != 0 else np.nan
    return out


class _Analysis:
    """State of one characterization across the pass and the sweeps."""

    def __init__(self, manifest: Manifest, config: CharacterizationConfig, store: MapStore) -> None:
        self.manifest = manifest
        self.config = config
        self.thresholds = config.defects
        self.store = store
        self._surf: np.ndarray | None = None  # shading surface rows (see surface())
        self._surf_fit: ShadingFit | None = None
        self._surf_key = (-1, -1)
        self.h, self.w = manifest.sensor.height, manifest.sensor.width
        self.mono = manifest.sensor.cfa_pattern == "mono"
        self.site_groups = [[0, 1, 2, 3]] if self.mono else [[0], [1], [2], [3]]
        points = operating_points(manifest)
        self.points: list[OperatingPoint] = points
        dark_i, flat_i = choose_spatial(points)
        self.dark_sp = points[dark_i]
        self.flat_sp = points[flat_i] if flat_i is not None else None
        self.have_flat = self.flat_sp is not None
        # the optics layer's flat block means, from the mean maps (with a dark at the flat's exposure)
        self.flat_blocks = (FlatBlockSums(self.h, self.w, self.mono) if self.flat_sp is not None
                            and same_exposure(self.dark_sp.exposure_s, self.flat_sp.exposure_s) else None)
        t = np.array([p.exposure_s for p in points if p.kind == "dark"])
        self.with_slope = t.size >= 2 and float(((t - t.mean()) ** 2).sum()) > 0
        self.t_long = float(t.max())
        n = np.array([p.n_frames for p in points if p.kind == "dark"], float)
        stt = float(((t - t.mean()) ** 2).sum())
        self.se_per_dn = float(np.sqrt(((t - t.mean()) ** 2 / n).sum()) / stt) if stt > 0 else math.inf
        h, w = self.h, self.w
        # pass-1 samples (the positions defects.sample takes from the whole maps)
        self.s_dark = StridedSample(h, w)
        self.s_noise = StridedSample(h, w)
        self.s_dc = StridedSample(h, w)
        self.s_delta = StridedSample(h, w)
        self.s_flat_noise = StridedSample(h, w)
        self.s_delta_site = [StridedSample(h, w, s) for s in range(4)]
        # line profiles: column profiles from every k-th row (kept), row profiles per band (median
        # over every k-th column of the band's rows)
        self.row_step = max(1, h // LINE_SAMPLE) | 1
        self.col_step = max(1, w // LINE_SAMPLE) | 1
        # coarse grid for the shifts of the good-pixel sums
        self.grid_ry = max(1, h // SHIFT_GRID)
        self.grid_rx = max(1, w // SHIFT_GRID)
        self.grid_cols = np.flatnonzero((np.arange(w) // 2) % self.grid_rx == 0)
        self.grid_vals: list[list[np.ndarray]] = [[] for _ in range(bk.N_QUANTITIES)]
        self.grid_rows: list[np.ndarray] = []
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()
        self._touched: set[str] = set()

    def phase(self, name: str) -> None:
        """End a step: free its band buffers, record its seconds (and tell PHASE_PROBE, when set)."""
        self.release()
        now = time.perf_counter()
        self.timings[name] = now - self._t
        self._t = now
        if PHASE_PROBE is not None:
            PHASE_PROBE(name)

    # ---- per-band quantities

    def dark_long(self, m: dict[str, np.ndarray]) -> np.ndarray:
        """Dark signal at the longest dark exposure (DN): the per-pixel line, or the dark average."""
        if self.with_slope:
            return m[DARK_OFFSET] + m[DARK_CURRENT] * F32(self.t_long)
        return m[DARK_MEAN]

    def dark_at_flat(self, m: dict[str, np.ndarray]) -> np.ndarray:
        """Dark signal at the spatial flat's exposure (DN): the dark average when the exposures are
        the same, else the per-pixel dark line at the flat's exposure."""
        assert self.flat_sp is not None
        if same_exposure(self.dark_sp.exposure_s, self.flat_sp.exposure_s) or not self.with_slope:
            return m[DARK_MEAN]
        return (m[DARK_OFFSET] + m[DARK_CURRENT] * F32(self.flat_sp.exposure_s)).astype(F32)

    def surface(self, shading: ShadingFit, y0: int, y1: int) -> np.ndarray:
        """Rows y0:y1 of the shading surface (float32, read-only use), in one buffer of this
        analysis; recomputed only when the band or the fit changes, so the sweeps of a one-band
        sensor evaluate it once instead of once per sweep."""
        key = (y0, y1)
        if self._surf_fit is not shading or self._surf_key != key:
            if self._surf is None or self._surf.shape[0] < y1 - y0:
                self._surf = np.empty((max(y1 - y0, min(self.store.band_rows(), self.h)), self.w), F32)
            shading.surface_rows(y0, y1, self._surf[: y1 - y0])
            self._surf_fit, self._surf_key = shading, key
        assert self._surf is not None
        return self._surf[: y1 - y0]

    def read(self, names: list[str], y0: int, y1: int) -> dict[str, np.ndarray]:
        self._touched.update(names)
        return {name: self.store.read(name, y0, y1) for name in names}

    def release(self) -> None:
        """A sweep is done: free the band buffers of every map it read or wrote."""
        for name in self._touched:
            self.store.release(name)
        self._touched.clear()

    def dark_names(self, need_mean: bool) -> list[str]:
        names = [DARK_OFFSET, DARK_CURRENT] if self.with_slope else []
        return names + ([DARK_MEAN] if need_mean or not self.with_slope else [])

    def need_mean_for_flat(self) -> bool:
        assert self.flat_sp is not None
        return same_exposure(self.dark_sp.exposure_s, self.flat_sp.exposure_s) or not self.with_slope

    # ---- step 0: the pass

    def on_band(self, y0: int, y1: int, m: dict[str, np.ndarray]) -> None:
        """A band of the pass is done: write its temporal dark noise, take the samples (computed
        at the sampled pixels only: no band-sized temporaries)."""
        noise = _std_into(m[DARK_VAR], self.store.buffer(NOISE, y0, y1))
        h = y1 - y0
        take = self.s_dark.take  # every whole-map sample takes the same pixels
        at = {name: take(a, y0) for name, a in m.items()}
        self.s_dark.append(self.dark_long(at), y0, h)
        self.s_noise.append(take(noise, y0), y0, h)
        if self.with_slope:
            self.s_dc.append(at[DARK_CURRENT], y0, h)
        rows = np.arange(y0, y1)
        grid_rows = np.flatnonzero((rows // 2) % self.grid_ry == 0)
        self.grid_rows.append(grid_rows + y0)
        grid = np.ix_(grid_rows, self.grid_cols)
        quantities: list[tuple[int, np.ndarray]] = [
            (bk.Q_DARK_MEAN, m[DARK_MEAN][grid]), (bk.Q_DARK_VAR, m[DARK_VAR][grid]),
            (bk.Q_DARK_OFFSET, m[DARK_OFFSET][grid]), (bk.Q_DARK_CURRENT, m[DARK_CURRENT][grid]),
        ]
        if self.have_flat:
            if self.flat_blocks is not None:
                self.flat_blocks.add(y0, m[FLAT_MEAN], m[DARK_MEAN])
            self.s_delta.append(at[FLAT_MEAN] - self.dark_at_flat(at), y0, h)
            self.s_flat_noise.append(_std_into(at[FLAT_VAR], np.empty_like(at[FLAT_VAR])), y0, h)
            names = [FLAT_MEAN] + self.dark_names(self.need_mean_for_flat())
            for s in range(4):
                sat = {name: self.s_delta_site[s].take(m[name], y0) for name in names}
                self.s_delta_site[s].append(sat[FLAT_MEAN] - self.dark_at_flat(sat), y0, h)
            gat = {name: a[grid] for name, a in m.items()}
            quantities += [(bk.Q_FLAT_MEAN, gat[FLAT_MEAN]), (bk.Q_FLAT_VAR, gat[FLAT_VAR]),
                           (bk.Q_DARK_AT_FLAT, self.dark_at_flat(gat)), (bk.Q_CORRECTED, gat[FLAT_MEAN])]
        for q, a in quantities:
            self.grid_vals[q].append(np.array(a))
        self.store.commit(NOISE, y0, noise)

    def shifts(self) -> np.ndarray:
        """(5, 8) shifts of the good-pixel sums: means of the coarse grid's finite values per CFA
        site / whole (any value near the mean keeps the float64 sums precise; a mono sensor uses
        the whole sensor's shift for every site)."""
        out = np.zeros((5, bk.N_QUANTITIES))
        ys = np.concatenate(self.grid_rows) if self.grid_rows else np.empty(0, np.int64)
        py = (ys % 2)[:, None]
        px = (self.grid_cols % 2)[None, :]
        site = np.broadcast_to(2 * py + px, (ys.size, self.grid_cols.size))
        for q in range(bk.N_QUANTITIES):
            if not self.grid_vals[q]:
                continue
            vals = np.concatenate(self.grid_vals[q])
            for g in ([bk.WHOLE] if self.mono else range(5)):
                v = vals if g == bk.WHOLE else vals[site == g]
                v = v[np.isfinite(v)]
                out[g, q] = float(np.mean(v, dtype=np.float64)) if v.size else 0.0
        if self.mono:
            out[:4] = out[bk.WHOLE]
        return out

    # ---- the steps, in order; each returns a frozen result the later steps read

    def run(self, frames: ArrayLike3D) -> BandedAnalysis:
        """The pass and every sweep (module docstring), step by step."""
        dark = self.pass_over_frames(frames)
        response = self.response(dark)
        points = self.point_defects(dark, response)
        lines = self.line_defects(dark, response, points)
        blemishes = self.blemish_search(dark, response, points, lines)
        return self.classes_and_sums(dark, response, lines, blemishes)

    def pass_over_frames(self, frames: ArrayLike3D) -> DarkSummary:
        """Step 0: the pass over the frames (maps into the store, samples), then the robust
        statistics of the dark maps."""
        store = self.store
        store.create(NOISE, F32, MAP_UNITS[NOISE])
        result = per_pixel_pass(frames, self.manifest, self.config, store, self.on_band)
        self._touched.update((DARK_OFFSET, DARK_CURRENT, DARK_MEAN, DARK_VAR, NOISE)
                             + ((FLAT_MEAN, FLAT_VAR) if self.have_flat else ()))
        self.phase("pass")
        dark_median, dark_sigma = median_sigma(self.s_dark.values())
        return DarkSummary(
            result=result,
            bands=bands(self.h, store.band_rows()),
            dark_median_dn=dark_median,
            dark_sigma_dn=dark_sigma,
            noise_median_dn=median_of(self.s_noise.values()),
            dark_current_median_dn_per_s=median_of(self.s_dc.values()) if self.with_slope else math.nan,
        )

    def response(self, dark: DarkSummary) -> ResponseSummary:
        """Steps 1 and 2 (with a flat): relative response and shading fit, then the channel
        medians of the shading-corrected response; without a flat, all NaN."""
        self.store.create(RESPONSE, F32, MAP_UNITS[RESPONSE])
        self.store.create(CLASSES, np.uint8, MAP_UNITS[CLASSES])
        if not self.have_flat:
            return ResponseSummary(None, (math.nan,) * 4, math.nan, math.nan, math.nan)
        response_median = median_of(self.s_delta.values())
        flat_noise_median = median_of(self.s_flat_noise.values())
        shading = self.response_and_shading(dark.bands)
        self.phase("response_shading")
        medians, sigma = self.corrected_medians(dark.bands, shading)
        self.phase("corrected_medians")
        return ResponseSummary(shading, medians, sigma, response_median, flat_noise_median)

    def response_and_shading(self, band_list: list[tuple[int, int]]) -> ShadingFit:
        """Step 1, sweep A: relative response (flat - dark) / channel median into the store, its
        shading block medians, then the shading fit."""
        site_medians = [0.0] * 4
        fill_parts = []
        for group in self.site_groups:
            median = float(np.median(np.concatenate([self.s_delta_site[s].values() for s in group])))
            for s in group:
                site_medians[s] = median
                if median != 0:  # the fill only stands in for invalid pixels: a coarse sample does
                    relative = self.s_delta_site[s].values()[::FILL_STRIDE] / median
                    fill_parts.append(relative[relative > 0.05])
        fill_values = np.concatenate(fill_parts) if fill_parts else np.empty(0, F32)
        fill = float(np.median(fill_values)) if fill_values.size else 1.0
        blocks = ShadingBlocks(self.h, self.w, self.config.shading_block_px, fill)
        names = [FLAT_MEAN] + self.dark_names(self.need_mean_for_flat())
        for y0, y1 in band_list:
            maps = self.read(names, y0, y1)
            delta = maps[FLAT_MEAN] - self.dark_at_flat(maps)
            self._touched.add(RESPONSE)
            response = _divide_sites(delta, y0, site_medians, self.store.buffer(RESPONSE, y0, y1))
            valid = np.isfinite(response) & (response > 0.05)
            blocks.add(response, valid, y0)
            self.store.commit(RESPONSE, y0, response)
        return blocks.fit(self.config.shading_degree)

    def corrected_medians(self, band_list: list[tuple[int, int]],
                          shading: ShadingFit) -> tuple[tuple[float, ...], float]:
        """Step 2, sweep B: per CFA site, the median of the shading-corrected response (sampled),
        and the robust sigma of the corrected response normalised by those medians."""
        h, w = self.h, self.w
        site_samples = [StridedSample(h, w, s) for s in range(4)]
        whole_sample = StridedSample(h, w, keep_index=True)
        for y0, y1 in band_list:
            corrected = self.read([RESPONSE], y0, y1)[RESPONSE] / self.surface(shading, y0, y1)
            for s in range(4):
                site_samples[s].add(corrected, y0)
            whole_sample.add(corrected, y0)
        medians = [math.nan] * 4
        for group in self.site_groups:
            median = float(np.median(np.concatenate([site_samples[s].values() for s in group])))
            for s in group:
                medians[s] = median
        index = whole_sample.index()
        site = 2 * ((index // w) % 2) + (index % w) % 2
        with np.errstate(invalid="ignore", divide="ignore"):
            normalised = whole_sample.raw() / np.array(medians, F32)[site] if index.size else np.empty(0, F32)
        normalised = np.where(np.array([m != 0 for m in medians])[site], normalised, np.nan).astype(F32)
        return tuple(medians), median_sigma(normalised[np.isfinite(normalised)])[1]

    def point_defects(self, dark: DarkSummary, response: ResponseSummary) -> PointDefects:
        """Step 3, sweep C: point classes of every pixel (kept sparse), per-line counts and the
        line profiles of the dark signal and the corrected response."""
        h, w, have_flat = self.h, self.w, self.have_flat
        use_dark_current = dark.use_dark_current
        consts = point_consts(dark.dark_median_dn, dark.dark_sigma_dn, dark.noise_median_dn,
                              dark.dark_current_median_dn_per_s, self.se_per_dn, response.flat_noise_median_dn,
                              response.response_median_dn, self.thresholds)
        codes = np.array([DEFECT_CODES[c] for c in ("noisy", "warm", "hot", "dead", "stuck")], np.uint8)
        column_counts = np.zeros(w, np.int64)
        row_counts = np.zeros(h, np.int64)
        indices: list[np.ndarray] = []
        classes: list[np.ndarray] = []
        values: list[np.ndarray] = []
        names = self.dark_names(have_flat and self.need_mean_for_flat()) + [DARK_VAR]
        if have_flat:
            names += [FLAT_MEAN, FLAT_VAR]
        profiles = LineProfiles(self.h, self.w, self.row_step, self.col_step,
                                (F32(dark.dark_median_dn), F32(0.0)))
        for y0, y1 in dark.bands:
            maps = self.read(names, y0, y1)
            dark_long = self.dark_long(maps)
            noise = _std_into(maps[DARK_VAR], np.empty_like(maps[DARK_VAR]))
            corrected = flat = dark_at_flat = flat_noise = None
            if have_flat:
                assert response.shading is not None
                corrected = self.corrected(y0, y1, response.shading, response.corrected_medians)
                flat = maps[FLAT_MEAN]
                dark_at_flat = self.dark_at_flat(maps)
                flat_noise = _std_into(maps[FLAT_VAR], np.empty_like(maps[FLAT_VAR]))
            profiles.add(y0, y1, [dark_long] + ([corrected] if corrected is not None else []))
            band_classes, band_values = point_classes(
                dark_long, noise, maps[DARK_CURRENT] if use_dark_current else None, corrected, flat, dark_at_flat,
                flat_noise, consts, codes)
            point = band_classes > 0
            column_counts += np.count_nonzero(point, axis=0)
            row_counts[y0:y1] = np.count_nonzero(point, axis=1)
            k = np.flatnonzero(band_classes)
            indices.append(k + y0 * w)
            classes.append(band_classes.reshape(-1)[k])
            values.append(band_values.reshape(-1)[k])
        self.phase("point_classes")
        return PointDefects(
            indices=np.concatenate(indices), codes=np.concatenate(classes), values=np.concatenate(values),
            column_counts=column_counts, row_counts=row_counts, profiles=profiles,
        )

    def line_defects(self, dark: DarkSummary, response: ResponseSummary, points: PointDefects) -> LineDefects:
        """Bad columns and rows (point-defect fraction, or a line profile off its neighbours),
        then clusters of the point defects off those lines (sparse labelling)."""
        h, w, thresholds = self.h, self.w, self.thresholds
        fraction_c = points.column_counts / h
        fraction_r = points.row_counts / w
        column_bad = fraction_c >= thresholds.bad_line_fraction
        row_bad = fraction_r >= thresholds.bad_line_fraction
        column_value = np.where(column_bad, fraction_c, 0).astype(F32)
        row_value = np.where(row_bad, fraction_r, 0).astype(F32)
        for j, sigma in enumerate([dark.dark_sigma_dn] + ([response.sigma] if self.have_flat else [])):
            if not np.isfinite(sigma) or sigma <= 0:
                continue
            if h >= 8:
                flagged, deviation = line_flags(points.profiles.column_profile(j), sigma, thresholds)
                new = flagged & ~column_bad
                column_value[new] = deviation[new]
                column_bad |= flagged
            if w >= 8:
                flagged, deviation = line_flags(points.profiles.row_profiles[j], sigma, thresholds)
                new = flagged & ~row_bad
                row_value[new] = deviation[new]
                row_bad |= flagged

        # clusters of point defects off the bad lines; point pixels on a bad line take the line's class
        py, px = np.divmod(points.indices, w)
        off_lines = ~column_bad[px] & ~row_bad[py]
        codes, values = points.codes.copy(), points.values.copy()
        labels, count = label_sparse(points.indices[off_lines], w)
        clusters = largest = 0
        if count:
            sizes = np.bincount(labels, minlength=count)
            big = sizes >= thresholds.cluster_min
            clusters = int(np.count_nonzero(big))
            largest = int(sizes.max()) if clusters else 0
            if clusters:
                member = big[labels]
                where = np.flatnonzero(off_lines)[member]
                codes[where] = DEFECT_CODES["cluster"]
                values[where] = sizes[labels[member]].astype(F32)
        self.phase("lines_clusters")
        return LineDefects(
            column_bad=column_bad, row_bad=row_bad, column_value=column_value, row_value=row_value,
            indices=points.indices[off_lines], codes=codes[off_lines], values=values[off_lines],
            cluster_count=clusters, largest_cluster_px=largest,
        )

    def blemish_search(self, dark: DarkSummary, response: ResponseSummary, points: PointDefects,
                       lines: LineDefects) -> BlemishSearch:
        """Step 4, sweep E (with a flat): the blemishes and the flat indices of their pixels."""
        found: list[Blemish] = []
        pixels = np.empty(0, np.int64)
        if self.have_flat:
            assert response.shading is not None
            found, pixels = self.blemishes(dark.bands, response.shading, response.corrected_medians,
                                           points.indices, lines.column_bad, lines.row_bad)
        self.phase("blemishes")
        return BlemishSearch(found, pixels)

    def classes_and_sums(self, dark: DarkSummary, response: ResponseSummary, lines: LineDefects,
                         blemishes: BlemishSearch) -> BandedAnalysis:
        """Step 5, sweep D: the final class map into the store, the defect rows, the class counts and
        the good-pixel sums of every spatial statistic (float64, per CFA site and whole sensor)."""
        h, w, have_flat, store = self.h, self.w, self.have_flat, self.store
        shifts = self.shifts()
        sums = np.zeros((5, bk.N_QUANTITIES, 3))
        row_acc = np.zeros((h, 2, 2))
        col_acc = np.zeros((w, 2, 2))
        class_counts = np.zeros((4, 10), np.int64)
        out_y: list[np.ndarray] = []
        out_x: list[np.ndarray] = []
        out_codes: list[np.ndarray] = []
        out_values: list[np.ndarray] = []
        names = [DARK_MEAN, DARK_VAR, DARK_OFFSET, DARK_CURRENT] + ([FLAT_MEAN, FLAT_VAR] if have_flat else [])
        dummy = np.zeros((1, 1), F32)
        for y0, y1 in dark.bands:
            maps = self.read(names, y0, y1)
            self._touched.update((CLASSES, RESPONSE))
            classes = store.buffer(CLASSES, y0, y1)
            values = self.band_classes(y0, y1, lines, blemishes.pixels, classes)
            ys, xs = np.nonzero((classes > 0) & (classes != DEFECT_CODES["blemish"]))
            out_y.append(ys + y0)
            out_x.append(xs)
            out_codes.append(classes[ys, xs])
            out_values.append(values[ys, xs])
            if have_flat:
                assert response.shading is not None
                dark_at_flat = self.dark_at_flat(maps)
                flat_mean, flat_var = maps[FLAT_MEAN], maps[FLAT_VAR]
                surface = self.surface(response.shading, y0, y1)
            else:
                dark_at_flat = flat_mean = flat_var = surface = dummy
                no_response = store.buffer(RESPONSE, y0, y1)
                no_response.fill(np.nan)
                store.commit(RESPONSE, y0, no_response)
            bk.good_sums(y0, classes, maps[DARK_MEAN], maps[DARK_VAR], maps[DARK_OFFSET], maps[DARK_CURRENT], flat_mean,
                         flat_var, np.ascontiguousarray(dark_at_flat), surface, have_flat, shifts, sums, row_acc,
                         col_acc, class_counts)
            store.commit(CLASSES, y0, classes)
        self.phase("classes_sums")
        good = [self.group_sums(bk.WHOLE, sums, shifts, row_acc, col_acc)]
        if not self.mono:
            good += [self.group_sums(s, sums, shifts, row_acc, col_acc) for s in range(4)]
        summary = DefectSummary(
            y=np.concatenate(out_y), x=np.concatenate(out_x), codes=np.concatenate(out_codes),
            values=np.concatenate(out_values), class_counts=class_counts,
            bad_columns=[int(c) for c in np.flatnonzero(lines.column_bad)],
            bad_rows=[int(r) for r in np.flatnonzero(lines.row_bad)],
            cluster_count=lines.cluster_count, largest_cluster_px=lines.largest_cluster_px,
            blemishes=blemishes.blemishes, units=_value_units(dark.use_dark_current),
        )
        return BandedAnalysis(result=dark.result, shading=response.shading, defects=summary, good=good,
                              have_flat=have_flat, timings=self.timings, flat_blocks=self.flat_block_attr())

    def flat_block_attr(self) -> dict[str, Any] | None:
        """The spatial flat's block means for the maps group (:mod:`sensorfleet.emva.flatblocks`)."""
        if self.flat_blocks is None or self.flat_sp is None:
            return None
        return to_attr(self.flat_blocks.means(), list(self.flat_sp.indices), list(self.dark_sp.indices))

    def band_classes(self, y0: int, y1: int, lines: LineDefects, blemish_pixels: np.ndarray,
                     classes: np.ndarray) -> np.ndarray:
        """Fill ``classes`` ((y1 - y0, W) uint8) with the final class of rows y0:y1: point defects
        and clusters, then bad columns and rows over them, then blemish pixels where still good.
        Returns the value that classified each pixel ((y1 - y0, W) float32; 0 where good)."""
        w = self.w
        classes.fill(0)
        values = np.zeros((y1 - y0, w), F32)
        a, b = np.searchsorted(lines.indices, [y0 * w, y1 * w])
        classes.reshape(-1)[lines.indices[a:b] - y0 * w] = lines.codes[a:b]
        values.reshape(-1)[lines.indices[a:b] - y0 * w] = lines.values[a:b]
        classes[:, lines.column_bad] = DEFECT_CODES["bad_column"]
        values[:, lines.column_bad] = lines.column_value[lines.column_bad][None, :]
        bad_rows = lines.row_bad[y0:y1]
        classes[bad_rows, :] = DEFECT_CODES["bad_row"]
        values[bad_rows, :] = lines.row_value[y0:y1][bad_rows][:, None]
        a, b = np.searchsorted(blemish_pixels, [y0 * w, y1 * w])
        if b > a:
            flat_classes = classes.reshape(-1)
            pixels = blemish_pixels[a:b] - y0 * w
            flat_classes[pixels[flat_classes[pixels] == 0]] = DEFECT_CODES["blemish"]
        return values

    def corrected(self, y0: int, y1: int, shading: ShadingFit, medians: Sequence[float]) -> np.ndarray:
        """Shading-corrected relative response of rows y0:y1 (1 = channel median), float32."""
        corrected = self.read([RESPONSE], y0, y1)[RESPONSE] / self.surface(shading, y0, y1)
        return _divide_sites(corrected, y0, medians, corrected)

    def blemishes(self, band_list: list[tuple[int, int]], shading: ShadingFit, medians: Sequence[float], points: np.ndarray,
                  col_bad: np.ndarray, row_bad: np.ndarray) -> tuple[list[Blemish], np.ndarray]:
        """Step 4: box-filtered corrected response - 1 with every defect neutralised; regions below
        ``-blemish_depth`` of ``blemish_min_area_px`` .. ``blemish_max_area_fraction`` x H x W pixels.

        Rows are smoothed with a halo of ``smooth // 2`` rows (the box filter's sums are exact, so a
        band gives the same values as the whole map); only the low pixels are kept. Returns the
        blemishes (raster order of their first pixel) and the flat indices of their pixels."""
        thresholds = self.thresholds
        h, w = self.h, self.w
        size = thresholds.blemish_smooth_px
        halo = size // 2
        pending = deque(band_list)
        win: np.ndarray | None = None
        win_start = 0
        low_idx: list[np.ndarray] = []
        low_val: list[np.ndarray] = []
        for y0, y1 in band_list:
            resid = self.corrected(y0, y1, shading, medians) - F32(1.0)
            neutral = np.zeros(resid.shape, bool)
            neutral[:, col_bad] = True
            neutral[row_bad[y0:y1]] = True
            a, b = np.searchsorted(points, [y0 * w, y1 * w])
            neutral.reshape(-1)[points[a:b] - y0 * w] = True
            resid[neutral | ~np.isfinite(resid)] = 0.0
            win = resid if win is None else np.concatenate([win, resid])
            while pending and y1 >= min(h, pending[0][1] + halo):
                oy0, oy1 = pending.popleft()
                lo, hi = max(0, oy0 - halo), min(h, oy1 + halo)
                smooth = ndimage.uniform_filter(win[lo - win_start : hi - win_start], size=size, mode="nearest")
                smooth = smooth[oy0 - lo : oy1 - lo]
                k = np.flatnonzero(smooth < -thresholds.blemish_depth)
                low_idx.append(k + oy0 * w)
                low_val.append(smooth.reshape(-1)[k])
                if pending:
                    start = max(0, pending[0][0] - halo)
                    win = win[start - win_start :]
                    win_start = start
        lin = np.concatenate(low_idx) if low_idx else np.empty(0, np.int64)
        smooth_v = np.concatenate(low_val) if low_val else np.empty(0, F32)
        labels, count = label_sparse(lin, w)
        found: list[Blemish] = []
        if count == 0:
            return found, np.empty(0, np.int64)
        ys, xs = np.divmod(lin, w)
        weight = (-smooth_v).astype(np.float64)
        areas = np.bincount(labels, minlength=count)
        norm = np.bincount(labels, weight, minlength=count)
        cy = np.bincount(labels, weight * ys, minlength=count) / norm
        cx = np.bincount(labels, weight * xs, minlength=count) / norm
        mins = np.full(count, np.inf, F32)
        np.minimum.at(mins, labels, smooth_v)
        keep = np.zeros(count, bool)
        for lab in range(count):
            if thresholds.blemish_min_area_px <= areas[lab] <= thresholds.blemish_max_area_fraction * h * w:
                found.append(Blemish(x=float(cx[lab]), y=float(cy[lab]), area_px=int(areas[lab]), depth=float(-mins[lab])))
                keep[lab] = True
        return found, lin[keep[labels]]

    def group_sums(self, g: int, sums: np.ndarray, shifts: np.ndarray, row_acc: np.ndarray,
                   col_acc: np.ndarray) -> GoodPixelSums:
        """The good-pixel sums of group g (a CFA site's plane, or WHOLE) with its line means."""
        with np.errstate(invalid="ignore", divide="ignore"):
            if g == bk.WHOLE:
                rows = row_acc.sum(axis=1)
                cols = col_acc.sum(axis=1)
                shape = (self.h, self.w)
            else:
                rows = row_acc[g // 2 :: 2, g % 2]
                cols = col_acc[g % 2 :: 2, g // 2]
                shape = site_plane_shape(self.h, self.w, g)
            return GoodPixelSums(sums=sums[g].copy(), shifts=shifts[g].copy(), row_means=rows[:, 0] / rows[:, 1],
                                 col_means=cols[:, 0] / cols[:, 1], plane_shape=shape)


def _value_units(use_dc: bool) -> dict[str, str]:
    from sensorfleet.emva.defects import VALUE_UNITS

    units = dict(VALUE_UNITS)
    if use_dc:
        # the slope must stand out of the pixel's own noise: an RTS pixel's random level jumps
        # between the exposures fake a slope (standard error = noise x se_per_dn)
        units["hot"] = units["warm"] = "x_median_dark_current"
    return units


def analyse(frames: ArrayLike3D, manifest: Manifest, config: CharacterizationConfig, store: MapStore) -> BandedAnalysis:
    """Run the pass over ``frames`` ((n, H, W) uint16, manifest order) and the sweeps over ``store``
    (maps written there: ``dark_offset_dn``, ``dark_current_dn_per_s``, ``temporal_dark_noise_dn``,
    ``prnu_relative``, ``defect_class`` and the scratch averages/variances)."""
    return _Analysis(manifest, config, store).run(frames)
