"""Per-module sharpness figures from a chart's edges (luminance, or mono).

- centre: median MTF50 of the good edges within ``centre_field`` of the centre;
- corners: the good edges with a field fraction in ``corner_field`` (0.65-0.85: the 0.7-0.8 zone
  with the edges around a corner square), grouped by quadrant (top-left, top-right, bottom-left,
  bottom-right); each quadrant's median; ``mtf50_corner_min`` their minimum;
- field uniformity: worst corner over the centre (1 = uniform);
- tilt estimate: the larger difference between opposite corners' MTF50 (a tilted lens focuses
  one corner and defocuses the opposite one; field curvature lowers all four alike).
Every figure is NaN when its edges are missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sensorfleet.optics.chart import LUMINANCE, MONO, EdgeMeasurement

QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


@dataclass(frozen=True)
class FieldZones:
    """Field fractions (radius / half diagonal) of the centre and corner zones."""

    centre_field: float = 0.2
    corner_field: tuple[float, float] = (0.65, 0.85)


@dataclass(frozen=True)
class ModuleSharpness:
    mtf50_center: float
    corner_mtf50: dict[str, float]  # quadrant -> median MTF50
    mtf50_corner_min: float
    field_uniformity: float
    tilt_mtf50_diff: float
    edges_found: int
    edges_ok: int


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def _quadrant(m: EdgeMeasurement, width: int, height: int) -> str:
    top = m.y_px < (height - 1) / 2.0
    left = m.x_px < (width - 1) / 2.0
    return f"{'top' if top else 'bottom'}_{'left' if left else 'right'}"


def module_sharpness(edges: Sequence[EdgeMeasurement], width: int, height: int,
                     zones: FieldZones = FieldZones()) -> ModuleSharpness:
    """The module's sharpness figures from its chart's edges (luminance or mono rows)."""
    main = [m for m in edges if m.channel in (LUMINANCE, MONO)]
    good = [m for m in main if m.quality == "ok" and math.isfinite(m.mtf50_cy_per_px)]
    centre = _median([m.mtf50_cy_per_px for m in good if m.field_frac <= zones.centre_field])
    lo, hi = zones.corner_field
    by_quadrant: dict[str, list[float]] = {q: [] for q in QUADRANTS}
    for m in good:
        if lo <= m.field_frac <= hi:
            by_quadrant[_quadrant(m, width, height)].append(m.mtf50_cy_per_px)
    corners = {q: _median(v) for q, v in by_quadrant.items()}
    finite = [v for v in corners.values() if math.isfinite(v)]
    corner_min = min(finite) if len(finite) == len(QUADRANTS) else math.nan
    diagonals = [abs(corners["top_left"] - corners["bottom_right"]), abs(corners["top_right"] - corners["bottom_left"])]
    tilt = max(diagonals) if all(math.isfinite(d) for d in diagonals) else math.nan
    return ModuleSharpness(centre, corners, corner_min, corner_min / centre if centre > 0 else math.nan, tilt,
                           len(main), len(good))
