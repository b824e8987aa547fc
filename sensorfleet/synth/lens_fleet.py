"""The lenses of a fleet with edge charts: drawn per lot and module from a stream of their own
(``default_rng([seed, 0x1E45])``), so every sensor draw of the fleet is what it was without
charts; the lens faults; the final test's optics measurement.

| lens parameter | lot | module | fault |
|---|---|---|---|
| `sigma0_px` (in-focus PSF sigma) | | N(0.75, 0.03) | |
| `defocus_px` | N(0, 0.15) | + N(0, 0.2) | `defocus`: +-U(1.3, 2.0) |
| `tilt_u_px`, `tilt_v_px` | | N(0, 0.2) each | `lens_tilt`: U(1.5, 2.2) in a uniform direction |
| `curvature_px` | N(1.0, 0.15) | + N(0, 0.1) | |
| `colour_drop_r` / `_b` | x N(1, 0.2) | 0.08 / 0.03 x N(1, 0.15) | |
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from sensorfleet.synth.lens import module_truth
from sensorfleet.synth.params import LensParams

if TYPE_CHECKING:
    from sensorfleet.synth.fleet import FleetConfig, ModulePlan

LENS_STREAM = 0x1E45
FINAL_TEST_NOISE_REL = 0.03


def _lens(rng: np.random.Generator, lot: dict[str, float], fault: str | None) -> LensParams:
    lens = LensParams(
        sigma0_px=float(rng.normal(0.75, 0.03)),
        defocus_px=float(lot["defocus"] + rng.normal(0, 0.2)),
        tilt_u_px=float(rng.normal(0, 0.2)), tilt_v_px=float(rng.normal(0, 0.2)),
        curvature_px=float(lot["curvature"] + rng.normal(0, 0.1)),
        colour_drop_r=float(0.08 * lot["colour"] * rng.normal(1, 0.15)),
        colour_drop_b=float(0.03 * lot["colour"] * rng.normal(1, 0.15)),
    )
    if fault == "defocus":
        return replace(lens, defocus_px=float(rng.choice([-1.0, 1.0]) * rng.uniform(1.3, 2.0)))
    if fault == "lens_tilt":
        size, angle = rng.uniform(1.5, 2.2), rng.uniform(0, 2 * math.pi)
        return replace(lens, tilt_u_px=float(size * math.cos(angle)), tilt_v_px=float(size * math.sin(angle)))
    return lens


def add_lenses(config: FleetConfig, plans: list[ModulePlan], measured: list[dict[str, float]],
               lot_of: np.ndarray) -> tuple[list[ModulePlan], list[dict[str, float]]]:
    """Each module with its lens, and its final-test measurement with the optics values
    (``mtf50_center``, ``mtf50_corner_min``, ``colour_shading_pct``: truth x (1 + 3 % noise))."""
    rng = np.random.default_rng([config.seed, LENS_STREAM])
    n_lots = int(lot_of.max()) + 1 if len(lot_of) else 0
    lots = [{"defocus": float(rng.normal(0, 0.15)), "curvature": float(rng.normal(1.0, 0.15)),
             "colour": float(rng.normal(1, 0.2))} for _ in range(n_lots)]
    out_plans, out_measured = [], []
    for plan, m in zip(plans, measured, strict=True):
        lens = _lens(rng, lots[int(lot_of[plan.index])], plan.fault_class)
        params = replace(plan.params, lens=lens)
        truth = module_truth(params, lens)
        noise = rng.normal(1, FINAL_TEST_NOISE_REL, 3)
        out_plans.append(replace(plan, params=params))
        out_measured.append(m | {
            "mtf50_center": truth["mtf50_center_true_cy_per_px"] * float(noise[0]),
            "mtf50_corner_min": truth["mtf50_corner_min_true_cy_per_px"] * float(noise[1]),
            "colour_shading_pct": max(truth["colour_shading_r_true_pct"], truth["colour_shading_b_true_pct"])
            * float(noise[2]),
        })
    return out_plans, out_measured
