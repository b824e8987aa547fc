"""The typed results of the characterization's steps (:mod:`sensorfleet.emva.analysis`): each step
takes the frozen results of the steps before it and returns its own, so the analysis reads as a
chain of small steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorfleet.emva.config import DEFECT_CODES
from sensorfleet.emva.maps import PassResult
from sensorfleet.emva.metrics import GoodPixelSums
from sensorfleet.emva.shading import Blemish, ShadingFit


@dataclass(frozen=True)
class DefectSummary:
    """Defects of a session, sparse: one entry per defective pixel (raster order), lines, blemishes."""

    y: np.ndarray  # (k,) int64 rows of the defect pixels (classes 1..8, blemish pixels excluded)
    x: np.ndarray  # (k,) int64
    codes: np.ndarray  # (k,) uint8 config.DEFECT_CODES
    values: np.ndarray  # (k,) float32 the value that classified each pixel
    class_counts: np.ndarray  # (4, 10) int64: pixels per CFA site and class code (0 = good, 9 = blemish)
    bad_columns: list[int]
    bad_rows: list[int]
    cluster_count: int
    largest_cluster_px: int
    blemishes: list[Blemish]
    units: dict[str, str]

    def counts(self) -> dict[str, int]:
        """Pixels per class (blemishes are counted as spots, not pixels)."""
        total = self.class_counts.sum(axis=0)
        out = {name: int(total[code]) for name, code in DEFECT_CODES.items()}
        out["blemish"] = len(self.blemishes)
        return out


@dataclass(frozen=True)
class BandedAnalysis:
    """What the analysis hands to the tables: the pass's sums, shading, defects, good-pixel sums."""

    result: PassResult
    shading: ShadingFit | None
    defects: DefectSummary
    good: list[GoodPixelSums]  # [whole sensor] + ([site 0..3] unless mono)
    have_flat: bool
    timings: dict[str, float]  # seconds per step ("pass", "response_shading", ... "classes_sums")
    #: the spatial flat's block means for the optics layer (``flatblocks.ATTR``); None without a
    #: flat or a dark at its exposure
    flat_blocks: dict[str, Any] | None = None


@dataclass(frozen=True)
class DarkSummary:
    """Step 0: the pass's result, the sweeps' bands and the robust statistics of the dark maps."""

    result: PassResult
    bands: list[tuple[int, int]]  # (y0, y1) rows of each band of the sweeps
    dark_median_dn: float  # dark signal at the longest dark exposure
    dark_sigma_dn: float  # its robust sigma
    noise_median_dn: float  # temporal dark noise
    dark_current_median_dn_per_s: float  # NaN with one dark exposure

    @property
    def use_dark_current(self) -> bool:
        """Whether hot and warm pixels are classified by their dark current (a positive median)."""
        return bool(np.isfinite(self.dark_current_median_dn_per_s) and self.dark_current_median_dn_per_s > 0)


@dataclass(frozen=True)
class ResponseSummary:
    """Steps 1-2: the shading fit and the statistics of the (corrected) response; None / NaN
    without a flat."""

    shading: ShadingFit | None
    corrected_medians: tuple[float, ...]  # (4,) per CFA site: median of response / shading
    sigma: float  # robust sigma of the corrected response over its channel median
    response_median_dn: float  # flat - dark at the spatial flat
    flat_noise_median_dn: float  # temporal noise of the spatial flat


class LineProfiles:
    """Line profiles of up to two images (the dark signal, the corrected response) minus a shift:
    the rows sampled for the column profiles (every ``row_step``-th row), and per row the median
    over every ``col_step``-th column."""

    def __init__(self, height: int, width: int, row_step: int, col_step: int, shifts: tuple[np.float32, ...]) -> None:
        self.height, self.width = height, width
        self.row_step, self.col_step, self.shifts = row_step, col_step, shifts
        self.sampled_rows: list[list[np.ndarray]] = [[], []]
        self.row_profiles = np.zeros((2, height), np.float32)

    def add(self, y0: int, y1: int, images: list[np.ndarray]) -> None:
        """Rows y0:y1 of each image."""
        sel = np.arange(y0, y1) % self.row_step == 0
        for j, image in enumerate(images):
            if self.height >= 8:
                self.sampled_rows[j].append((image[sel] - self.shifts[j]).astype(np.float32))
            if self.width >= 8:
                self.row_profiles[j, y0:y1] = np.median((image[:, :: self.col_step] - self.shifts[j]).astype(np.float32), axis=1)

    def column_profile(self, j: int) -> np.ndarray:
        """(W,) median of image j's sampled rows (needs height >= 8)."""
        return np.median(np.concatenate(self.sampled_rows[j]), axis=0)


@dataclass(frozen=True)
class PointDefects:
    """Step 3: every point-defect pixel (sparse, raster order), per-line counts, line profiles."""

    indices: np.ndarray  # (k,) int64 flat indices y * W + x
    codes: np.ndarray  # (k,) uint8 config.DEFECT_CODES
    values: np.ndarray  # (k,) float32 the value that classified each pixel
    column_counts: np.ndarray  # (W,) int64 point defects per column
    row_counts: np.ndarray  # (H,) int64 point defects per row
    profiles: LineProfiles


@dataclass(frozen=True)
class LineDefects:
    """Bad lines and clusters, and the point defects off the bad lines (clusters marked)."""

    column_bad: np.ndarray  # (W,) bool
    row_bad: np.ndarray  # (H,) bool
    column_value: np.ndarray  # (W,) float32 the value that flagged each bad column
    row_value: np.ndarray  # (H,) float32
    indices: np.ndarray  # (k,) int64 flat indices of the point defects off the bad lines
    codes: np.ndarray  # (k,) uint8 their classes (cluster members: "cluster")
    values: np.ndarray  # (k,) float32 their values (cluster members: the cluster's size)
    cluster_count: int
    largest_cluster_px: int


@dataclass(frozen=True)
class BlemishSearch:
    """Step 4: the blemishes (raster order of their first pixel) and the flat indices of their pixels."""

    blemishes: list[Blemish]
    pixels: np.ndarray  # (k,) int64, sorted
