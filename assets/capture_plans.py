"""Capture-plan layer: the study of shorter capture plans on the frames already stored
(table ``capture_plans``), with the plot of station time against accuracy.

Thin over ``models.plan_study`` (champion decisions) and ``sensorfleet.capture_plan`` (the
re-characterization, deviations and search). Unpartitioned and fleet-level like the models: its
own job ``capture_plan_study`` runs it weekly after the retrain (a study re-characterizes every
studied module a few dozen times: minutes, not a daily step), and by hand from the UI.
"""

# No `from __future__ import annotations`: Dagster reads the resource annotation at decoration time.
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from assets._common import frame_md, png_metadata
from assets.characterization import MODULE_CHANNEL_STATS, MODULE_STATS
from assets.features import MODULE_FEATURES
from assets.models import ANOMALY_MODEL_ASSET, YIELD_MODEL_ASSET
from assets.resources import StorageResource
from assets.table_metadata import definition_metadata, row_count_metadata
from sensorfleet.registry import CAPTURE_PLANS

GROUP = "capture_plans"
OWNER = "team:test-engineering"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it (bump when what the study writes changes)."""
CAPTURE_PLANS_ASSET = CAPTURE_PLANS.name
SHOWN = ("plan_id", "n_frames", "station_time_s", "station_time_saved_pct", "worst_metric", "worst_tolerance_ratio",
         "changed_decisions_share", "recommended")


class PlanStudyConfig(Config):
    """Run parameters of the study (defaults: ``sensorfleet plan study``'s; tolerances: the
    documented defaults, docs/capture-plan.md)."""

    modules: int = 50
    days: int | None = None
    coverage: float = 0.95
    max_changed_share: float = 0.02
    frame_overhead_s: float = 0.05
    workers: int = 0


@asset(
    name=CAPTURE_PLANS_ASSET, group_name=GROUP, kinds={"parquet", "matplotlib"}, owners=[OWNER],
    code_version=CODE_VERSION, metadata=definition_metadata(CAPTURE_PLANS_ASSET),
    deps=[MODULE_STATS, MODULE_CHANNEL_STATS, MODULE_FEATURES, ANOMALY_MODEL_ASSET, YIELD_MODEL_ASSET],
    description="Table `capture_plans`: candidate shorter capture plans re-characterized on the stored frames of the "
                "studied modules, each with its station time, worst metric deviation from the full plan and share of "
                "changed champion decisions; the shortest plan within tolerance recommended. Plot: station time "
                "against accuracy.",
)
def capture_plans(context: AssetExecutionContext, config: PlanStudyConfig, storage: StorageResource) -> MaterializeResult:
    import os

    from models.plan_study import run_plan_study
    from sensorfleet.capture_plan.plots import plot_study
    from sensorfleet.capture_plan.study import StudySettings

    paths = storage.paths()
    settings = StudySettings(coverage=config.coverage, max_changed_share=config.max_changed_share,
                             frame_overhead_s=config.frame_overhead_s, days=config.days, modules=config.modules,
                             workers=config.workers or (os.cpu_count() or 1))
    result = run_plan_study(paths, settings)
    best = result.recommended
    assert result.written is not None
    day = result.written.path.parent.name.split("=")[-1]
    context.log.info(f"capture plans: {result.plans.height} evaluated on {len(result.sessions)} modules, "
                     f"recommended {best['plan_id']}")
    inline, path = png_metadata(plot_study(result.plans), paths.root / "plots" / "capture_plans" / f"{day}.png",
                                "station time against accuracy")
    return MaterializeResult(metadata={
        **row_count_metadata(result.plans.height, partitioned=False),
        "recommended_plan": MetadataValue.text(best["plan_id"]),
        "recommended_description": MetadataValue.text(best["description"]),
        "recommended_station_time_s": MetadataValue.float(float(best["station_time_s"])),
        "station_time_saved_pct": MetadataValue.float(float(best["station_time_saved_pct"] or 0.0)),
        "modules_studied": MetadataValue.int(len(result.sessions)),
        "models": MetadataValue.text(str(best["models"])),
        "plans": MetadataValue.md(frame_md(result.plans.select(SHOWN), limit=40)),
        "plot_station_time_vs_accuracy": inline,
        "plot_path": path,
        "table": MetadataValue.path(str(result.written.path)),
    })
