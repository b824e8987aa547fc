"""Characterize a whole capture day: every complete captures group of the day, in worker
processes, then the day's partitions of ``module_stats``, ``module_channel_stats`` and
``pixel_defects`` rebuilt from the maps groups (so unchanged sessions keep their rows).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import polars as pl

from sensorfleet.config import Paths
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.mapsgroup import is_current, load_session_rows
from sensorfleet.emva.quality import worst_session
from sensorfleet.emva.rows import DEFECT_SCHEMA, Row
from sensorfleet.emva.session import characterize_session
from sensorfleet.ingest.store import read_group_attrs
from sensorfleet.parallel import Outcome, Threads, run_each, set_threads
from sensorfleet.tables import sweep_stale_temporaries, write_partition


@dataclass
class DayCharacterizationReport:
    """What :func:`characterize_day` did for one day."""

    day: str
    characterized: list[str]
    skipped: list[str]
    failed: dict[str, str]
    module_stats: pl.DataFrame
    channel_stats: pl.DataFrame
    defect_rows: int
    tables: dict[str, Path]
    maps: dict[str, Path]
    worst_session_id: str | None
    worst_ptc: pl.DataFrame | None


@dataclass(frozen=True)
class DayPlan:
    """The complete captures groups of a day: their maps groups, what to compute, what is current."""

    maps: dict[str, Path]  # session id -> maps group (every complete captures group)
    todo: list[tuple[Path, Path]]  # (captures group, maps group) to characterize
    skipped: list[str]  # session ids whose maps group is current


@dataclass(frozen=True)
class DayRows:
    """The day's table rows, gathered from its maps groups."""

    module_stats: pl.DataFrame
    channel_stats: pl.DataFrame
    defects: pl.DataFrame
    ptc: dict[str, pl.DataFrame]  # by session id


def _session_id(group: Path) -> str:
    return group.name[: -len(".zarr")]


def plan_day(paths: Paths, day: str) -> DayPlan:
    """Every complete captures group of ``day``; skip those whose maps group holds the same source
    ``content_hash`` in the current layout."""
    folder = paths.captures / day
    groups = sorted(
        p for p in (folder.iterdir() if folder.is_dir() else [])
        if p.name.endswith(".zarr") and not p.name.startswith(".") and (read_group_attrs(p) or {}).get("complete") is True
    )
    plan = DayPlan(maps={}, todo=[], skipped=[])
    for group in groups:
        out = paths.maps / day / group.name
        plan.maps[_session_id(group)] = out
        if is_current(out, (read_group_attrs(group) or {}).get("content_hash")):
            plan.skipped.append(_session_id(group))
        else:
            plan.todo.append((group, out))
    return plan


def _characterize(config: CharacterizationConfig, captures_and_maps: tuple[Path, Path]) -> None:
    characterize_session(captures_and_maps[0], captures_and_maps[1], config)


def gather_rows(maps: dict[str, Path], failed: dict[str, str]) -> DayRows:
    """The table rows stored in the day's maps groups (failed or missing ones left out), each
    stamped with its group's ``written_at``."""
    module_rows: list[Row] = []
    channel_rows: list[Row] = []
    defect_frames: list[pl.DataFrame] = []
    ptcs: dict[str, pl.DataFrame] = {}
    for sid, out in sorted(maps.items()):
        if sid in failed or not out.exists():
            continue
        rows = load_session_rows(out)
        written_at = datetime.fromisoformat(str((read_group_attrs(out) or {}).get("written_at")))
        module_rows.append(rows.module_stats | {"written_at": written_at})
        channel_rows.extend(r | {"written_at": written_at} for r in rows.channel_stats)
        defect_frames.append(rows.defects.with_columns(pl.lit(written_at).dt.convert_time_zone("UTC").alias("written_at")))
        ptcs[sid] = rows.ptc
    if defect_frames:
        defects = pl.concat(defect_frames, how="vertical_relaxed")
    else:
        defects = pl.DataFrame(schema=DEFECT_SCHEMA | {"written_at": pl.Datetime("us", "UTC")})
    return DayRows(_rows_frame(module_rows), _rows_frame(channel_rows), defects, ptcs)


def _rows_frame(rows: list[Row]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None)


def characterize_day(
    paths: Paths,
    day: str,
    *,
    workers: int = 2,
    config: CharacterizationConfig = CharacterizationConfig(),
    progress: Callable[[int, int, str], None] | None = None,
) -> DayCharacterizationReport:
    """Characterize every complete captures group of ``day`` and write the day's table partitions.

    Sessions whose maps group already holds the same source ``content_hash`` are skipped (their
    stored rows are reused). ``progress(done, total, session_id)`` is called after each session.
    A session that fails is reported in ``failed`` (its error); the others go on.
    """
    sweep_stale_temporaries(paths.maps / day)  # maps groups a killed run left unpublished
    plan = plan_day(paths, day)
    failed: dict[str, str] = {}
    characterized: list[str] = []
    done = len(plan.skipped)

    def finished(outcome: Outcome[tuple[Path, Path], None]) -> None:
        nonlocal done
        sid = _session_id(outcome.item[0])
        done += 1
        if outcome.error is not None:
            failed[sid] = outcome.error_text
        else:
            characterized.append(sid)
        if progress:
            progress(done, len(plan.maps), sid)

    if plan.todo and workers <= 1:
        set_threads(Threads(numba=os.cpu_count() or 1))
    threads = Threads(numba=max(1, (os.cpu_count() or 1) // max(1, workers)))
    run_each(partial(_characterize, config), plan.todo, workers=workers, threads=threads, on_done=finished)

    rows = gather_rows(plan.maps, failed)
    tables = {
        "module_stats": write_partition(paths.tables, "module_stats", day, rows.module_stats),
        "module_channel_stats": write_partition(paths.tables, "module_channel_stats", day, rows.channel_stats),
        "pixel_defects": write_partition(paths.tables, "pixel_defects", day, rows.defects),
    }
    worst = worst_session(rows.module_stats)
    return DayCharacterizationReport(
        day=day,
        characterized=sorted(characterized),
        skipped=sorted(plan.skipped),
        failed=failed,
        module_stats=rows.module_stats,
        channel_stats=rows.channel_stats,
        defect_rows=rows.defects.height,
        tables=tables,
        maps=plan.maps,
        worst_session_id=worst,
        worst_ptc=rows.ptc.get(worst) if worst else None,
    )
