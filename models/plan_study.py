"""The capture-plan study's decision part: would a shorter capture plan change what the champion
models decide about a module?

For every studied module and candidate plan, the module's feature row is the one the champions
scored (``module_features`` of its capture day) with the views computed from the session's own
characterization (:data:`sensorfleet.features.catalog.SESSION_VIEWS`: EMVA metrics, per-channel
metrics, defect counts) recomputed from the plan's rows; the cohort, conditions and optics views
keep their stored values (they read other modules, the station, the edge chart). A decision
changes when the yield champion's predicted bin (pass / fail at its threshold) or the anomaly
champion's alarm (score above its threshold) differs from the full plan's. The metric part and
the search are the core's (:mod:`sensorfleet.capture_plan.study`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.data import matrix
from models.tracking import NoSuchModelError, load_model, resolve_version
from models.train import ANOMALY_MODEL, YIELD_MODEL
from sensorfleet.capture_plan.plans import FULL
from sensorfleet.capture_plan.study import (
    DecisionCheck,
    Decisions,
    StudyResult,
    StudySettings,
    run_study,
)
from sensorfleet.config import Paths
from sensorfleet.features.daily import MODULE_FEATURES
from sensorfleet.features.session_features import session_features
from sensorfleet.tables import read_partition

KEY_SEPARATOR = "/"
"""Joins plan id and session id into one key (session ids never hold it: manifest pattern)."""


@dataclass(frozen=True)
class Champion:
    """A champion model, its registered name and version."""

    name: str
    version: str
    model: Any

    def label(self) -> str:
        return f"{self.name} v{self.version}"


def load_champion(paths: Paths, name: str) -> Champion | None:
    """The champion of ``name``, or None when none is registered yet."""
    try:
        version = resolve_version(name, "champion", paths.root)
    except NoSuchModelError:
        return None
    return Champion(name, version, load_model(name, version, paths.root))


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.concat_str("plan_id", pl.lit(KEY_SEPARATOR), "session_id").alias("session_id"))


def _stored_features(paths: Paths, modules: pl.DataFrame) -> pl.DataFrame:
    """The ``module_features`` rows the champions scored for the studied sessions (module and
    capture day), with ``session_id``."""
    sessions = modules.filter(pl.col("plan_id") == FULL.plan_id).select(
        "session_id", "module_id", pl.col("captured_at").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d").alias("day"))
    parts = []
    for day in sorted(set(sessions["day"].to_list())):
        stored = read_partition(paths.tables, MODULE_FEATURES, day)
        if stored.height:
            mine = sessions.filter(pl.col("day") == day).select("session_id", "module_id")
            parts.append(mine.join(stored, on="module_id", how="inner"))
    if not parts:
        raise ValueError(f"no module_features rows under {paths.tables / MODULE_FEATURES} for the studied sessions: "
                         "materialize the features of their days first")
    return pl.concat(parts, how="diagonal_relaxed")


def plan_features(paths: Paths, modules: pl.DataFrame, channels: pl.DataFrame) -> pl.DataFrame:
    """Per (plan_id, session_id): the stored feature row with the session views recomputed from
    that plan's rows. Modules without a stored feature row are left out."""
    own = session_features({"module_stats": _keyed(modules), "module_channel_stats": _keyed(channels)})
    own = own.with_columns(pl.col("session_id").str.split_exact(KEY_SEPARATOR, 1)
                           .struct.rename_fields(["plan_id", "session_id"]).alias("key")).drop("session_id").unnest("key")
    replaced = [c for c in own.columns if c not in ("plan_id", "session_id")]
    stored = _stored_features(paths, modules)
    return own.join(stored.drop([c for c in replaced if c in stored.columns]), on="session_id", how="inner")


def _decisions(features: pl.DataFrame, yield_champion: Champion | None,
               anomaly_champion: Champion | None) -> pl.DataFrame:
    """Per (plan_id, session_id): ``fails`` (predicted bin is fail) and ``alarm``; null for a
    model without a champion."""
    out = features.select("plan_id", "session_id")
    if yield_champion is not None:
        model = yield_champion.model
        p_pass = model.probability_pass(matrix(features, model.feature_names))
        out = out.with_columns(fails=pl.Series(1 - p_pass > model.fail_threshold))
    else:
        out = out.with_columns(fails=pl.lit(None, pl.Boolean))
    if anomaly_champion is not None:
        model = anomaly_champion.model
        score = model.score(matrix(features, model.feature_names))
        out = out.with_columns(alarm=pl.Series(np.asarray(score > model.threshold)))
    else:
        out = out.with_columns(alarm=pl.lit(None, pl.Boolean))
    return out


def changed_decisions(decided: pl.DataFrame) -> pl.DataFrame:
    """Per plan: modules compared with the full plan (``decisions_checked``) and those whose
    predicted bin (``yield_changed``), alarm (``alarms_changed``) or either (``changed``) differ."""
    full = decided.filter(pl.col("plan_id") == FULL.plan_id).select("session_id", "fails", "alarm")
    joined = decided.join(full, on="session_id", suffix="_full")
    yield_diff = pl.col("fails").ne_missing(pl.col("fails_full"))
    alarm_diff = pl.col("alarm").ne_missing(pl.col("alarm_full"))
    return joined.group_by("plan_id").agg(
        pl.len().alias("decisions_checked"), yield_diff.sum().alias("yield_changed"),
        alarm_diff.sum().alias("alarms_changed"), (yield_diff | alarm_diff).sum().alias("changed"))


def decision_check(paths: Paths) -> DecisionCheck | None:
    """The check the core study calls with every plan's rows, over the registered champions;
    None when neither model has a champion (the study then reports metrics only)."""
    yield_champion = load_champion(paths, YIELD_MODEL)
    anomaly_champion = load_champion(paths, ANOMALY_MODEL)
    present = [c for c in (yield_champion, anomaly_champion) if c is not None]
    if not present:
        return None
    missing = [n for n, c in ((YIELD_MODEL, yield_champion), (ANOMALY_MODEL, anomaly_champion)) if c is None]
    label = ", ".join(c.label() for c in present) + (f" (no champion of {', '.join(missing)})" if missing else "")

    def check(modules: pl.DataFrame, channels: pl.DataFrame) -> Decisions:
        features = plan_features(paths, modules, channels)
        return Decisions(changed_decisions(_decisions(features, yield_champion, anomaly_champion)), label)

    return check


def run_plan_study(paths: Paths, settings: StudySettings = StudySettings(), *, write: bool = True) -> StudyResult:
    """The capture-plan study of ``paths`` with the champions' decisions when they exist."""
    return run_study(paths, settings, decision_check(paths), write=write)
