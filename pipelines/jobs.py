"""Jobs: the whole daily graph, and each layer alone.

All run with the in-process executor: the steps parallelize inside themselves (worker processes
per session), and the multiprocess executor would re-import the code location for every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job, in_process_executor

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def build_jobs() -> dict[str, UnresolvedAssetJobDefinition]:
    """``daily_pipeline`` (every asset), ``ingest`` (captures group), ``characterize``.

    Partitioned like their assets (Dagster infers it from the selection)."""
    return {
        "daily_pipeline": define_asset_job(
            "daily_pipeline",
            selection=AssetSelection.all(),
            executor_def=in_process_executor,
            description="Ingest and characterize one capture day.",
        ),
        "ingest": define_asset_job(
            "ingest",
            selection=AssetSelection.groups("captures"),
            executor_def=in_process_executor,
            description="Ingest one capture day (captures, rejections).",
        ),
        "characterize": define_asset_job(
            "characterize",
            selection=AssetSelection.groups("characterization"),
            executor_def=in_process_executor,
            description="Characterize one capture day from its ingested captures.",
        ),
    }
