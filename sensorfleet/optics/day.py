"""The optics of a capture day: every complete captures group of the day (its edge chart and
flats), then the day's ``sfr`` and ``module_optics`` partitions and the day's SFR curves.

Curves go to one file per day beside the sessions' maps groups, ``maps/<day>/sfr_curves.parquet``
(``session_id, edge_id, channel, frequency_cy_per_px, mtf``, the good edges up to 1 cycle/pixel,
sessions in order): not inside a maps group, which belongs to the characterization step and is
published whole by renaming (a second writer inside it would race with that); one file per day,
not per session, as the day's table partitions are (a file per session cost ~1.5 ms of a
640 x 480 module's CPU). A day file replaces the per-session sidecars of earlier versions
(``<session_id>.sfr.parquet``), which are removed when it is written. Every session is recomputed
on each run; rows whose content is unchanged keep their ``written_at`` (``tables.publish_partition``),
and a curve file that holds the day's curves already is not rewritten: known from the
fingerprint it carries in its parquet metadata (``session.curves_fingerprint``, computed from the
sessions' arrays before any DataFrame is made), or, for a file without one, by reading and
comparing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.emva.flatblocks import GRID, stored_means
from sensorfleet.emva.session import open_captures
from sensorfleet.ingest.store import GroupAttrs, ingested_groups
from sensorfleet.optics.chart import ChartConfig
from sensorfleet.optics.session import (
    CURVE_SCHEMA,
    CurveRows,
    SessionOptics,
    curves_fingerprint,
    curves_frame,
    session_optics,
    sfr_frame,
    write_curves,
)
from sensorfleet.parallel import Outcome, run_each
from sensorfleet.tables import publish_partition, stored_fingerprint, sweep_stale_temporaries

SFR_TABLE = "sfr"
MODULE_OPTICS_TABLE = "module_optics"
CURVES_FILE = "sfr_curves.parquet"
#: the per-session curve sidecars of earlier versions, replaced by the day file
SESSION_CURVES_SUFFIX = ".sfr.parquet"


@dataclass
class OpticsDayReport:
    """What :func:`characterize_optics_day` did for one day."""

    day: str
    sessions: list[str]
    failed: dict[str, str]
    sfr: pl.DataFrame
    module_optics: pl.DataFrame
    tables: dict[str, Path]
    curves: Path | None  # the day's curve file; None when no session has a measured edge
    worst_session_id: str | None


def curves_path(paths: Paths, day: str) -> Path:
    """The SFR curves file of a day (every session's)."""
    return paths.maps / day / CURVES_FILE


def read_curves(path: Path, session_id: str | None = None) -> pl.DataFrame:
    """The SFR curves in ``path`` (those of ``session_id`` only, when given); empty, typed, when
    the file is missing."""
    if not path.is_file():
        return pl.DataFrame(schema=CURVE_SCHEMA)
    scan = pl.scan_parquet(path)
    return (scan if session_id is None else scan.filter(pl.col("session_id") == session_id)).collect()


def _holds(path: Path, curves: pl.DataFrame) -> bool:
    """Whether the curve file at ``path`` holds ``curves`` already (a rerun of an unchanged day
    leaves it alone, as :func:`sensorfleet.tables.publish_partition` does a table partition:
    reading and comparing costs a third of writing); False when it is missing or unreadable."""
    if not path.is_file():
        return False
    try:
        return pl.read_parquet(path).equals(curves)
    except (OSError, pl.exceptions.PolarsError):
        return False


def _publish_curves(paths: Paths, day: str, parts: list[CurveRows]) -> Path | None:
    """Write the day's curves (the sessions' ``parts``, in order) to :func:`curves_path`, or remove
    it when there are none; remove the per-session sidecars of earlier versions."""
    target = curves_path(paths, day)
    if parts:
        fingerprint = curves_fingerprint(parts)
        stored = stored_fingerprint(target)
        if stored != fingerprint:
            curves = curves_frame(parts)
            if stored is not None or not _holds(target, curves):  # a file without one: compared
                write_curves(curves, target, fingerprint)
    else:
        target.unlink(missing_ok=True)
    for old in target.parent.glob(f"*{SESSION_CURVES_SUFFIX}") if target.parent.is_dir() else ():
        old.unlink(missing_ok=True)
    return target if parts else None


def _one(maps: Path, written_at: datetime, config: ChartConfig, listed: tuple[Path, GroupAttrs]) -> SessionOptics:
    """One session (its group, and its attributes as listed); the flat's block means from its maps
    group in ``maps`` when current."""
    group = listed[0]
    frames, manifest, attrs = open_captures(group, listed[1])
    sites = 1 if manifest.sensor.cfa_pattern == "mono" else 4
    blocks = stored_means(maps / group.name, attrs.get("content_hash"), (sites, GRID, GRID))
    return session_optics(frames, manifest, written_at, config, blocks)


def worst_module(module_optics: pl.DataFrame) -> str | None:
    """The session with the lowest corner MTF50 (else the lowest centre MTF50; the first row of
    a tie), or None. From the columns' values, not a filter and a sort (~0.6 ms of a day)."""
    for column in ("mtf50_corner_min_cy_per_px", "mtf50_center_cy_per_px"):
        if column in module_optics.columns:
            values = module_optics[column].cast(pl.Float64).to_numpy()  # null as NaN
            measured = np.flatnonzero(~np.isnan(values))
            if measured.size:
                return str(module_optics["session_id"][int(measured[np.argmin(values[measured])])])
    return None


def characterize_optics_day(paths: Paths, day: str, *, workers: int = 1, config: ChartConfig = ChartConfig(),
                            progress: Callable[[int, int, str], None] | None = None) -> OpticsDayReport:
    """Measure every complete captures group of ``day``; write the ``sfr`` and ``module_optics``
    partitions and the curves. A session that fails is reported in ``failed``; the others go on.
    ``progress(done, total, session_id)`` is called after each session."""
    groups = ingested_groups(paths, day)
    if (paths.maps / day).is_dir():
        sweep_stale_temporaries(paths.maps / day)  # curve files a killed run left unpublished
    results: dict[str, SessionOptics] = {}
    failed: dict[str, str] = {}

    def finished(outcome: Outcome[tuple[Path, GroupAttrs], SessionOptics]) -> None:
        sid = outcome.item[0].name.removesuffix(".zarr")
        if outcome.error is not None or outcome.value is None:
            failed[sid] = outcome.error_text
        else:
            results[sid] = outcome.value
        if progress:
            progress(len(results) + len(failed), len(groups), sid)

    written_at = datetime.now(UTC)
    run_each(partial(_one, paths.maps / day, written_at, config), groups, workers=max(1, min(workers, len(groups) or 1)),
             on_done=finished)
    ordered = [results[s] for s in sorted(results)]
    sfr = sfr_frame([r.sfr_rows for r in ordered if r.sfr_rows is not None])
    module = pl.DataFrame([r.module for r in ordered], infer_schema_length=None) if ordered else pl.DataFrame()
    tables = {
        SFR_TABLE: publish_partition(paths.tables, SFR_TABLE, day, sfr).path,
        MODULE_OPTICS_TABLE: publish_partition(paths.tables, MODULE_OPTICS_TABLE, day, module).path,
    }
    curves = _publish_curves(paths, day, [r.curve_rows for r in ordered if r.curve_rows is not None])
    return OpticsDayReport(day, sorted(results), failed, sfr, module, tables, curves, worst_module(module))


__all__ = ["CURVES_FILE", "MODULE_OPTICS_TABLE", "SFR_TABLE", "OpticsDayReport", "characterize_optics_day",
           "curves_path", "read_curves", "worst_module"]
