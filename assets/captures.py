"""Captures layer: landing sessions of one capture day -> zarr frame stacks + parquet tables.

Thin over :func:`sensorfleet.ingest.ingest_day`: the step gets the roots from the storage
resource, ingests the day's sessions in parallel worker processes (idempotent: unchanged
sessions are skipped, bad ones rejected with a reason), and reports metadata and checks.
"""

# No `from __future__ import annotations`: Dagster reads the Config and resource annotations at
# decoration time.
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
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
    SESSIONS_FAILING,
    check_severity,
    check_spec,
    choose_workers,
    counting_progress,
    md_table,
)
from assets.landing_state import FINGERPRINT_METADATA_KEY, day_fingerprints
from assets.resources import StorageResource
from assets.table_metadata import definition_metadata, row_count_metadata
from sensorfleet import tables
from sensorfleet.ingest import DayIngestReport, IngestError, ingest_day, sessions_for_day

GROUP = "captures"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it: bump it when a change alters what the
step writes, and every day materialized with the old one shows as stale in the UI."""
CAPTURES = "captures"
REJECTIONS = "rejections"

CHECK_NO_REJECTIONS = "no_rejected_sessions"
CHECK_SATURATION = "no_unexpected_saturation"
CHECK_OPERATING_POINTS = "operating_points_complete"

SATURATED_FRACTION_LIMIT = 0.01
"""A frame with more saturated pixels than this where none should be fails the check."""
FLAT_SATURATION_LEVEL = 0.5
"""A flat whose mean is below this fraction of full scale should have no saturated pixels."""
MIN_PTC_LEVELS = 5
"""Fewest distinct flat-field levels for a photon-transfer fit worth the name."""
_REJECTION_LIST_LIMIT = 200
REJECTION_ROWS = "rejections"
"""Metadata key of the rejection rows (session, file, reason) on the ``no_rejected_sessions`` check."""


@dataclass(frozen=True)
class SessionCounts:
    """Sessions of one day's ingest by outcome, recorded as ``sessions_<outcome>`` metadata of
    ``captures`` (the CLI's summary reads them back with :meth:`from_metadata`)."""

    ingested: int = 0
    rewritten: int = 0
    unchanged: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, report: DayIngestReport) -> "SessionCounts":
        return cls(
            ingested=report.n_ingested - report.n_rewritten,  # n_ingested counts rewrites too
            rewritten=report.n_rewritten,
            unchanged=report.n_unchanged,
            rejected=report.n_rejected,
        )

    @property
    def total(self) -> int:
        return self.ingested + self.rewritten + self.unchanged + self.rejected

    def metadata(self) -> dict[str, MetadataValue]:
        return {f"sessions_{f.name}": MetadataValue.int(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def metadata_keys(cls) -> list[str]:
        """The metadata keys :meth:`metadata` writes."""
        return [f"sessions_{f.name}" for f in fields(cls)]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> "SessionCounts":
        """The counts from ``captures`` materialization metadata (plain values); absent keys are 0."""
        return cls(**{f.name: int(metadata.get(f"sessions_{f.name}", 0)) for f in fields(cls)})


class IngestConfig(Config):  # type: ignore[misc]
    """Run parameters of the ingest step."""

    workers: int = Field(
        default=0,
        ge=0,
        description="worker processes for the day's sessions; 0 = one per core (none for small days)",
    )


def unexpected_saturation(captures: pl.DataFrame) -> pl.DataFrame:
    """Frames with more than 1 % saturated pixels where none should be.

    ``captures`` has one row per frame with ``kind``, ``mean_dn``, ``saturated_fraction`` and
    ``bit_depth`` (or ``saturation_dn``). Dark frames and flats whose mean is below half of full
    scale (``2**bit_depth - 1`` DN) should not saturate at all.
    """
    if captures.is_empty():
        return captures
    if "saturation_dn" in captures.columns:
        full_scale = pl.col("saturation_dn").cast(pl.Float64)
    else:
        full_scale = (pl.lit(2.0).pow(pl.col("bit_depth").cast(pl.Float64)) - 1.0)
    should_not_saturate = (pl.col("kind") == "dark") | (
        (pl.col("kind") == "flat") & (pl.col("mean_dn") < FLAT_SATURATION_LEVEL * full_scale)
    )
    return captures.filter(should_not_saturate & (pl.col("saturated_fraction") > SATURATED_FRACTION_LIMIT))


def missing_operating_points(captures: pl.DataFrame, min_levels: int = MIN_PTC_LEVELS) -> list[dict[str, Any]]:
    """Sessions whose operating points cannot support the EMVA 1288 analysis.

    Three problems per session are reported: a flat-field exposure time with no dark operating
    point at the same exposure (no dark reference to subtract), fewer than two dark exposure
    times (no dark-current slope), and fewer than ``min_levels`` distinct flat-field levels
    (``exposure_s``, ``photons_per_pixel``) for the photon-transfer fit. ``blocking`` is False
    for the second alone: the analysis runs without a dark current (the EMVA 1288 reference data
    set 003 has one dark exposure time), the others leave it nothing to fit.
    """
    problems: list[dict[str, Any]] = []
    if captures.is_empty():
        return problems
    for (session_id,), frames in captures.group_by(["session_id"], maintain_order=True):
        dark_exposures = set(frames.filter(pl.col("kind") == "dark")["exposure_s"].to_list())
        flats = frames.filter(pl.col("kind") == "flat")
        flat_exposures = sorted(set(flats["exposure_s"].to_list()))
        no_dark = [e for e in flat_exposures if e not in dark_exposures]
        if no_dark:
            problems.append(
                {
                    "session_id": session_id,
                    "problem": "no dark operating point at flat exposure(s) "
                    + ", ".join(f"{e:g} s" for e in no_dark),
                    "blocking": True,
                }
            )
        if len(dark_exposures) < 2:
            problems.append(
                {
                    "session_id": session_id,
                    "problem": f"{len(dark_exposures)} dark exposure time(s), expected at least 2 for the dark current",
                    "blocking": False,
                }
            )
        levels = flats.select(["exposure_s", "photons_per_pixel"]).unique().height
        if levels < min_levels:
            problems.append(
                {
                    "session_id": session_id,
                    "problem": f"{levels} flat-field levels, expected at least {min_levels} for the photon-transfer fit",
                    "blocking": True,
                }
            )
    return problems


def _rejection_rows(report: DayIngestReport) -> list[dict[str, Any]]:
    # an unreadable manifest has no session id: its folder names it
    return [{"session_id": r.label, "file": r.file, "reason": r.reason} for r in report.rejections]


def _check(name: str, severity: AssetCheckSeverity, sessions_failing: list[str], **metadata: MetadataValue) -> AssetCheckResult:
    """A check of ``captures`` that passes when no session fails it; names the failing ones."""
    return AssetCheckResult(
        asset_key=CAPTURES,
        check_name=name,
        passed=not sessions_failing,
        severity=severity,
        metadata={SESSIONS_FAILING: MetadataValue.json(sessions_failing), **metadata},
    )


def build_capture_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The ``captures`` and ``rejections`` assets (one step) on ``partitions_def`` (capture days)."""
    checks = {
        spec.name: spec
        for spec in (
            check_spec(
                CHECK_NO_REJECTIONS, CAPTURES,
                "No session of the day was refused (warning: the others go on).",
                partitions_def,
            ),
            check_spec(
                CHECK_SATURATION, CAPTURES,
                f"No dark frame, and no flat below {FLAT_SATURATION_LEVEL:.0%} of full scale, has more "
                f"than {SATURATED_FRACTION_LIMIT:.0%} saturated pixels (blocking: saturated dark frames "
                "corrupt the day's dark statistics).",
                partitions_def, blocking=True,
            ),
            check_spec(
                CHECK_OPERATING_POINTS, CAPTURES,
                "Every flat exposure has a dark point at the same exposure, every session has at least "
                f"2 dark exposure times and {MIN_PTC_LEVELS} flat-field levels (blocking: without them "
                "the EMVA 1288 analysis cannot run; a single dark exposure time only warns, the "
                "analysis then runs without a dark current).",
                partitions_def, blocking=True,
            ),
        )
    }

    @multi_asset(
        name="ingest_captures",
        specs=[
            AssetSpec(
                CAPTURES,
                group_name=GROUP,
                code_version=CODE_VERSION,
                description="Frame stacks of every accepted session of the day: zarr "
                "captures/<day>/<session>.zarr (frames (n, H, W) uint16) and the parquet tables "
                "`sessions` (one row per session) and `captures` (one row per frame).",
                kinds={"zarr", "parquet"},
                owners=["team:data-engineering"],
                metadata=definition_metadata("captures", "sessions"),
            ),
            AssetSpec(
                REJECTIONS,
                group_name=GROUP,
                code_version=CODE_VERSION,
                description="Table `rejections`: one row per problem of a refused session "
                "(session, file, reason, time). Refused input stays in the landing folder.",
                kinds={"parquet"},
                owners=["team:data-engineering"],
                metadata=definition_metadata("rejections"),
            ),
        ],
        check_specs=list(checks.values()),
        partitions_def=partitions_def,
    )
    def ingest_captures(
        context: AssetExecutionContext, config: IngestConfig, storage: StorageResource
    ) -> Iterator[Any]:
        paths = storage.paths()
        day = context.partition_key
        landing_sessions = sessions_for_day(paths.landing, day, cache_dir=paths.state)
        n_landing = len(landing_sessions)
        fingerprint = day_fingerprints(landing_sessions).get(day, "")
        try:
            report = ingest_day(
                paths,
                day,
                workers=choose_workers(config.workers, n_landing),
                progress=counting_progress("captures", day, n_landing),
            )
        except IngestError as exc:
            # what the run did publish travels with the failure, so the CLI's summary counts it
            counts_so_far = SessionCounts.of(exc.report) if exc.report is not None else SessionCounts()
            raise Failure(description=str(exc), metadata=counts_so_far.metadata()) from exc
        counts = SessionCounts.of(report)
        rejections = _rejection_rows(report)
        context.log.info(
            f"{day}: {counts.total} sessions: {counts.ingested} ingested, {counts.rewritten} "
            f"rewritten, {counts.unchanged} unchanged, {counts.rejected} rejected"
        )
        rejected_sessions = sorted({str(r["session_id"]) for r in rejections})
        frames = tables.read_partition(paths.tables, "captures", day)
        sessions = tables.read_partition(paths.tables, "sessions", day)
        if "bit_depth" not in frames.columns and "bit_depth" in sessions.columns and not frames.is_empty():
            frames = frames.join(sessions.select(["session_id", "bit_depth"]), on="session_id", how="left")

        yield MaterializeResult(
            asset_key=CAPTURES,
            metadata={
                "sessions": MetadataValue.int(counts.total),
                **counts.metadata(),
                **row_count_metadata(report.n_frames, partitioned=True),
                "frames": MetadataValue.int(report.n_frames),
                "bytes_in": MetadataValue.int(report.bytes_in),
                "bytes_stored": MetadataValue.int(report.bytes_stored),
                "compression_ratio": MetadataValue.float(report.compression_ratio),
                "rejections": MetadataValue.int(len(rejections)),
                "zarr_root": MetadataValue.path(str(paths.captures / day)),
                FINGERPRINT_METADATA_KEY: MetadataValue.text(fingerprint),
                "tables": MetadataValue.path(str(paths.tables)),
            },
        )
        yield MaterializeResult(
            asset_key=REJECTIONS,
            metadata={
                **row_count_metadata(len(rejections), partitioned=True),
                "rejections": MetadataValue.int(len(rejections)),
                "rejected_sessions": MetadataValue.json(rejected_sessions[:_REJECTION_LIST_LIMIT]),
                "reasons": MetadataValue.md(md_table(rejections, ["session_id", "file", "reason"])),
                "table": MetadataValue.path(str(tables.partition_path(paths.tables, "rejections", day))),
            },
        )

        yield _check(
            CHECK_NO_REJECTIONS,
            check_severity(checks[CHECK_NO_REJECTIONS]),
            rejected_sessions[:_REJECTION_LIST_LIMIT],
            **{REJECTION_ROWS: MetadataValue.json(rejections[:_REJECTION_LIST_LIMIT])},
        )
        saturated = unexpected_saturation(frames)
        saturated_rows = saturated.select(
            [c for c in ("session_id", "frame_index", "file", "kind", "exposure_s", "mean_dn", "saturated_fraction") if c in saturated.columns]
        ).to_dicts()
        yield _check(
            CHECK_SATURATION,
            check_severity(checks[CHECK_SATURATION]),
            sorted(set(saturated["session_id"].to_list())) if not saturated.is_empty() else [],
            frames_failing=MetadataValue.int(saturated.height),
            frames=MetadataValue.md(md_table(saturated_rows, list(saturated_rows[0]) if saturated_rows else [])),
        )
        missing = missing_operating_points(frames)
        # one dark exposure time only costs the dark current: a warning, the analysis goes on
        blocking = any(p["blocking"] for p in missing)
        yield _check(
            CHECK_OPERATING_POINTS,
            check_severity(checks[CHECK_OPERATING_POINTS]) if blocking else AssetCheckSeverity.WARN,
            sorted({p["session_id"] for p in missing}),
            problems=MetadataValue.md(md_table(missing, ["session_id", "problem"])),
        )

    return ingest_captures
