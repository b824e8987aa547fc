"""Optics layer: captures of one day -> slanted-edge SFR per edge (`sfr`) and lens figures per
module (`module_optics`), with the SFR curves beside the maps. Runs after the characterization,
whose maps groups hold the flat's block means of the shading figures.

Thin over :func:`sensorfleet.optics.characterize_optics_day`; the checks read the day's
partitions (every session of the day, whenever it was measured).
"""

# No `from __future__ import annotations`: Dagster reads the Config and resource annotations at
# decoration time.
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)
from pydantic import Field

from assets._common import MODULES_FAILING, check_spec, choose_workers, emit_progress, png_metadata
from assets.captures import CAPTURES
from assets.characterization import PIXEL_MAPS
from assets.resources import StorageResource
from assets.table_metadata import table_spec
from sensorfleet import tables
from sensorfleet.ingest import list_ingested
from sensorfleet.optics import characterize_optics_day, curves_path, read_curves
from sensorfleet.optics.plots import plot_mtf50_field_map, plot_sfr_curves
from sensorfleet.plotting import draw_two
from sensorfleet.registry import MODULE_OPTICS as MODULE_OPTICS_TABLE
from sensorfleet.registry import SFR as SFR_TABLE
from sensorfleet.registry.optics_tables import MTF50_BOUND

GROUP = "optics"
OWNER = "team:optics"
CODE_VERSION = "2"
"""Version of this layer's code as Dagster sees it (bump when what the step writes changes). 2: the
shading from every frame of the characterization's spatial flat and dark series (1: their first 4)."""
SFR = "sfr"
MODULE_OPTICS = "module_optics"
CHECK_EDGES = "edges_found_per_chart"
CHECK_MTF50 = "mtf50_within_physical_bounds"
_MTF50_COLUMNS = tuple(c.name for c in (*SFR_TABLE.columns, *MODULE_OPTICS_TABLE.columns) if c.bound == MTF50_BOUND)


class OpticsRunConfig(Config):  # type: ignore[misc]
    """Run parameters of the optics step."""

    workers: int = Field(default=0, ge=0, description="worker processes; 0 = one per core (none for small days)")
    min_edges: int = Field(default=4, ge=0, description="fewest edges a chart must yield (the synthetic chart: 36)")
    max_edges: int = Field(default=400, ge=1, description="most edges a chart may yield")


def edge_count_problems(module_optics: pl.DataFrame, low: int, high: int) -> list[dict[str, Any]]:
    """Sessions with a chart whose edge count is outside ``low..high``."""
    if module_optics.is_empty():
        return []
    bad = module_optics.filter((pl.col("chart_frames") > 0) & ~pl.col("edges_found").is_between(low, high))
    return bad.select("session_id", "module_id", "edges_found", "edges_ok").to_dicts()


def mtf50_violations(sfr: pl.DataFrame, module_optics: pl.DataFrame) -> list[dict[str, Any]]:
    """Every MTF50 value (per edge, per module) that is not finite or outside 0..0.5 cycles/pixel."""
    out: list[dict[str, Any]] = []
    for frame in (sfr, module_optics):
        for column in (c for c in _MTF50_COLUMNS if c in frame.columns):
            for row in frame.filter(pl.col(column).is_not_null()).iter_rows(named=True):
                value = row[column]
                if not math.isfinite(value) or not MTF50_BOUND.contains(value):
                    out.append({"session_id": row["session_id"], "module_id": row["module_id"], "column": column,
                                "edge_id": row.get("edge_id"), "channel": row.get("channel"), "value": value})
    return out


def _quality_counts(sfr: pl.DataFrame) -> dict[str, int]:
    if sfr.is_empty() or "quality" not in sfr.columns:
        return {}
    return {str(k): int(v) for k, v in sfr.group_by("quality").len().sort("quality").iter_rows()}


def _worst_plots(paths_root: Path, day: str, session_id: str, sfr: pl.DataFrame, module: pl.DataFrame,
                 curves_file: Path) -> dict[str, Any]:
    """The worst module's MTF50 field map and SFR curves, inline and as files."""
    row = module.filter(pl.col("session_id") == session_id).row(0, named=True)
    mine = sfr.filter(pl.col("session_id") == session_id)
    sensor = tables.read_partition(paths_root / "tables", "sessions", day).filter(pl.col("session_id") == session_id)
    width, height = int(sensor["width"][0]), int(sensor["height"][0])
    label = f"{row['module_id']} ({session_id})"
    field_png, curves_png = draw_two(
        (plot_mtf50_field_map, (mine, width, height), {"title": f"MTF50 field map: {label}"}),
        (plot_sfr_curves, (read_curves(curves_file, session_id), mine), {"title": f"SFR curves: {label}"}),
    )
    plots = paths_root / "plots" / day
    field_md, field_path = png_metadata(field_png, plots / f"{session_id}-mtf50-field.png",
                                        f"MTF50 over the field of the worst module: {row['module_id']}")
    curves_md, curves_path_ = png_metadata(curves_png, plots / f"{session_id}-sfr.png",
                                           f"SFR curves of the worst module: {row['module_id']}")
    return {"worst_module_mtf50_field_map": field_md, "worst_module_mtf50_field_map_png": field_path,
            "worst_module_sfr_curves": curves_md, "worst_module_sfr_curves_png": curves_path_}


def build_optics_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The ``sfr`` and ``module_optics`` assets (one step) on ``partitions_def``, downstream of
    ``captures`` and ``pixel_maps`` (the step takes the flat's block means from the maps groups, and
    reads the flat frames itself only where a session has no current one), with their checks."""
    deps = [AssetDep(CAPTURES), AssetDep(PIXEL_MAPS)]

    @multi_asset(
        name="measure_optics",
        specs=[
            table_spec(SFR, group=GROUP, deps=deps, owner=OWNER, code_version=CODE_VERSION, description="Table `sfr`: ISO 12233 e-SFR per "
                       "chart edge and channel (MTF50, MTF at Nyquist/4 and /2, edge SNR, quality); curves in "
                       "maps/<day>/sfr_curves.parquet (one file per day)."),
            table_spec(MODULE_OPTICS, group=GROUP, deps=deps, owner=OWNER, code_version=CODE_VERSION, description="Table `module_optics`: "
                       "MTF50 centre and corners, uniformity, tilt, relative illumination, colour shading."),
        ],
        check_specs=[
            check_spec(CHECK_EDGES, MODULE_OPTICS,
                       "Every chart yields an edge count within the expected range (run config).", partitions_def),
            check_spec(CHECK_MTF50, SFR, f"Every MTF50 is finite and {MTF50_BOUND.describe()} "
                       "cycles/pixel (0 to Nyquist).", partitions_def),
        ],
        partitions_def=partitions_def,
    )
    def measure_optics(context: AssetExecutionContext, config: OpticsRunConfig,
                       storage: StorageResource) -> Iterator[Any]:
        paths = storage.paths()
        day = context.partition_key
        workers = choose_workers(config.workers, len(list_ingested(paths, day)))
        report = characterize_optics_day(paths, day, workers=workers,
                                         progress=lambda done, total, _sid: emit_progress("optics", day, done, total))
        context.log.info(f"{day}: optics of {len(report.sessions)} sessions, {len(report.failed)} failed")
        sfr = tables.read_partition(paths.tables, SFR, day)
        module = tables.read_partition(paths.tables, MODULE_OPTICS, day)
        yield from _results(context, paths.root, day, report.worst_session_id, sfr, module,
                            curves_path(paths, day), config)
        if report.failed:
            raise Failure(description=f"{day}: optics failed for {len(report.failed)} session(s): "
                          + "; ".join(f"{sid}: {err}" for sid, err in sorted(report.failed.items())[:20]),
                          metadata={"failed_sessions": MetadataValue.json(sorted(report.failed))})

    return measure_optics


def _results(context: AssetExecutionContext, root: Path, day: str, worst: str | None, sfr: pl.DataFrame,
             module: pl.DataFrame, curves_file: Path, config: OpticsRunConfig) -> Iterator[Any]:
    module_metadata: dict[str, Any] = {
        "sessions": MetadataValue.int(module.height),
        "sessions_with_chart": MetadataValue.int(int((module["chart_frames"] > 0).sum()) if module.height else 0),
        "table": MetadataValue.path(str(tables.partition_path(root / "tables", MODULE_OPTICS, day))),
    }
    if worst is not None:
        module_metadata["worst_session"] = MetadataValue.text(worst)
        try:
            module_metadata.update(_worst_plots(root, day, worst, sfr, module, curves_file))
        except Exception as exc:  # a figure is a convenience: never fail the tables for it
            context.log.warning(f"plots of {worst} failed: {type(exc).__name__}: {exc}")
    yield MaterializeResult(asset_key=SFR, metadata={
        "rows": MetadataValue.int(sfr.height), "by_quality": MetadataValue.json(_quality_counts(sfr)),
        "table": MetadataValue.path(str(tables.partition_path(root / "tables", SFR, day)))})
    yield MaterializeResult(asset_key=MODULE_OPTICS, metadata=module_metadata)
    counts = edge_count_problems(module, config.min_edges, config.max_edges)
    yield AssetCheckResult(asset_key=MODULE_OPTICS, check_name=CHECK_EDGES, passed=not counts,
                           severity=AssetCheckSeverity.ERROR, metadata={
                               "expected": MetadataValue.text(f"{config.min_edges}..{config.max_edges}"),
                               MODULES_FAILING: MetadataValue.json(sorted({f"{r['module_id']} ({r['session_id']})"
                                                                           for r in counts})),
                               "details": MetadataValue.json(counts[:200])})
    violations = mtf50_violations(sfr, module)
    yield AssetCheckResult(asset_key=SFR, check_name=CHECK_MTF50, passed=not violations,
                           severity=AssetCheckSeverity.ERROR, metadata={
                               "violations": MetadataValue.int(len(violations)),
                               MODULES_FAILING: MetadataValue.json(sorted({f"{r['module_id']} ({r['session_id']})"
                                                                           for r in violations})),
                               "details": MetadataValue.json(violations[:200])})
