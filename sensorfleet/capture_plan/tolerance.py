"""Per-metric tolerances of a shorter capture plan against the full one, and the deviations.

A :class:`Tolerance` is relative (``|reduced - full| / |full| <= limit``, written ``2%``) or
absolute in the metric's own unit (``|reduced - full| <= limit``, written ``0.5``), per the
metric: relative where the quantity scales (gain, noise, capacity), absolute where it sits near
zero or is itself a percentage or a logarithm (offset, linearity error, dB, defect counts). The
defaults (:data:`DEFAULT_TOLERANCES`) and their reasons are in docs/capture-plan.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sensorfleet.registry import MODULE_STATS


def metric_columns() -> list[str]:
    """The ``module_stats`` columns a tolerance may name: every numeric feature column but the
    die temperature (a capture condition, not a measurement)."""
    return [c.name for c in MODULE_STATS.features if c.dtype in ("f64", "i64") and c.name != "temperature_c"]


@dataclass(frozen=True)
class Tolerance:
    """How far a reduced plan's ``metric`` may lie from the full plan's: ``limit`` as a fraction
    of the full value (``relative``) or in the metric's unit."""

    metric: str
    limit: float
    relative: bool

    def __post_init__(self) -> None:
        if self.metric not in metric_columns():
            raise ValueError(f"tolerance: unknown metric {self.metric!r}; valid: {', '.join(metric_columns())}")
        if not (math.isfinite(self.limit) and self.limit > 0):
            raise ValueError(f"tolerance of {self.metric}: expected a positive finite limit, found {self.limit}")

    @property
    def unit(self) -> str:
        """``relative`` or the metric's unit (registry)."""
        return "relative" if self.relative else (MODULE_STATS.column(self.metric).unit or "1")

    def text(self) -> str:
        """``2%`` or ``0.5 DN``."""
        return f"{self.limit * 100:g}%" if self.relative else f"{self.limit:g} {self.unit}"

    def deviation(self, full: np.ndarray, reduced: np.ndarray) -> np.ndarray:
        """Per module: ``|reduced - full|``, divided by ``|full|`` when relative (a full value of 0:
        0 if equal, else inf). Both NaN: 0 (the plan changes nothing); one NaN: inf."""
        f = np.asarray(full, dtype=np.float64)
        r = np.asarray(reduced, dtype=np.float64)
        d = np.abs(r - f)
        if self.relative:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(d == 0, 0.0, d / np.abs(f))
        both_nan = np.isnan(f) & np.isnan(r)
        return np.where(both_nan, 0.0, np.where(np.isnan(f) | np.isnan(r), np.inf, d))


def parse_tolerance(text: str) -> Tolerance:
    """``metric=2%`` (relative) or ``metric=0.5`` (absolute, the metric's unit); the error names
    what was expected."""
    metric, sep, value = text.partition("=")
    if not sep or not metric.strip() or not value.strip():
        raise ValueError(f"tolerance {text!r}: expected METRIC=LIMIT, e.g. gain_k_dn_per_e=2% or dark_offset_dn=0.5")
    value = value.strip()
    relative = value.endswith("%")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise ValueError(f"tolerance {text!r}: {value!r} is not a number (or a number followed by %)") from None
    return Tolerance(metric.strip(), number / 100 if relative else number, relative)


DEFAULT_TOLERANCES: tuple[Tolerance, ...] = (
    Tolerance("gain_k_dn_per_e", 0.02, True),
    Tolerance("quantum_efficiency", 0.02, True),
    Tolerance("read_noise_e", 0.05, True),
    Tolerance("dark_offset_dn", 0.5, False),
    Tolerance("dark_current_e_per_s", 0.10, True),
    Tolerance("dsnu_e", 0.05, True),
    Tolerance("prnu_pct", 0.05, True),
    Tolerance("saturation_capacity_e", 0.02, True),
    Tolerance("dynamic_range_db", 0.5, False),
    Tolerance("linearity_error_pct", 0.2, False),
    Tolerance("defect_pixels_total", 2.0, False),
)
"""The study's default tolerances (docs/capture-plan.md gives the reason for each)."""


def with_overrides(base: Iterable[Tolerance], overrides: Iterable[Tolerance]) -> tuple[Tolerance, ...]:
    """``base`` with each metric of ``overrides`` replaced (or added at the end)."""
    merged = {t.metric: t for t in base}
    for t in overrides:
        merged[t.metric] = t
    return tuple(merged.values())
