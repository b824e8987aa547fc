"""Tables of the capture-plan study: ``capture_plans`` (sensorfleet.capture_plan, docs/capture-plan.md)."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import WRITTEN_AT
from sensorfleet.registry.model import Column, Table

CAPTURE_PLANS = Table(
    name="capture_plans",
    description="One row per candidate capture plan of a capture-plan study: the stored plan reduced (fewer frames "
                "per operating point, photon-transfer levels, dark exposures), re-characterized on the stored frames "
                "of the studied modules, with its station time, its worst metric deviation from the full plan and the "
                "share of modules whose model decisions it changes; one plan recommended.",
    grain="one row per candidate plan and study day",
    produced_by="capture-plan study (`sensorfleet plan study`, asset `capture_plans`)",
    key=("plan_id",),
    event_time="computed_at",
    partition_column="study_date",
    partition_meaning="UTC day of `computed_at`",
    volatile=("computed_at",),
    columns=(
        Column("plan_id", "str", "candidate plan: `full`, or its reductions, e.g. `f4-l7-d0.01+1` (frames per point, "
                                 "levels, dark exposures in s)"),
        Column("description", "str", "what the plan keeps, in words"),
        Column("frames_per_point", "i64", "most frames kept per operating point (null: as stored)"),
        Column("ptc_levels", "i64", "photon-transfer (flat) levels kept (null: as stored)"),
        Column("dark_exposures_s", "str", "dark exposure times kept, comma-separated, in s (null: as stored)"),
        Column("n_frames", "i64", "frames a session of this plan holds (median over the studied modules)"),
        Column("station_time_s", "f64", "station time per module: exposures + per-frame overhead (mean over modules)", "s"),
        Column("station_time_saved_pct", "f64", "station time saved against the full plan", "%"),
        Column("modules", "i64", "modules re-characterized with this plan"),
        Column("failed_modules", "i64", "modules whose characterization failed with this plan"),
        Column("worst_metric", "str", "the metric furthest from the full plan's, relative to its tolerance"),
        Column("worst_deviation", "f64", "its deviation at the coverage quantile over modules, in worst_deviation_unit",
               "see worst_deviation_unit"),
        Column("worst_deviation_unit", "str", "`relative` (a fraction of the full value) or the metric's unit"),
        Column("worst_tolerance", "f64", "that metric's tolerance, in the same unit", "see worst_deviation_unit"),
        Column("worst_tolerance_ratio", "f64", "worst_deviation / worst_tolerance: <= 1 is within tolerance", "1"),
        Column("metrics_within_tolerance", "bool", "every metric within its tolerance for the coverage share of modules"),
        Column("decisions_checked", "i64", "modules whose champion decisions were compared (0: no champion model)"),
        Column("yield_changed", "i64", "modules whose predicted final-test bin (yield champion) changed"),
        Column("alarms_changed", "i64", "modules whose anomaly alarm (anomaly champion) changed"),
        Column("changed_decisions_share", "f64", "share of checked modules with either decision changed (null: no "
                                                 "champion)", "1"),
        Column("recommended", "bool", "the shortest plan within tolerance and the changed-decision limit"),
        Column("models", "str", "champion versions the decisions came from, or why none"),
        Column("coverage", "f64", "share of modules whose metrics must lie within tolerance", "1"),
        Column("max_changed_share", "f64", "largest share of modules whose decisions may change", "1"),
        Column("frame_overhead_s", "f64", "per-frame station overhead used for station_time_s", "s"),
        Column("computed_at", "ts", "event time: when the study ran, UTC"),
        WRITTEN_AT,
    ),
)
