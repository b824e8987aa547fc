"""Candidate capture plans: reductions of the plan a session was captured with.

A :class:`PlanChoice` names up to three reductions of the stored plan, each None when the stored
plan is kept on that axis:

- ``frames_per_point``: at most this many frames of every operating point (each of its
  contiguous runs; the first ones, as a station that stopped early would have them). In the
  synthetic station plan only the averaging series (16 dark, 16 flat) hold more than 2.
- ``ptc_levels``: this many of the flat (photon-transfer) levels, spread evenly by index over the
  levels sorted by photons, the darkest and the brightest always kept (so saturation is still
  reached); the level of the spatial (PRNU) series is always kept, in place of the picked level
  nearest to it.
- ``dark_exposures_s``: the dark exposure times kept; the exposure of every kept flat and of the
  spatial dark series are always kept (EMVA 1288 subtracts the dark at the flat's exposure).

Edge-chart frames are no part of the EMVA plan and are always kept. Station time of a plan
(:func:`station_time_s`): the sum of its frames' exposure times plus a per-frame overhead
(readout, and the light source or shutter settling between frames), in seconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.maps import OperatingPoint, choose_spatial, operating_points
from sensorfleet.manifest import EMVA_FRAME_KINDS, Manifest

DEFAULT_FRAME_OVERHEAD_S = 0.05
"""Per-frame overhead of a station (s) when nothing else is known: one frame period at 20 fps, a
common full-resolution rate of 12 MP modules (docs/capture-plan.md). The landing manifest
(schema 1) carries no readout time, so this is a setting."""

FRAME_CAPS = (8, 4, 2)
"""Frames-per-point caps tried (each only where some point holds more)."""
LEVEL_FRACTIONS = (2 / 3, 1 / 2, 1 / 3)
"""Shares of the photon-transfer levels tried (rounded up, at least :data:`MIN_LEVELS`)."""
MIN_LEVELS = 4
"""Fewest photon-transfer levels a candidate keeps: two in the fit range, saturation, one beyond."""


@dataclass(frozen=True)
class PlanChoice:
    """A candidate plan as reductions of the stored one (module doc); all None: the stored plan."""

    frames_per_point: int | None = None
    ptc_levels: int | None = None
    dark_exposures_s: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        fpp = self.frames_per_point
        if fpp is not None and (fpp < 2 or fpp % 2):
            raise ValueError(f"frames_per_point must be even and >= 2 (temporal noise needs pairs), found {fpp}")
        if self.ptc_levels is not None and self.ptc_levels < 2:
            raise ValueError(f"ptc_levels must be >= 2 (the photon-transfer slope), found {self.ptc_levels}")
        if self.dark_exposures_s is not None and not self.dark_exposures_s:
            raise ValueError("dark_exposures_s: expected at least one exposure time (None keeps them all)")

    @property
    def plan_id(self) -> str:
        """Short stable name: ``full``, or e.g. ``f4-l7-d0.01+1`` (frames cap, levels, darks in s)."""
        parts = []
        if self.frames_per_point is not None:
            parts.append(f"f{self.frames_per_point}")
        if self.ptc_levels is not None:
            parts.append(f"l{self.ptc_levels}")
        if self.dark_exposures_s is not None:
            parts.append("d" + "+".join(f"{t:g}" for t in sorted(self.dark_exposures_s)))
        return "-".join(parts) or "full"

    def describe(self) -> str:
        """What the plan keeps, in words."""
        parts = []
        if self.frames_per_point is not None:
            parts.append(f"at most {self.frames_per_point} frames per operating point")
        if self.ptc_levels is not None:
            parts.append(f"{self.ptc_levels} photon-transfer levels")
        if self.dark_exposures_s is not None:
            parts.append("darks at " + ", ".join(f"{t:g}" for t in sorted(self.dark_exposures_s)) + " s")
        return "; ".join(parts) or "the stored plan: every frame"

    def combine(self, other: PlanChoice) -> PlanChoice:
        """The reductions of both (``other``'s where both reduce an axis)."""
        return PlanChoice(**{f.name: getattr(other, f.name) if getattr(other, f.name) is not None
                             else getattr(self, f.name) for f in fields(self)})


FULL = PlanChoice()


def _levels(points: Sequence[OperatingPoint]) -> list[tuple[float, float]]:
    """Distinct flat levels ``(photons_per_pixel, exposure_s)``, darkest first."""
    return sorted({(p.photons_per_pixel, p.exposure_s) for p in points if p.kind == "flat"})


def _kept_levels(levels: list[tuple[float, float]], n: int | None, spatial: tuple[float, float] | None) -> set[tuple[float, float]]:
    if n is None or n >= len(levels):
        return set(levels)
    picked = [int(i) for i in np.unique(np.round(np.linspace(0, len(levels) - 1, n)).astype(int))]
    if spatial is not None and levels.index(spatial) not in picked:  # the PRNU series' level replaces its nearest
        target = levels.index(spatial)
        inner = picked[1:-1] or picked
        picked[picked.index(min(inner, key=lambda i: abs(i - target)))] = target
    return {levels[i] for i in picked}


def select_indices(manifest: Manifest, choice: PlanChoice) -> tuple[int, ...]:
    """Frame indices (manifest order) the plan ``choice`` keeps of ``manifest``'s frames."""
    points = operating_points(manifest)
    dark_i, flat_i = choose_spatial(points)
    spatial_level = (points[flat_i].photons_per_pixel, points[flat_i].exposure_s) if flat_i is not None else None
    levels = _kept_levels(_levels(points), choice.ptc_levels, spatial_level)
    flats = [p for p in points if p.kind == "flat" and (p.photons_per_pixel, p.exposure_s) in levels]
    needed = [p.exposure_s for p in flats] + [points[dark_i].exposure_s]
    wanted = list(choice.dark_exposures_s) if choice.dark_exposures_s is not None else None
    darks = [p for p in points if p.kind == "dark" and (
        wanted is None or any(same_exposure(p.exposure_s, t) for t in [*wanted, *needed]))]
    cap = choice.frames_per_point
    kept = [i for p in darks + flats for i in (p.indices[:cap] if cap is not None else p.indices)]
    kept += [i for i, f in enumerate(manifest.frames) if f.kind not in EMVA_FRAME_KINDS]
    return tuple(sorted(kept))


def station_time_s(manifest: Manifest, indices: Sequence[int], frame_overhead_s: float) -> float:
    """Seconds a station spends on frames ``indices``: their exposure times plus
    ``frame_overhead_s`` per frame."""
    return float(sum(manifest.frames[i].exposure_s for i in indices) + frame_overhead_s * len(indices))


@dataclass(frozen=True)
class Reductions:
    """The single-axis reductions worth trying on a plan, per axis (none may be empty)."""

    frames: tuple[PlanChoice, ...]
    levels: tuple[PlanChoice, ...]
    darks: tuple[PlanChoice, ...]

    def singles(self) -> list[PlanChoice]:
        return [*self.frames, *self.levels, *self.darks]

    def combinations(self, keep: set[PlanChoice]) -> list[PlanChoice]:
        """Every combination of the reductions in ``keep`` across two or three axes."""
        axes = [[FULL, *[c for c in axis if c in keep]] for axis in (self.frames, self.levels, self.darks)]
        out = []
        for a, b, c in itertools.product(*axes):
            combined = a.combine(b).combine(c)
            if sum(x != FULL for x in (a, b, c)) >= 2:
                out.append(combined)
        return out


def reductions(manifest: Manifest) -> Reductions:
    """The reductions tried on ``manifest``'s plan: frames-per-point caps under its largest point
    (:data:`FRAME_CAPS`), shares of its levels (:data:`LEVEL_FRACTIONS`, >= :data:`MIN_LEVELS`),
    and every set of its dark exposures that keeps the required ones and at least two (the dark
    current needs a slope); with more than four optional exposures, only the shortest ones kept."""
    points = operating_points(manifest)
    dark_i, flat_i = choose_spatial(points)
    longest = max(p.n_frames for p in points)
    frames = tuple(PlanChoice(frames_per_point=c) for c in FRAME_CAPS if c < longest)
    n_levels = len(_levels(points))
    counts = sorted({max(MIN_LEVELS, math.ceil(n_levels * f)) for f in LEVEL_FRACTIONS if n_levels > MIN_LEVELS}, reverse=True)
    levels = tuple(PlanChoice(ptc_levels=n) for n in counts if n < n_levels)
    exposures = sorted({p.exposure_s for p in points if p.kind == "dark"})
    required = {t for t in exposures if any(same_exposure(t, p.exposure_s) for p in points
                                            if p.kind == "flat" or p is points[dark_i])}
    optional = [t for t in exposures if t not in required]
    if len(optional) <= 4:
        subsets = [s for k in range(len(optional)) for s in itertools.combinations(optional, k)]
    else:
        subsets = [tuple(optional[:k]) for k in range(len(optional))]
    darks = tuple(PlanChoice(dark_exposures_s=tuple(sorted(required | set(s)))) for s in subsets
                  if len(required | set(s)) >= 2)
    return Reductions(frames, levels, darks)
