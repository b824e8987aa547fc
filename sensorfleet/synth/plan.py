"""The capture plan a test station runs on every module (fixed per product, not per module).

Order of frames: a dark series at several exposure times, the flat-field photon-transfer (PTC)
series at one exposure time from low light to beyond saturation, then the averaging series of
``averaging_frames`` darks and flats at ~50 % saturation, both at the PTC exposure time. Every
flat operating point has a dark at the same ``exposure_s`` (the PTC exposure is one of the dark
exposures; EMVA 1288 subtracts the dark at the same exposure). The averaging frames share their
operating point with the dark reference and (when it is one of the levels) the 50 % PTC level,
so those points hold ``frames_per_point + averaging_frames`` frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sensorfleet.manifest import OperatingPoint
from sensorfleet.synth.params import NOMINAL_FULL_WELL_E, NOMINAL_QE

Series = Literal["dark_series", "ptc", "averaging_dark", "averaging_flat", "edge_chart"]

#: photons at which a nominal green pixel saturates: full well / QE_G
NOMINAL_SATURATION_PHOTONS = NOMINAL_FULL_WELL_E / NOMINAL_QE["G"]
#: the edge chart's light background, as a fraction of nominal green saturation (clear of the
#: non-linearity knee and of clipping with the fleet's QE and shading spread)
CHART_BACKGROUND_FRACTION = 0.6


@dataclass(frozen=True)
class PlannedFrame(OperatingPoint):
    """One frame of the plan: its operating point and the series it belongs to."""

    series: Series


@dataclass(frozen=True)
class CapturePlan:
    """The frames of one capture session, in capture order.

    Any plan is checked on construction for what the EMVA 1288 analysis cannot do without: two or
    more frames per operating point (temporal noise needs pairs), darks at ``ptc_exposure_s`` and
    at the exposure of every flat (the dark subtracted at the same exposure), and two or more flat
    levels at ``ptc_exposure_s`` (the photon-transfer slope). :func:`build_plan` builds the
    station's plan; tests and benchmarks build smaller ones with :meth:`from_blocks`.
    """

    frames: tuple[PlannedFrame, ...]
    ptc_exposure_s: float

    def __post_init__(self) -> None:
        counts = Counter((f.kind, f.exposure_s, f.photons_per_pixel) for f in self.frames)
        single = sorted(point for point, n in counts.items() if n < 2)
        if single:
            raise ValueError(f"every operating point needs >= 2 frames (temporal noise needs pairs); "
                             f"found 1 frame at (kind, exposure_s, photons_per_pixel) {single[:3]}")
        dark_exposures = {t for kind, t, _ in counts if kind == "dark"}
        flat_exposures = {t for kind, t, _ in counts if kind == "flat"} | {self.ptc_exposure_s}
        missing = sorted(flat_exposures - dark_exposures)
        if missing:
            raise ValueError(f"need darks at every flat exposure and at ptc_exposure_s; missing exposure_s "
                             f"{missing}, dark exposures found {sorted(dark_exposures)}")
        levels = {ph for kind, t, ph in counts if kind == "flat" and t == self.ptc_exposure_s}
        if len(levels) < 2:
            raise ValueError(f"need >= 2 flat levels at ptc_exposure_s={self.ptc_exposure_s} for the "
                             f"photon-transfer slope, found {sorted(levels)}")

    @classmethod
    def from_blocks(cls, blocks: Iterable[tuple[PlannedFrame, int]], ptc_exposure_s: float) -> CapturePlan:
        """A plan of ``count`` repeats of each planned frame, in the order given (validated)."""
        return cls(frames=tuple(frame for frame, count in blocks for _ in range(count)),
                   ptc_exposure_s=ptc_exposure_s)

    def __len__(self) -> int:
        return len(self.frames)


def ptc_fractions(levels: int) -> list[float]:
    """PTC illumination levels as fractions of nominal green saturation.

    ``levels - 3`` equally spaced levels up to 1.0 (dense in the linear range used for the gain
    fit) and 3 levels beyond saturation (1.3, 1.7, 2.2) so that low-QE channels and low-QE modules
    saturate too.
    """
    if levels < 12:
        raise ValueError(f"ptc_levels must be >= 12 (EMVA 1288 needs a dense photon-transfer series), found {levels}")
    n_lin = levels - 3
    return [round((i + 1) / n_lin, 6) for i in range(n_lin)] + [1.3, 1.7, 2.2]


def build_plan(*, ptc_levels: int = 13, frames_per_point: int = 2, averaging_frames: int = 16,
               ptc_exposure_s: float = 0.01, dark_exposures_s: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0),
               saturation_photons: float = NOMINAL_SATURATION_PHOTONS, chart_frames: int = 0) -> CapturePlan:
    """Build the station's capture plan.

    ``saturation_photons`` is the photons per pixel (EMVA mu_p) at which a nominal pixel saturates;
    the PTC levels are fractions of it (:func:`ptc_fractions`), rounded to 0.1 photon.
    ``chart_frames`` edge-chart frames (light background at :data:`CHART_BACKGROUND_FRACTION` of
    saturation, at the PTC exposure) follow the averaging series; 0: none (the plan of fleets
    without charts, unchanged).
    """
    if frames_per_point < 2:
        raise ValueError(f"frames_per_point must be >= 2 (temporal noise needs pairs), found {frames_per_point}")
    if averaging_frames < 2:
        raise ValueError(f"averaging_frames must be >= 2, found {averaging_frames}")
    darks = tuple(sorted(set(dark_exposures_s) | {ptc_exposure_s}))
    if len(darks) < 4:
        raise ValueError(f"need >= 4 dark exposure times for the dark-current slope, found {darks}")
    frames: list[PlannedFrame] = []
    for exposure in darks:
        frames += [PlannedFrame("dark", exposure, 0.0, "dark_series")] * frames_per_point
    for frac in ptc_fractions(ptc_levels):
        photons = round(frac * saturation_photons, 1)
        frames += [PlannedFrame("flat", ptc_exposure_s, photons, "ptc")] * frames_per_point
    frames += [PlannedFrame("dark", ptc_exposure_s, 0.0, "averaging_dark")] * averaging_frames
    half = round(0.5 * saturation_photons, 1)
    frames += [PlannedFrame("flat", ptc_exposure_s, half, "averaging_flat")] * averaging_frames
    if chart_frames:
        background = round(CHART_BACKGROUND_FRACTION * saturation_photons, 1)
        frames += [PlannedFrame("edge_chart", ptc_exposure_s, background, "edge_chart")] * chart_frames
    return CapturePlan(frames=tuple(frames), ptc_exposure_s=ptc_exposure_s)
