"""EWMA control charts per station and metric, with limits from the station's own history.

One chart per (station, metric) over the days the station measured (:mod:`.metrics`):

1. the day's statistic ``x`` is the mean residual of the station's modules that day, each
   clipped at ``clip_scales`` module scales from the centre (step 2);
2. baseline (phase I): the station's first ``baseline_days`` days with data, extended until they
   hold ``baseline_min_modules`` modules. Its centre is the median of the baseline modules'
   residuals (a station slightly brighter than the others is its own normal) and its module
   scale ``s`` their MAD x 1.4826 (robust: a faulty module or two do not widen the limits);
3. each day is standardized with its own module count n and its reference (a median of the
   other stations' medians): ``z = (x - centre) / (s * sqrt(1/n + v_ref))``, then divided by
   the baseline days' over-dispersion (robust sd of their z, clipped to
   1..``max_overdispersion``): days vary by more than their modules when lots or reference
   counts change;
4. after the baseline (phase II) ``E_t = lambda z_t + (1 - lambda) E_{t-1}``, ``E_0 = 0``, with
   the time-varying limits ``+-L sqrt(lambda / (2 - lambda) (1 - (1 - lambda)^(2t)) +
   (1 - (1 - lambda)^t)^2 / B)``, B the baseline days: the second term is the variance of the
   estimated centre, which every monitored day shares; a day with ``|E_t|`` beyond them is an
   alarm (``alarm_low`` / ``alarm_high``).

The limits stay those of the baseline: a station that drifted stays in alarm until it is
fixed and a new baseline is taken. Everything is a polars expression over all stations and
metrics at once, but the EWMA recursion, which runs per chart (:func:`_ewma`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import polars as pl

from sensorfleet.stations.metrics import module_values, residuals

SERIES = ["station_id", "metric"]
STATES = ("baseline", "in_control", "alarm_low", "alarm_high")
"""Chart states of a day: in the baseline window, within limits, below, above."""
_MIN_SCALE = 1e-3
"""Floor of the module scale (log units, 0.1 %): a baseline of identical values gives no scale."""


@dataclass(frozen=True)
class SpcConfig:
    """Parameters of the station charts (see the module docstring; units: days, modules, z)."""

    ewma_lambda: float = 0.2
    limit_sigmas: float = 3.5
    baseline_days: int = 20
    baseline_min_modules: int = 10
    max_overdispersion: float = 3.0
    clip_scales: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.ewma_lambda <= 1:
            raise ValueError(f"ewma_lambda must be in (0, 1], found {self.ewma_lambda}")
        if not self.limit_sigmas > 0:
            raise ValueError(f"limit_sigmas must be > 0, found {self.limit_sigmas}")
        if self.baseline_days < 2 or self.baseline_min_modules < 2:
            raise ValueError(f"baseline_days and baseline_min_modules must be >= 2, found "
                             f"{self.baseline_days} and {self.baseline_min_modules}")
        if not self.clip_scales > 0:
            raise ValueError(f"clip_scales must be > 0, found {self.clip_scales}")
        if self.max_overdispersion < 1:
            raise ValueError(f"max_overdispersion must be >= 1, found {self.max_overdispersion}")


def daily_statistics(resid: pl.DataFrame, config: SpcConfig) -> pl.DataFrame:
    """One row per (station, metric, day): ``modules``, ``reference_modules``,
    ``reference_stations``, ``day_index`` (0-based among the station's days), ``in_baseline``,
    the chart's ``centre`` and module ``scale`` and ``x``: the mean of the day's module
    residuals, each clipped to ``centre +- clip_scales * scale`` (one faulty module on a day of
    one or two cannot move the day by more than that)."""
    days = (resid.group_by(*SERIES, "day")
            .agg(pl.len().cast(pl.Int64).alias("modules"), pl.col("captured_at").max().alias("last_captured_at"),
                 pl.col("reference_modules").first(),
                 pl.col("reference_stations").first())
            .sort(*SERIES, "day"))
    before = pl.col("modules").cum_sum().over(SERIES) - pl.col("modules")
    days = days.with_columns(pl.int_range(pl.len()).over(SERIES).alias("day_index")).with_columns(
        ((pl.col("day_index") < config.baseline_days) | (before < config.baseline_min_modules)).alias("in_baseline"))
    base = _baselines(resid, days)
    k = config.clip_scales
    clipped = resid.join(base, on=SERIES).select(
        *SERIES, "day", pl.col("residual").clip(pl.col("centre") - k * pl.col("scale"),
                                                pl.col("centre") + k * pl.col("scale")).alias("r"))
    x = clipped.group_by(*SERIES, "day").agg(pl.col("r").mean().alias("x"))
    return days.join(base, on=SERIES, how="left").join(x, on=[*SERIES, "day"], how="left").sort(*SERIES, "day")


def _baselines(resid: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Centre and module scale of each chart from its baseline modules."""
    flags = days.select(*SERIES, "day", "in_baseline")
    base = resid.join(flags, on=[*SERIES, "day"]).filter(pl.col("in_baseline"))
    centre = pl.col("residual").median()
    return base.group_by(SERIES).agg(
        centre.alias("centre"),
        pl.max_horizontal((pl.col("residual") - centre).abs().median() * 1.4826, pl.lit(_MIN_SCALE)).alias("scale"),
        pl.len().cast(pl.Int64).alias("baseline_modules"))


def _median_variance(n: pl.Expr) -> pl.Expr:
    """Variance of the median of ``n`` unit-variance values: 1/n up to 2 (the mean), then the
    asymptotic pi / (2 n)."""
    return pl.when(n <= 2).then(1.0 / n).otherwise(math.pi / (2.0 * n))


def _day_variance() -> pl.Expr:
    """Variance of a day's statistic in units of the module scale squared: the station's
    (clipped) mean of ``modules`` plus the reference, a median of ``reference_stations`` station medians of
    ``reference_modules`` in all (x1.35 for three or more: the median of three against a mean)."""
    k = pl.col("reference_stations")
    per_station = _median_variance(pl.col("reference_modules") / k)
    reference = pl.when(k >= 3).then(1.35 * per_station / k).otherwise(per_station / k)
    return 1.0 / pl.col("modules").cast(pl.Float64) + reference


def _ewma(z: np.ndarray, lam: float) -> np.ndarray:
    """EWMA of ``z`` (1-D, float) started at 0: ``y[t] = lam * z[t] + (1 - lam) * y[t-1]``.

    A chart is one value per day, so a plain recursion over the list costs microseconds
    (``scipy.signal.lfilter`` did the same, and importing it cost 0.4-0.9 s per process)."""
    keep = 1.0 - lam
    steps = accumulate(z.tolist(), lambda y, x: lam * x + keep * y, initial=0.0)
    return np.fromiter(steps, dtype=np.float64, count=z.size + 1)[1:]


def station_charts(modules: pl.DataFrame, config: SpcConfig = SpcConfig()) -> pl.DataFrame:
    """The charts (:func:`run_charts`) of every station and metric from module rows
    (:data:`sensorfleet.stations.metrics.MODULE_COLUMNS`), in two passes: the second keeps the
    station-days the first found in alarm out of the other stations' references, so that a
    drifting station does not pull its neighbours' charts the other way. Causal: the rows of a
    day depend only on modules captured that day or before.
    """
    values = module_values(modules)
    first = run_charts(residuals(values), config)
    alarmed = first.filter(pl.col("state").str.starts_with("alarm")).select("day", "metric", "station_id")
    if alarmed.is_empty():
        return first
    return run_charts(residuals(values, exclude=alarmed), config)


def run_charts(resid: pl.DataFrame, config: SpcConfig = SpcConfig()) -> pl.DataFrame:
    """The charts of every station and metric on every day it measured.

    ``resid``: :func:`sensorfleet.stations.metrics.residuals`. Returns one row per (station,
    metric, day): ``day``, ``last_captured_at`` (the station's last module of the day), ``modules``, ``reference_modules``, ``ratio`` (exp of the day's mean
    residual: 0.97 = 3 % below the other stations), ``centre_ratio``, ``z``, ``ewma``, ``limit``
    (z units; null in the baseline), ``state`` (:data:`STATES`), ``first_alarm_day`` and
    ``days_in_alarm`` (of the alarm run the day belongs to; null / 0 when not in alarm).
    """
    days = daily_statistics(resid, config)
    if days.is_empty():
        return _empty_chart()
    days = days.with_columns(
        ((pl.col("x") - pl.col("centre")) / (pl.col("scale") * _day_variance().sqrt())).alias("z_raw"))
    z_base = pl.col("z_raw").filter(pl.col("in_baseline"))
    dispersion = ((z_base - z_base.median()).abs().median() * 1.4826).clip(1.0, config.max_overdispersion)
    days = days.with_columns((pl.col("z_raw") / dispersion.over(SERIES)).alias("z"),
                             pl.col("in_baseline").sum().over(SERIES).alias("baseline_days")).sort(*SERIES, "day")
    ewma = np.full(days.height, np.nan)
    monitored = days.with_row_index("__row").filter(~pl.col("in_baseline"))
    for part in monitored.partition_by(SERIES, maintain_order=True):
        ewma[part["__row"].to_numpy()] = _ewma(part["z"].to_numpy(), config.ewma_lambda)
    lam, big_l = config.ewma_lambda, config.limit_sigmas
    days = days.with_columns(pl.Series("ewma", ewma).fill_nan(None),
                             pl.int_range(1, pl.len() + 1).over(*SERIES, "in_baseline").cast(pl.Float64).alias("__t"))
    # the EWMA's variance plus that of the estimated centre, which every monitored day shares:
    # a short baseline's centre error would otherwise read as a shift (1 / baseline days, z units)
    decay = pl.lit(1 - lam).pow(pl.col("__t"))
    centre_var = (1 - decay).pow(2) / pl.col("baseline_days").cast(pl.Float64)
    limit = big_l * (lam / (2 - lam) * (1 - decay.pow(2)) + centre_var).sqrt()
    days = days.with_columns(pl.when(pl.col("in_baseline")).then(None).otherwise(limit).alias("limit"))
    state = (pl.when(pl.col("in_baseline")).then(pl.lit("baseline"))
             .when(pl.col("ewma") < -pl.col("limit")).then(pl.lit("alarm_low"))
             .when(pl.col("ewma") > pl.col("limit")).then(pl.lit("alarm_high"))
             .otherwise(pl.lit("in_control")))
    return _alarm_runs(days.with_columns(state.alias("state")))


def _alarm_runs(days: pl.DataFrame) -> pl.DataFrame:
    """Each day's alarm run: first day and length so far (consecutive days in the same state)."""
    alarm = pl.col("state").str.starts_with("alarm")
    run = (pl.col("state") != pl.col("state").shift(1)).fill_null(True).cum_sum().over(SERIES)
    days = days.with_columns(run.alias("__run")).with_columns(
        pl.when(alarm).then(pl.col("day").min().over(*SERIES, "__run")).alias("first_alarm_day"),
        pl.when(alarm).then(pl.int_range(1, pl.len() + 1).over(*SERIES, "__run")).otherwise(0)
        .cast(pl.Int64).alias("days_in_alarm"))
    return days.select(
        *SERIES, "day", "last_captured_at", "modules", "reference_modules", "reference_stations", pl.col("x").exp().alias("ratio"),
        pl.col("centre").exp().alias("centre_ratio"), "z", "ewma", "limit", "state", "first_alarm_day",
        "days_in_alarm")


def _empty_chart() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "station_id": pl.String, "metric": pl.String, "day": pl.Date,
        "last_captured_at": pl.Datetime("us", "UTC"), "modules": pl.Int64,
        "reference_modules": pl.Int64, "reference_stations": pl.Int64, "ratio": pl.Float64, "centre_ratio": pl.Float64, "z": pl.Float64,
        "ewma": pl.Float64, "limit": pl.Float64, "state": pl.String, "first_alarm_day": pl.Date,
        "days_in_alarm": pl.Int64})
