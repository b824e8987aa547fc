"""The capture-plan study: re-characterize the studied modules on reduced plans of their stored
frames, measure how far each plan's metrics move from the full plan's, and recommend the plan
with the shortest station time that stays within tolerance (and, given a decision check from the
models, changes the champion decisions of at most a stated share of modules).

Search: first the full plan and every single-axis reduction (:func:`~sensorfleet.capture_plan.plans.reductions`),
then every combination of the single reductions that stayed within tolerance on their own. A
reduction outside tolerance alone is not combined further: taking more frames away adds noise
and bias, it does not remove them (docs/capture-plan.md). Every evaluated plan is a row of
``capture_plans``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sensorfleet.capture_plan.plans import (
    DEFAULT_FRAME_OVERHEAD_S,
    FULL,
    PlanChoice,
    reductions,
    select_indices,
    station_time_s,
)
from sensorfleet.capture_plan.tolerance import DEFAULT_TOLERANCES, Tolerance
from sensorfleet.config import Paths
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.session import characterize_subset, open_captures
from sensorfleet.ingest.store import is_complete
from sensorfleet.parallel import Outcome, Threads, run_each
from sensorfleet.registry import CAPTURE_PLANS
from sensorfleet.tables import PartitionWrite, list_partitions, publish_partition, read_partition

NO_CHAMPION = "no champion model: metrics only"
POOL_MIN_SESSIONS = 4
"""Fewest studied sessions for which worker processes are started: a spawned worker costs seconds
of imports, one session's plans about as much."""


@dataclass(frozen=True)
class StudySettings:
    """``coverage``: share of modules whose every metric must lie within its tolerance;
    ``max_changed_share``: largest share of modules whose decisions may change;
    ``frame_overhead_s``: per-frame station overhead (s); ``days``: the latest N capture days
    (None: all); ``modules``: at most N modules, spread evenly over capture time (None: all);
    ``workers``: processes."""

    tolerances: tuple[Tolerance, ...] = DEFAULT_TOLERANCES
    coverage: float = 0.95
    max_changed_share: float = 0.02
    frame_overhead_s: float = DEFAULT_FRAME_OVERHEAD_S
    days: int | None = None
    modules: int | None = None
    workers: int = 1
    config: CharacterizationConfig = field(default_factory=CharacterizationConfig)

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.coverage <= 1:
            problems.append(f"coverage must be in (0, 1], found {self.coverage}")
        if not 0 <= self.max_changed_share <= 1:
            problems.append(f"max_changed_share must be in [0, 1], found {self.max_changed_share}")
        if not (self.frame_overhead_s >= 0 and np.isfinite(self.frame_overhead_s)):
            problems.append(f"frame_overhead_s must be >= 0 s, found {self.frame_overhead_s}")
        for name in ("days", "modules"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1 (or unset for all), found {value}")
        if not self.tolerances:
            problems.append("at least one metric tolerance is needed")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class StudySession:
    """One studied module: its latest characterized session and that session's captures group."""

    day: str
    session_id: str
    module_id: str
    group: Path


def study_sessions(paths: Paths, days: int | None = None, modules: int | None = None) -> list[StudySession]:
    """Each module's latest characterized session (of the latest ``days`` capture days) whose
    captures group is complete, at most ``modules`` of them spread evenly over capture time."""
    wanted = list_partitions(paths.tables, "module_stats")[-days if days is not None else 0:]
    parts = [p for p in (read_partition(paths.tables, "module_stats", day) for day in wanted) if "session_id" in p.columns]
    if not parts:
        raise ValueError(f"no module_stats rows under {paths.tables / 'module_stats'}: characterize a day first")
    stats = pl.concat(parts, how="diagonal_relaxed").with_columns(pl.col("capture_date").cast(pl.String).alias("day"))
    latest = stats.sort("module_id", "captured_at").group_by("module_id", maintain_order=True).last()
    latest = latest.sort("captured_at", "module_id")
    found = [StudySession(r["day"], r["session_id"], r["module_id"], paths.captures / r["day"] / f"{r['session_id']}.zarr")
             for r in latest.iter_rows(named=True)]
    found = [s for s in found if is_complete(s.group)]
    if modules is not None and modules < len(found):
        picks = np.unique(np.round(np.linspace(0, len(found) - 1, modules)).astype(int))
        found = [found[i] for i in picks]
    return found


@dataclass
class PlanRows:
    """One session under several plans: ``module_stats`` rows and channel rows (each with
    ``plan_id``; module rows also with ``plan_frames`` and ``station_time_s``), and the error of
    each plan the analysis could not run."""

    modules: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def characterize_plans(config: CharacterizationConfig, frame_overhead_s: float, choices: Sequence[PlanChoice],
                       session: StudySession) -> PlanRows:
    """Characterize ``session``'s stored frames under every plan of ``choices`` (frames read in
    place through a selection view, nothing written)."""
    frames, manifest, _ = open_captures(session.group)
    out = PlanRows()
    for choice in choices:
        try:
            indices = select_indices(manifest, choice)
            result = characterize_subset(frames, manifest, indices, config)
        except (ValueError, ArithmeticError, IndexError) as exc:  # a plan this session's analysis cannot run
            out.errors[choice.plan_id] = f"{type(exc).__name__}: {exc}"
            continue
        out.modules.append(result.module_stats | {
            "plan_id": choice.plan_id, "plan_frames": len(indices),
            "station_time_s": station_time_s(manifest, indices, frame_overhead_s)})
        out.channels.extend(row | {"plan_id": choice.plan_id} for row in result.channel_stats)
    return out


@dataclass
class Characterized:
    """Every studied session under every evaluated plan (long frames keyed by plan_id, session_id)."""

    modules: pl.DataFrame
    channels: pl.DataFrame
    failures: dict[str, int]  # plan_id -> modules whose characterization failed
    first_error: str = ""  # the first failure's text, to name in an error


def characterize_all(sessions: Sequence[StudySession], choices: Sequence[PlanChoice],
                     settings: StudySettings) -> Characterized:
    """:func:`characterize_plans` for every session, in ``settings.workers`` processes (in this
    one below :data:`POOL_MIN_SESSIONS` sessions)."""
    work = partial(characterize_plans, settings.config, settings.frame_overhead_s, tuple(choices))
    workers = settings.workers if len(sessions) >= POOL_MIN_SESSIONS else 1
    threads = Threads(numba=max(1, (os.cpu_count() or 1) // max(1, workers)))
    outcomes: list[Outcome[StudySession, PlanRows]] = run_each(work, sessions, workers=workers, threads=threads)
    modules: list[dict[str, Any]] = []
    channels: list[dict[str, Any]] = []
    failures = {c.plan_id: 0 for c in choices}
    first_error = ""
    for outcome in outcomes:
        rows = outcome.value
        if outcome.error is not None or rows is None:  # the session itself could not be read
            first_error = first_error or f"{outcome.item.group}: {outcome.error_text}"
            for key in failures:
                failures[key] += 1
            continue
        modules += rows.modules
        channels += rows.channels
        for key, text in rows.errors.items():
            first_error = first_error or f"{outcome.item.group}, plan {key}: {text}"
            failures[key] += 1
    frame = pl.DataFrame(modules, infer_schema_length=None) if modules else pl.DataFrame()
    return Characterized(frame, pl.DataFrame(channels, infer_schema_length=None) if channels else pl.DataFrame(),
                         failures, first_error)


def deviations(modules: pl.DataFrame, tolerances: Sequence[Tolerance], coverage: float) -> pl.DataFrame:
    """Per (plan, metric): the deviation from the full plan at the ``coverage`` quantile over
    modules and its largest, in the tolerance's unit, the tolerance and their ratio, and the
    share of modules within tolerance. Modules without a full-plan result are left out."""
    metrics = [t.metric for t in tolerances]
    full = modules.filter(pl.col("plan_id") == FULL.plan_id).select("session_id", *metrics)
    joined = modules.select("plan_id", "session_id", *metrics).join(full, on="session_id", suffix="__full")
    rows = []
    for (plan_id,), group in joined.group_by("plan_id", maintain_order=True):
        for t in tolerances:
            d = t.deviation(group[f"{t.metric}__full"].to_numpy(), group[t.metric].to_numpy())
            at = float(np.quantile(d, coverage, method="inverted_cdf"))
            rows.append({"plan_id": plan_id, "metric": t.metric, "deviation": at, "max_deviation": float(d.max()),
                         "unit": t.unit, "tolerance": t.limit, "ratio": at / t.limit,
                         "within_share": float(np.mean(d <= t.limit)), "modules": len(d)})
    schema = {"plan_id": pl.String, "metric": pl.String, "deviation": pl.Float64, "max_deviation": pl.Float64,
              "unit": pl.String, "tolerance": pl.Float64, "ratio": pl.Float64, "within_share": pl.Float64,
              "modules": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class Decisions:
    """What a decision check found per plan (``plan_id``, ``decisions_checked``,
    ``yield_changed``, ``alarms_changed``: module counts) and which models decided."""

    per_plan: pl.DataFrame
    models: str


DecisionCheck = Callable[[pl.DataFrame, pl.DataFrame], Decisions]
"""``check(modules, channels)``: the champions' decisions on every plan's rows against the full
plan's (``models.plan_study.decision_check``); the core never imports the models."""


def _choice_columns(choice: PlanChoice) -> dict[str, Any]:
    darks = choice.dark_exposures_s
    return {"plan_id": choice.plan_id, "description": choice.describe(), "frames_per_point": choice.frames_per_point,
            "ptc_levels": choice.ptc_levels,
            "dark_exposures_s": ",".join(f"{t:g}" for t in sorted(darks)) if darks is not None else None}


def _worst(devs: pl.DataFrame, plan_id: str) -> dict[str, Any]:
    mine = devs.filter(pl.col("plan_id") == plan_id).sort("ratio", "metric", descending=[True, False])
    if mine.is_empty():
        return {"worst_metric": None, "worst_deviation": None, "worst_deviation_unit": None, "worst_tolerance": None,
                "worst_tolerance_ratio": None, "metrics_within_tolerance": False}
    top = mine.row(0, named=True)
    return {"worst_metric": top["metric"], "worst_deviation": top["deviation"], "worst_deviation_unit": top["unit"],
            "worst_tolerance": top["tolerance"], "worst_tolerance_ratio": top["ratio"],
            "metrics_within_tolerance": bool(top["ratio"] <= 1.0)}


def summarize(choices: Sequence[PlanChoice], done: Characterized, devs: pl.DataFrame, decisions: Decisions | None,
              settings: StudySettings, now: datetime) -> pl.DataFrame:
    """The ``capture_plans`` rows of the evaluated ``choices``, the recommended plan flagged:
    the shortest station time among the plans within tolerance on every module it ran on and
    within the changed-decision limit (ties: fewer frames, then plan id)."""
    per_plan = done.modules.group_by("plan_id").agg(
        pl.col("plan_frames").median().alias("n_frames"), pl.col("station_time_s").mean(), pl.len().alias("modules"))
    stats = {r["plan_id"]: r for r in per_plan.iter_rows(named=True)}
    changed = {r["plan_id"]: r for r in decisions.per_plan.iter_rows(named=True)} if decisions else {}
    full_time = stats.get(FULL.plan_id, {}).get("station_time_s")
    rows = []
    for choice in choices:
        s = stats.get(choice.plan_id, {"n_frames": None, "station_time_s": None, "modules": 0})
        c = changed.get(choice.plan_id, {})
        checked = int(c.get("decisions_checked") or 0)
        yield_changed, alarms_changed = int(c.get("yield_changed") or 0), int(c.get("alarms_changed") or 0)
        either = int(c.get("changed") or 0)
        time_s = s["station_time_s"]
        rows.append(_choice_columns(choice) | _worst(devs, choice.plan_id) | {
            "n_frames": None if s["n_frames"] is None else int(round(s["n_frames"])),
            "station_time_s": time_s,
            "station_time_saved_pct": 100 * (1 - time_s / full_time) if time_s is not None and full_time else None,
            "modules": s["modules"], "failed_modules": done.failures.get(choice.plan_id, 0),
            "decisions_checked": checked, "yield_changed": yield_changed, "alarms_changed": alarms_changed,
            "changed_decisions_share": either / checked if checked else None,
            "models": decisions.models if decisions else NO_CHAMPION, "coverage": settings.coverage,
            "max_changed_share": settings.max_changed_share, "frame_overhead_s": settings.frame_overhead_s,
            "computed_at": now, "written_at": now})
    frame = pl.DataFrame(rows, schema=CAPTURE_PLANS.polars_schema())
    eligible = frame.filter(
        pl.col("metrics_within_tolerance") & (pl.col("failed_modules") == 0) & (pl.col("modules") > 0)
        & (pl.col("changed_decisions_share").is_null() | (pl.col("changed_decisions_share") <= settings.max_changed_share)))
    best = eligible.sort("station_time_s", "n_frames", "plan_id").get_column("plan_id").head(1).to_list()
    return frame.with_columns(recommended=pl.col("plan_id").is_in(best)).sort("station_time_s", "plan_id")


@dataclass(frozen=True)
class StudyResult:
    """A finished study: the ``capture_plans`` rows (recommended flagged), the per-metric
    deviations of every plan, the sessions studied and the partition written (None: not written)."""

    plans: pl.DataFrame
    deviations: pl.DataFrame
    sessions: list[StudySession]
    written: PartitionWrite | None

    @property
    def recommended(self) -> dict[str, Any]:
        """The recommended plan's row (the full plan when nothing shorter qualifies)."""
        rows = self.plans.filter(pl.col("recommended"))
        if rows.is_empty():
            raise ValueError("no plan qualifies, not even the full plan: its characterization failed on some module")
        return rows.row(0, named=True)


def _passing(devs: pl.DataFrame, choices: Sequence[PlanChoice]) -> set[PlanChoice]:
    worst = devs.group_by("plan_id").agg(pl.col("ratio").max())
    ok = set(worst.filter(pl.col("ratio") <= 1.0)["plan_id"].to_list())
    return {c for c in choices if c.plan_id in ok}


def run_study(paths: Paths, settings: StudySettings = StudySettings(), decide: DecisionCheck | None = None,
              *, now: datetime | None = None, write: bool = True) -> StudyResult:
    """Study the modules of ``paths`` (:func:`study_sessions`), evaluate the candidate plans in
    two rounds (module doc), ask ``decide`` about the decisions, and publish the
    ``capture_plans`` partition of the study's UTC day (unless ``write`` is false)."""
    sessions = study_sessions(paths, settings.days, settings.modules)
    if not sessions:
        raise ValueError(f"no complete captures group under {paths.captures} for the studied module_stats rows")
    _, manifest, _ = open_captures(sessions[0].group)
    axes = reductions(manifest)
    first = [FULL, *axes.singles()]
    done = characterize_all(sessions, first, settings)
    if done.modules.is_empty():
        raise ValueError(f"no studied session could be characterized: {done.first_error}")
    second = axes.combinations(_passing(deviations(done.modules, settings.tolerances, settings.coverage), first))
    if second:
        more = characterize_all(sessions, second, settings)
        done = Characterized(pl.concat([done.modules, more.modules], how="diagonal_relaxed"),
                             pl.concat([done.channels, more.channels], how="diagonal_relaxed"),
                             done.failures | more.failures, done.first_error or more.first_error)
    devs = deviations(done.modules, settings.tolerances, settings.coverage)
    decisions = decide(done.modules, done.channels) if decide is not None else None
    now = now or datetime.now(UTC)
    plans = summarize([*first, *second], done, devs, decisions, settings, now)
    written = publish_partition(paths.tables, CAPTURE_PLANS.name, now.strftime("%Y-%m-%d"), plans) if write else None
    return StudyResult(plans, devs, sessions, written)
