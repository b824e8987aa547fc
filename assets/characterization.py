"""Characterization layer: captures of one day -> per-pixel maps, EMVA 1288 module metrics, defects.

Thin over :func:`sensorfleet.emva.characterize_day`; the checks read the day's ``module_stats``
partition (so sessions characterized in an earlier run are checked too).
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
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)
from pydantic import Field

from assets._common import (
    MODULES_FAILING,
    check_severity,
    check_spec,
    choose_workers,
    emit_progress,
    png_metadata,
)
from assets.captures import CAPTURES
from assets.resources import StorageResource
from assets.table_metadata import row_count_metadata, table_spec
from sensorfleet import tables
from sensorfleet.emva import (
    MIN_FIT_R2,
    PTC_R2_COLUMN,
    characterize_day,
    load_session_rows,
    plot_defect_map,
    plot_ptc,
    worst_session,
)
from sensorfleet.ingest import list_ingested
from sensorfleet.plotting import draw_two
from sensorfleet.registry import MODULE_STATS as MODULE_STATS_TABLE
from sensorfleet.registry import Bound

GROUP = "characterization"
OWNER = "team:sensor-characterization"
CODE_VERSION = "2"  # 2: module_stats / module_channel_stats carry <metric>_u
"""Version of this layer's code as Dagster sees it: bump it when a change alters what the
step writes, and every day materialized with the old one shows as stale in the UI."""
PIXEL_MAPS = "pixel_maps"
MODULE_STATS = "module_stats"
MODULE_CHANNEL_STATS = "module_channel_stats"
PIXEL_DEFECTS = "pixel_defects"

CHECK_BOUNDS = "metrics_within_physical_bounds"
CHECK_PTC_FIT = "ptc_fit_quality"

SESSIONS = "sessions"
SESSIONS_CHARACTERIZED = "sessions_characterized"
"""Metadata keys of ``module_stats``: sessions in the day's table, sessions computed by this run."""


PHYSICAL_BOUNDS: dict[str, Bound] = MODULE_STATS_TABLE.bounds
"""Physical range per metric, from the registry's declaration of ``module_stats``. Every metric
must also be finite; a null is allowed (e.g. QE when photons are not given)."""

_IDENTITY = ("session_id", "module_id")


class CharacterizationRunConfig(Config):  # type: ignore[misc]
    """Run parameters of the characterization step."""

    workers: int = Field(
        default=0,
        ge=0,
        description="worker processes for the day's sessions; 0 = one per core (none for small days)",
    )


def metric_violations(module_stats: pl.DataFrame, bounds: dict[str, Bound] = PHYSICAL_BOUNDS) -> list[dict[str, Any]]:
    """One row per (session, metric) that is NaN/infinite or outside its physical bound.

    Every floating-point column of ``module_stats`` is checked for finiteness; the columns in
    ``bounds`` also against their range. Identity columns (``session_id``, ``module_id``) are
    carried into each row.
    """
    violations: list[dict[str, Any]] = []
    if module_stats.is_empty():
        return violations
    float_columns = [
        name for name, dtype in module_stats.schema.items() if dtype in (pl.Float32, pl.Float64)
    ]
    for row in module_stats.iter_rows(named=True):
        for column in float_columns:
            value = row[column]
            if value is None:
                continue
            bound = bounds.get(column)
            if not math.isfinite(value):
                problem = "not finite"
            elif bound is not None and not bound.contains(value):
                problem = f"outside {bound.describe()}"
            else:
                continue
            violations.append(
                {**{k: row.get(k) for k in _IDENTITY}, "metric": column, "value": value, "problem": problem}
            )
    return violations


def poor_ptc_fits(module_stats: pl.DataFrame, min_r2: float = MIN_FIT_R2) -> pl.DataFrame:
    """Sessions whose photon-transfer fit R^2 is below ``min_r2`` or missing."""
    if module_stats.is_empty() or PTC_R2_COLUMN not in module_stats.columns:
        return module_stats.head(0)
    r2 = pl.col(PTC_R2_COLUMN)
    return module_stats.filter(r2.is_null() | r2.is_nan() | (r2 < min_r2))


def metric_summary_md(module_stats: pl.DataFrame) -> str:
    """Markdown table: per metric, sessions with a value, median, min and max over the day."""
    if module_stats.is_empty():
        return "_no sessions characterized_"
    lines = ["| metric | n | median | min | max |", "|---|---|---|---|---|"]
    for name, dtype in module_stats.schema.items():
        if dtype not in (pl.Float32, pl.Float64) or name == "temperature_c":
            continue
        values = module_stats[name].drop_nulls().drop_nans()
        if values.is_empty():
            lines.append(f"| {name} | 0 | | | |")
            continue
        median, low, high = (float(v) for v in (values.median(), values.min(), values.max()))  # type: ignore[arg-type]
        lines.append(f"| {name} | {values.len()} | {median:.4g} | {low:.4g} | {high:.4g} |")
    return "\n".join(lines)


def build_characterization_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The ``pixel_maps``, ``module_stats``, ``module_channel_stats`` and ``pixel_defects``
    assets (one step) on ``partitions_def``, downstream of ``captures``."""
    deps = [AssetDep(CAPTURES)]
    checks = {
        spec.name: spec
        for spec in (
            check_spec(
                CHECK_BOUNDS, MODULE_STATS,
                "Every metric is finite and inside its physical bounds: "
                + "; ".join(f"{k}: {b.describe()}" for k, b in PHYSICAL_BOUNDS.items())
                + " (blocking: non-physical metrics must not reach the features).",
                partitions_def, blocking=True,
            ),
            check_spec(
                CHECK_PTC_FIT, MODULE_STATS,
                f"Photon-transfer line fit R^2 >= {MIN_FIT_R2} for every session (warning: the "
                "metrics stay within their bounds; the module is one to look at).",
                partitions_def,
            ),
        )
    }

    @multi_asset(
        name="characterize_sessions",
        specs=[
            AssetSpec(
                PIXEL_MAPS,
                group_name=GROUP,
                code_version=CODE_VERSION,
                deps=deps,
                kinds={"zarr"},
                owners=["team:sensor-characterization"],
                description="Per-pixel maps of every session of the day, zarr "
                "maps/<day>/<session>.zarr: dark offset (DN), dark current (DN/s), temporal dark "
                "noise (DN), relative response (PRNU, 1 = median) as float32 (H, W), defect class uint8.",
            ),
            table_spec(MODULE_STATS, group=GROUP, deps=deps, owner=OWNER, code_version=CODE_VERSION,
                       description="Table `module_stats`: EMVA 1288 metrics, one row per session."),
            table_spec(MODULE_CHANNEL_STATS, group=GROUP, deps=deps, owner=OWNER, code_version=CODE_VERSION,
                       description="Table `module_channel_stats`: per-CFA-channel EMVA 1288 metrics (long)."),
            table_spec(PIXEL_DEFECTS, group=GROUP, deps=deps, owner=OWNER, code_version=CODE_VERSION,
                       description="Table `pixel_defects`: one row per defective pixel with its class."),
        ],
        check_specs=list(checks.values()),
        partitions_def=partitions_def,
    )
    def characterize_sessions(
        context: AssetExecutionContext, config: CharacterizationRunConfig, storage: StorageResource
    ) -> Iterator[Any]:
        paths = storage.paths()
        day = context.partition_key
        workers = choose_workers(config.workers, len(list_ingested(paths, day)))
        report = characterize_day(
            paths,
            day,
            workers=workers,
            progress=lambda done, total, _sid: emit_progress("characterization", day, done, total),
        )
        context.log.info(
            f"{day}: {len(report.characterized)} sessions characterized, {len(report.skipped)} "
            f"unchanged, {len(report.failed)} failed"
        )
        stats = tables.read_partition(paths.tables, MODULE_STATS, day)
        channel_stats = tables.read_partition(paths.tables, MODULE_CHANNEL_STATS, day)
        defects = tables.read_partition(paths.tables, PIXEL_DEFECTS, day)
        violations = metric_violations(stats)
        poor_fits = poor_ptc_fits(stats)

        stats_metadata: dict[str, Any] = {
            SESSIONS: MetadataValue.int(stats.height),
            **row_count_metadata(stats.height, partitioned=True),
            SESSIONS_CHARACTERIZED: MetadataValue.int(len(report.characterized)),
            "sessions_unchanged": MetadataValue.int(len(report.skipped)),
            "sessions_failed": MetadataValue.int(len(report.failed)),
            "metric_summary": MetadataValue.md(metric_summary_md(stats)),
            "table": MetadataValue.path(str(tables.partition_path(paths.tables, MODULE_STATS, day))),
        }
        worst = worst_session(stats, violations)
        if worst is not None and worst in report.maps:
            stats_metadata["worst_session"] = MetadataValue.text(worst)
            try:
                stats_metadata.update(_worst_plots(report.maps[worst], stats, paths.root / "plots" / day, worst))
            except Exception as exc:  # a figure is a convenience: never fail the tables for it
                context.log.warning(f"plots of {worst} failed: {type(exc).__name__}: {exc}")

        yield MaterializeResult(
            asset_key=PIXEL_MAPS,
            metadata={
                "sessions": MetadataValue.int(len(report.maps) - len(report.failed)),
                "zarr_root": MetadataValue.path(str(paths.maps / day)),
            },
        )
        yield MaterializeResult(asset_key=MODULE_STATS, metadata=stats_metadata)
        yield MaterializeResult(
            asset_key=MODULE_CHANNEL_STATS,
            metadata={
                "rows": MetadataValue.int(channel_stats.height),
                **row_count_metadata(channel_stats.height, partitioned=True),
                "table": MetadataValue.path(str(tables.partition_path(paths.tables, MODULE_CHANNEL_STATS, day))),
            },
        )
        by_class: dict[str, int] = {}
        if not defects.is_empty() and "defect_class" in defects.columns:
            for name, count in defects.group_by("defect_class").len().sort("defect_class").iter_rows():
                by_class[str(name)] = int(count)
        yield MaterializeResult(
            asset_key=PIXEL_DEFECTS,
            metadata={
                "defective_pixels": MetadataValue.int(defects.height),
                **row_count_metadata(defects.height, partitioned=True),
                "by_class": MetadataValue.json(by_class),
                "table": MetadataValue.path(str(tables.partition_path(paths.tables, PIXEL_DEFECTS, day))),
            },
        )

        yield AssetCheckResult(
            asset_key=MODULE_STATS,
            check_name=CHECK_BOUNDS,
            passed=not violations,
            severity=check_severity(checks[CHECK_BOUNDS]),
            metadata={
                "violations": MetadataValue.int(len(violations)),
                MODULES_FAILING: MetadataValue.json(_modules(violations)),
                "details": MetadataValue.json(violations[:200]),
            },
        )
        fit_rows = poor_fits.select([c for c in (*_IDENTITY, PTC_R2_COLUMN) if c in poor_fits.columns]).to_dicts()
        yield AssetCheckResult(
            asset_key=MODULE_STATS,
            check_name=CHECK_PTC_FIT,
            passed=poor_fits.is_empty(),
            severity=check_severity(checks[CHECK_PTC_FIT]),
            metadata={
                "min_r2": MetadataValue.float(MIN_FIT_R2),
                MODULES_FAILING: MetadataValue.json(_modules(fit_rows)),
                "details": MetadataValue.json(fit_rows[:200]),
            },
        )
        if report.failed:
            # Not bad input (ingest validated it): a bug or a damaged group. The tables of the
            # other sessions are written; the run fails so that someone looks.
            raise Failure(
                description=f"{day}: characterization failed for {len(report.failed)} session(s): "
                + "; ".join(f"{sid}: {err}" for sid, err in sorted(report.failed.items())[:20]),
                metadata={"failed_sessions": MetadataValue.json(sorted(report.failed))},
            )

    return characterize_sessions


def _modules(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({f"{r.get('module_id')} ({r.get('session_id')})" for r in rows})


def _worst_plots(maps_group: Path, stats: pl.DataFrame, plots_dir: Path, session_id: str) -> dict[str, Any]:
    """Photon-transfer curve and defect map of ``session_id`` as inline images + PNG files."""
    rows = load_session_rows(maps_group)
    row = stats.filter(pl.col("session_id") == session_id).row(0, named=True)
    module = row.get("module_id", session_id)
    gain = row.get("gain_k_dn_per_e")
    ptc_png, defects_png = draw_two(
        (plot_ptc, (rows.ptc, gain if isinstance(gain, float) else None), {"title": f"photon transfer: {module} ({session_id})"}),
        (plot_defect_map, (rows.defects, int(row.get("width_px") or 0), int(row.get("height_px") or 0)),
         {"title": f"defects: {module} ({session_id})"}),
    )
    ptc_md, ptc_path = png_metadata(ptc_png, plots_dir / f"{session_id}-ptc.png", f"Photon transfer of the worst module: {module}")
    map_md, map_path = png_metadata(defects_png, plots_dir / f"{session_id}-defects.png", f"Defect map of the worst module: {module}")
    return {
        "worst_module_ptc": ptc_md,
        "worst_module_ptc_png": ptc_path,
        "worst_module_defect_map": map_md,
        "worst_module_defect_map_png": map_path,
    }
