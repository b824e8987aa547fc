"""Shared plumbing of the asset modules: run tag, metadata keys, workers, progress hook, PNG metadata."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
)

from sensorfleet.parallel import available_cores
from sensorfleet.tables import write_atomic

PARTITION_TAG = "dagster/partition"
"""Run tag naming the capture day: Dagster's own partition tag, which every partitioned run
carries however it was launched. dagster.yaml limits it to one run per value at a time, but only
runs that go through the instance's run queue obey that limit (sensor, backfill, the UI's
Materialize); ``pipeline run`` executes in its own process with ``materialize`` and serializes
on a per-day lock file instead (``pipelines.runner.day_run_lock``). Between a CLI run and a
queued run of the same day only the ingest's per-session locks and atomic publishes hold."""

SESSIONS_FAILING = "sessions_failing"
MODULES_FAILING = "modules_failing"
STATIONS_FAILING = "stations_failing"
FEATURES_FAILING = "features_failing"
"""Metadata keys of a failed check's list of sessions, modules, test stations or features (the
CLI summary names them)."""
FAILING_KEYS = (MODULES_FAILING, SESSIONS_FAILING, STATIONS_FAILING, FEATURES_FAILING)
"""The keys above, in the order the CLI summary looks for a failed check's list."""
SCORED = "scored"
NOT_SCORED_REASON = "reason"
"""Metadata of a score table's materialization: whether a champion scored the day, and why not
(before the first training, the state of the demo's first pipeline run; the CLI summary says it
once instead of a warning per day and table)."""


def metadata_values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded metadata as plain values (each ``MetadataValue`` by its ``.value``), as readers
    of a run's events (the CLI summary, tests) want them."""
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


POOL_MIN_SESSIONS = 8
"""Fewest sessions in a day for which a step starts worker processes: starting one costs seconds
(a fresh interpreter importing numpy, zarr, numba), more than a few small sessions take."""


def choose_workers(requested: int, n_sessions: int) -> int:
    """Worker processes for a day of ``n_sessions``: ``requested`` if > 0, otherwise one per core,
    but 1 (in the step's process) when the day has fewer than :data:`POOL_MIN_SESSIONS`."""
    if requested > 0:
        return requested
    if n_sessions < POOL_MIN_SESSIONS:
        return 1
    return max(1, min(available_cores(), n_sessions))


ProgressHook = Callable[[str, str, int, int], None]
"""``hook(stage, day, done, total)``: ``stage`` is ``"captures"`` or ``"characterization"``,
``done``/``total`` count sessions of the day."""

_progress_hook: ProgressHook | None = None


@contextmanager
def progress_hook(hook: ProgressHook | None) -> Iterator[None]:
    """Route session-level progress of in-process runs to ``hook`` (the CLI's display).

    Runs launched from the UI have no hook and report through the Dagster log only.
    """
    global _progress_hook
    previous = _progress_hook
    _progress_hook = hook
    try:
        yield
    finally:
        _progress_hook = previous


def emit_progress(stage: str, day: str, done: int, total: int) -> None:
    """Forward ``done``/``total`` sessions of ``stage`` on ``day`` to the active hook, if any."""
    if _progress_hook is not None:
        _progress_hook(stage, day, done, total)


def counting_progress(stage: str, day: str, total: int) -> Callable[[object], None]:
    """A callback for core functions that call it once per finished session (with any result
    object): counts the calls and forwards ``done``/``total`` to the active hook."""
    done = 0
    emit_progress(stage, day, 0, total)

    def callback(_result: object = None) -> None:
        nonlocal done
        done += 1
        emit_progress(stage, day, done, max(total, done))

    return callback


def png_metadata(png: bytes, path: Path, title: str) -> tuple[MetadataValue, MetadataValue]:
    """Save ``png`` atomically at ``path`` and return (inline markdown image, path) metadata.

    The Dagster UI renders base64 ``data:`` images inside markdown metadata; the file beside
    the data keeps the full-resolution image for people outside the UI.
    """
    write_atomic(path, png)  # the umask's permissions (mkstemp's 0600 kept plots from the team)
    encoded = base64.b64encode(png).decode("ascii")
    markdown = f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})"
    return MetadataValue.md(markdown), MetadataValue.path(str(path))


def check_spec(
    name: str,
    asset: str,
    description: str,
    partitions_def: PartitionsDefinition | None,
    *,
    blocking: bool = False,
) -> AssetCheckSpec:
    """An asset check on the partitions of its asset, so each result is recorded for its
    partition (a check without them records ``partition=None``, and the latest result of a
    daily asset then comes from whichever day ran last).

    ``blocking`` checks stop the day's downstream steps when they fail (severity ERROR); the
    others warn. ``partitions_def`` on a check is a preview API of Dagster 1.13: its warning is
    silenced here, the one place that uses it, and ``tests/pipelines/test_check_partitions.py``
    holds the behaviour we rely on.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=partitions_def
        )


def check_severity(spec: AssetCheckSpec) -> AssetCheckSeverity:
    """ERROR for a blocking check (it stops downstream work), WARN for the others."""
    return AssetCheckSeverity.ERROR if spec.blocking else AssetCheckSeverity.WARN


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], limit: int = 50) -> str:
    """``rows`` as a markdown table of ``columns`` for UI metadata (floats to 4 significant
    digits, at most ``limit`` rows, then a count of the rest); ``_none_`` when empty."""
    if not rows:
        return "_none_"

    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str("" if value is None else value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more")
    return "\n".join(lines)


def frame_md(frame: pl.DataFrame, limit: int = 25) -> str:
    """:func:`md_table` of a polars frame's rows and columns."""
    return md_table(frame.to_dicts(), frame.columns, limit)
