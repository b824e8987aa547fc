"""Characterize a whole capture day: every complete captures group of the day, in worker
processes, then the day's partitions of ``module_stats``, ``module_channel_stats`` and
``pixel_defects`` rebuilt from the maps groups (so unchanged sessions keep their rows).
"""

from __future__ import annotations

import hashlib
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
from sensorfleet.ingest.store import is_complete, list_ingested, read_group_attrs
from sensorfleet.locks import day_tables_lock_file, file_lock, locks_dir
from sensorfleet.parallel import Outcome, Threads, available_cores, run_each, set_threads
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
    groups = list_ingested(paths, day)
    plan = DayPlan(maps={}, todo=[], skipped=[])
    for group in groups:
        out = paths.maps / day / group.name
        plan.maps[_session_id(group)] = out
        if is_current(out, (read_group_attrs(group) or {}).get("content_hash")):
            plan.skipped.append(_session_id(group))
        else:
            plan.todo.append((group, out))
    return plan


def characterize_lock_file(paths: Paths, session_id: str) -> Path:
    """The claim a run holds while it characterizes ``session_id`` (256 bucket files, like the
    ingest's writer locks; ``flock``, so a killed holder releases it)."""
    bucket = int.from_bytes(hashlib.sha1(session_id.encode()).digest()[:4], "big") % 256
    return locks_dir(paths) / f"characterize-{bucket:03d}.lock"


def _characterize(config: CharacterizationConfig, paths: Paths, captures_and_maps: tuple[Path, Path]) -> bool:
    """Characterize one session under its claim; False when, once the claim was held, its maps
    group was already current (another run did it meanwhile): overlapping runs of a day wait
    for each other's session instead of repeating it."""
    captures, out = captures_and_maps
    with file_lock(characterize_lock_file(paths, _session_id(captures))):
        if is_current(out, (read_group_attrs(captures) or {}).get("content_hash")):
            return False
        characterize_session(captures, out, config)
    return True


def gather_rows(maps: dict[str, Path], failed: dict[str, str], captures_dir: Path | None = None) -> DayRows:
    """The table rows stored in the day's maps groups (failed or missing ones left out, and with
    ``captures_dir`` those whose captures group is no longer there: moved to another day since
    the plan), each stamped with its group's ``written_at``."""
    module_rows: list[Row] = []
    channel_rows: list[Row] = []
    defect_frames: list[pl.DataFrame] = []
    ptcs: dict[str, pl.DataFrame] = {}
    for sid, out in sorted(maps.items()):
        if sid in failed or not out.exists():
            continue
        if captures_dir is not None and not is_complete(captures_dir / out.name):
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
    stored rows are reused), also when an overlapping run of the day made it current while this
    one waited for the session's claim (:func:`characterize_lock_file`). ``progress(done, total, session_id)`` is called after each session.
    A session that fails is reported in ``failed`` (its error); the others go on.
    """
    sweep_stale_temporaries(paths.maps / day)  # maps groups a killed run left unpublished
    plan = plan_day(paths, day)
    failed: dict[str, str] = {}
    characterized: list[str] = []
    done = len(plan.skipped)

    def finished(outcome: Outcome[tuple[Path, Path], bool]) -> None:
        nonlocal done
        sid = _session_id(outcome.item[0])
        done += 1
        if outcome.error is not None:
            failed[sid] = outcome.error_text
        elif outcome.value:
            characterized.append(sid)
        else:
            plan.skipped.append(sid)  # done by an overlapping run while this one waited
        if progress:
            progress(done, len(plan.maps), sid)

    if plan.todo and workers <= 1:
        set_threads(Threads(numba=available_cores()))
    threads = Threads(numba=max(1, available_cores() // max(1, workers)))
    run_each(partial(_characterize, config, paths), plan.todo, workers=workers, threads=threads, on_done=finished)

    with file_lock(day_tables_lock_file(paths, day)):  # a session moving away waits; no row outlives its group
        rows = gather_rows(plan.maps, failed, paths.captures / day)
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
