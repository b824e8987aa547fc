"""Characterize a session: maps, EMVA 1288 metrics, defects; and a whole day in a process pool.

``characterize_frames`` works on any ``(n, H, W)`` uint16 array-like (numpy or zarr) plus its
manifest; ``characterize_session`` opens a captures zarr group; ``characterize_day`` does every
complete group of a day and writes the day's partitions of ``module_stats``,
``module_channel_stats`` and ``pixel_defects``.

The maps group (``maps/<day>/<session>.zarr``) is the source of truth of a characterized session:
besides the float32 maps it holds the session's table rows (``attrs['module_stats']``,
``attrs['channel_stats']``, ``rows/defects.parquet``, ``rows/ptc.parquet``), so an unchanged session is skipped
without losing its rows when a day is re-run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.emva.analysis import MAP_UNITS as MAP_UNITS_ANALYSIS
from sensorfleet.emva.analysis import BandedAnalysis, analyse
from sensorfleet.emva.band_kernels import Q_DARK_VAR
from sensorfleet.emva.config import DEFECT_CODES, DEFECT_NAMES, CharacterizationConfig
from sensorfleet.emva.defects import VALUE_UNITS
from sensorfleet.emva.maps import MAP_UNITS as MAP_UNITS_PASS
from sensorfleet.emva.maps import ArrayLike3D
from sensorfleet.emva.mapstore import MemoryMapStore, ZarrMapStore
from sensorfleet.emva.metrics import (
    PtcAnalysis,
    SpatialStats,
    analyse_ptc,
    ptc_points,
    spatial_stats,
)
from sensorfleet.emva.quality import worst_session
from sensorfleet.manifest import Manifest
from sensorfleet.tables import sweep_stale_temporaries

MAPS_FORMAT_VERSION = 2  # 2: the table rows as parquet files in the group folder (1: zarr column arrays)
SITE_NAMES = ("R", "Gr", "Gb", "B")
ROWS_GROUP = "rows"  # subgroup of the maps group whose folder holds the session's table rows:
DEFECTS_FILE = "defects.parquet"  # its pixel_defects rows
PTC_FILE = "ptc.parquet"  # its photon-transfer points

DEFECT_SCHEMA: dict[str, Any] = {
    "session_id": pl.String,
    "module_id": pl.String,
    "x": pl.Int32,
    "y": pl.Int32,
    "channel": pl.String,
    "defect_class": pl.String,
    "value": pl.Float64,
    "value_unit": pl.String,
    "captured_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class SessionCharacterization:
    """Everything characterization produces for one session (rows for the three tables)."""

    module_stats: dict[str, object]
    channel_stats: list[dict[str, object]]
    defects: pl.DataFrame
    ptc: pl.DataFrame
    fit_r2: float
    timings: dict[str, float] = field(default_factory=dict)


def site_channels(cfa_pattern: str) -> list[str]:
    """Channel name (R, Gr, Gb, B) of each CFA site ``2 * (y % 2) + x % 2``; mono: 'mono' x4."""
    if cfa_pattern == "mono":
        return ["mono"] * 4
    rows = [cfa_pattern[0:2], cfa_pattern[2:4]]
    names = []
    for row in rows:
        for letter in row:
            if letter == "G":
                names.append("Gr" if "R" in row else "Gb")
            else:
                names.append(letter)
    return names


def _identity(m: Manifest) -> dict[str, object]:
    return {
        "session_id": m.session_id,
        "module_id": m.module_id,
        "lot_id": m.sensor.lot_id,
        "wafer_id": m.sensor.wafer_id,
        "die_x": m.sensor.die_x,
        "die_y": m.sensor.die_y,
        "station_id": m.station_id,
        "captured_at": m.captured_at.astimezone(UTC),
        "temperature_c": m.temperature_c,
        "cfa_pattern": m.sensor.cfa_pattern,
        "width_px": m.sensor.width,
        "height_px": m.sensor.height,
    }


def _metric_row(ptc: PtcAnalysis, sp: SpatialStats) -> dict[str, object]:
    k = ptc.system_gain_dn_per_e
    return {
        "gain_k_dn_per_e": k,
        "quantum_efficiency": ptc.quantum_efficiency,
        "responsivity_dn_per_photon": ptc.responsivity_dn_per_photon,
        "dark_offset_dn": sp.dark_offset_dn,
        "temporal_dark_noise_dn": ptc.temporal_dark_noise_dn,
        "read_noise_dn": ptc.read_noise_dn,
        "read_noise_e": ptc.read_noise_e,
        "dark_current_dn_per_s": sp.dark_current_dn_per_s,
        "dark_current_e_per_s": sp.dark_current_dn_per_s / k,
        "dsnu_dn": sp.dsnu_dn,
        "dsnu_e": sp.dsnu_dn / k,
        "prnu_pct": sp.prnu_pct,
        "prnu_uncorrected_pct": sp.prnu_uncorrected_pct,
        "row_fpn_dn": sp.row_fpn_dn,
        "column_fpn_dn": sp.column_fpn_dn,
        "saturation_signal_dn": ptc.saturation_signal_dn,
        "saturation_photons": ptc.saturation_photons,
        "saturation_capacity_e": ptc.saturation_capacity_e,
        "snr_max_db": ptc.snr_max_db,
        "dynamic_range_db": ptc.dynamic_range_db,
        "absolute_sensitivity_threshold_e": ptc.absolute_sensitivity_threshold_e,
        "absolute_sensitivity_threshold_photons": ptc.absolute_sensitivity_threshold_photons,
        "linearity_error_pct": ptc.linearity_error_pct,
        "linearity_error_min_pct": ptc.linearity_error_min_pct,
        "linearity_error_max_pct": ptc.linearity_error_max_pct,
        "ptc_fit_r2": ptc.fit_r2,
        "ptc_points_in_fit": int(ptc.used_in_fit.sum()),
    }


def _analyse(ana: BandedAnalysis, manifest: Manifest, config: CharacterizationConfig) -> tuple[
    dict[str, object], list[dict[str, object]], pl.DataFrame, pl.DataFrame
]:
    """Table rows of one session from the banded analysis: module row, channel rows, defect rows, PTC."""
    result = ana.result
    defects = ana.defects
    shading = ana.shading
    mono = manifest.sensor.cfa_pattern == "mono"
    names = site_channels(manifest.sensor.cfa_pattern)
    points = result.points
    dark_sp = points[result.dark_spatial]
    flat_sp = points[result.flat_spatial] if result.flat_spatial is not None else None

    # PTC and metrics: whole sensor, then per CFA channel
    rows: list[dict[str, object]] = []
    analyses: list[PtcAnalysis] = []
    for g, sites in enumerate([[0, 1, 2, 3]] + ([] if mono else [[0], [1], [2], [3]])):
        pts = ptc_points(result, sites)
        ana_ptc = analyse_ptc(pts, config)
        good = ana.good[g]
        sp = spatial_stats(good, dark_sp.n_frames, flat_sp.n_frames if flat_sp is not None else 0, ana.have_flat,
                           shading is not None)
        # read noise from the non-defective pixels of the spatial dark series: their temporal
        # variance minus the dark-current shot noise K * mu_I.DN * t (docs/metrics.md)
        n_good = int(good.sums[Q_DARK_VAR, 0])
        var0 = float(good.shifts[Q_DARK_VAR]) + float(good.sums[Q_DARK_VAR, 1]) / n_good if n_good else math.nan
        if math.isfinite(sp.dark_current_dn_per_s):
            var0 -= ana_ptc.system_gain_dn_per_e * max(sp.dark_current_dn_per_s, 0.0) * dark_sp.exposure_s
        if dark_sp.n_frames >= 2:
            ana_ptc = analyse_ptc(pts, config, dark_var0_dn2=var0)
        rows.append(_metric_row(ana_ptc, sp))
        analyses.append(ana_ptc)

    if not mono:
        # the whole-sensor flat mixes colours of different QE: PRNU of a CFA sensor is the
        # quadratic mean of its four channels' PRNU (docs/metrics.md)
        for key in ("prnu_pct", "prnu_uncorrected_pct"):
            vals = np.array([float(r[key]) for r in rows[1:]])  # type: ignore[arg-type]
            rows[0][key] = float(np.sqrt(np.mean(vals**2)))
    ident = _identity(manifest)
    counts = defects.counts()
    per_site_defects = defects.class_counts[:, 1:9].sum(axis=1)
    module = dict(ident)
    module.update(rows[0])
    for name in DEFECT_CODES:
        if name != "blemish":
            module[f"{name}_pixels"] = counts[name]
    module["defect_pixels_total"] = int(per_site_defects.sum())
    module["cluster_count"] = defects.cluster_count
    module["largest_cluster_px"] = defects.largest_cluster_px
    module["bad_columns"] = len(defects.bad_columns)
    module["bad_rows"] = len(defects.bad_rows)
    module["blemish_count"] = len(defects.blemishes)
    module["largest_blemish_area_px"] = max((b.area_px for b in defects.blemishes), default=0)
    module["shading_corner_ratio"] = shading.corner_ratio if shading else math.nan
    module["shading_corner_min_ratio"] = shading.corner_min_ratio if shading else math.nan
    module["shading_center_x_px"] = shading.center_x_px if shading else math.nan
    module["shading_center_y_px"] = shading.center_y_px if shading else math.nan
    module["shading_center_offset_px"] = shading.center_offset_px if shading else math.nan
    module["dark_spatial_frames"] = dark_sp.n_frames
    module["flat_spatial_frames"] = flat_sp.n_frames if flat_sp else 0
    module["spatial_frames_ok"] = bool(
        dark_sp.n_frames >= config.min_spatial_frames and flat_sp is not None and flat_sp.n_frames >= config.min_spatial_frames
    )
    module["n_frames"] = len(manifest.frames)
    module["n_operating_points"] = len(points)

    channel_rows: list[dict[str, object]] = []
    if not mono:
        for s, row in enumerate(rows[1:]):
            cr: dict[str, object] = {
                "session_id": manifest.session_id,
                "module_id": manifest.module_id,
                "captured_at": ident["captured_at"],
                "channel": names[s],
            }
            cr.update(row)
            cr["defect_pixels_total"] = int(per_site_defects[s])
            channel_rows.append(cr)

    # defect rows (raster order), then one row per blemish
    ys, xs, codes = defects.y, defects.x, defects.codes
    cls_names = [DEFECT_NAMES[int(c)] for c in codes]
    site_name = np.array(names)[2 * (ys % 2) + xs % 2] if ys.size else np.array([], dtype=str)
    ddf = pl.DataFrame(
        {
            "session_id": [manifest.session_id] * len(xs),
            "module_id": [manifest.module_id] * len(xs),
            "x": xs.astype(np.int32),
            "y": ys.astype(np.int32),
            "channel": site_name.tolist(),
            "defect_class": cls_names,
            "value": defects.values.astype(np.float64),
            "value_unit": [defects.units[c] for c in cls_names],
            "captured_at": [ident["captured_at"]] * len(xs),
        },
        schema=DEFECT_SCHEMA,
    )
    if defects.blemishes:
        bx = [int(round(b.x)) for b in defects.blemishes]
        by = [int(round(b.y)) for b in defects.blemishes]
        bdf = pl.DataFrame(
            {
                "session_id": [manifest.session_id] * len(bx),
                "module_id": [manifest.module_id] * len(bx),
                "x": bx,
                "y": by,
                "channel": [names[2 * (y % 2) + x % 2] for x, y in zip(bx, by, strict=True)],
                "defect_class": ["blemish"] * len(bx),
                "value": [b.depth for b in defects.blemishes],
                "value_unit": [VALUE_UNITS["blemish"]] * len(bx),
                "captured_at": [ident["captured_at"]] * len(bx),
            },
            schema=DEFECT_SCHEMA,
        )
        ddf = pl.concat([ddf, bdf])

    # PTC table (whole sensor)
    whole = analyses[0]
    pts_all = ptc_points(result, [0, 1, 2, 3])
    used = np.zeros(pts_all.flat_mean_dn.size, bool)
    used[whole.order] = whole.used_in_fit
    mu_dark_flat = np.empty(pts_all.flat_mean_dn.size)
    mu_dark_flat[whole.order] = whole.mean_dark_dn
    n_dark = pts_all.dark_mean_dn.size
    n_flat = pts_all.flat_mean_dn.size
    ptc = pl.DataFrame(
        {
            "session_id": [manifest.session_id] * (n_dark + n_flat),
            "kind": ["dark"] * n_dark + ["flat"] * n_flat,
            "exposure_s": np.concatenate([pts_all.dark_exposure_s, pts_all.flat_exposure_s]),
            "photons_per_pixel": np.concatenate([np.zeros(n_dark), pts_all.flat_photons]),
            "n_frames": np.concatenate([pts_all.dark_n_frames, pts_all.flat_n_frames]).astype(np.int64),
            "first_frame": np.array(
                [points[i].indices[0] for i in np.concatenate([pts_all.dark_index, pts_all.flat_index])], np.int64
            ),
            "mean_dn": np.concatenate([pts_all.dark_mean_dn, pts_all.flat_mean_dn]),
            "mean_dark_dn": np.concatenate([pts_all.dark_mean_dn, mu_dark_flat]),
            "temporal_var_dn2": np.concatenate([pts_all.dark_var_dn2, pts_all.flat_var_dn2]),
            "used_in_fit": np.concatenate([np.zeros(n_dark, bool), used]),
        }
    )
    return module, channel_rows, ddf, ptc


MAP_UNITS = {**MAP_UNITS_PASS, **MAP_UNITS_ANALYSIS}


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _temp_name(maps_out: Path) -> Path:
    return maps_out.parent / f".{maps_out.name}.{uuid.uuid4().hex}.tmp"


def _publish(tmp: Path, maps_out: Path, group: Any, attrs: dict[str, Any], defects: pl.DataFrame, ptc: pl.DataFrame) -> None:
    """Add the table rows and attrs (``complete`` last) to the group at ``tmp``, rename it to ``maps_out``."""
    # one parquet file per table in the folder of an empty subgroup: listing the group's members
    # (arrays(), load_maps) does not look inside it; a recursive walk (members(max_depth=None))
    # warns that the files are not zarr. A zarr array per column cost ~70 array creations,
    # ~0.14 s, per session
    group.create_group(ROWS_GROUP)
    defects.drop("session_id", "module_id", "captured_at").write_parquet(tmp / ROWS_GROUP / DEFECTS_FILE)
    ptc.drop("session_id").write_parquet(tmp / ROWS_GROUP / PTC_FILE)
    meta: dict[str, Any] = {k: _jsonable(v) for k, v in attrs.items()}
    group.attrs.update(meta | {"complete": True})
    old = None
    if maps_out.exists():
        old = maps_out.parent / f".{maps_out.name}.{uuid.uuid4().hex}.old"
        os.replace(maps_out, old)
    os.replace(tmp, maps_out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def characterize_frames(
    frames: ArrayLike3D,
    manifest: Manifest,
    maps_out: Path | None,
    config: CharacterizationConfig = CharacterizationConfig(),
    *,
    source_attrs: dict[str, Any] | None = None,
) -> SessionCharacterization:
    """Characterize one session from its frames ((n, H, W) uint16, manifest order).

    Writes the maps group to ``maps_out`` (atomically) unless it is None. ``source_attrs`` (e.g.
    ``content_hash`` of the captures group) are copied into the maps group's attrs.

    With ``maps_out`` the maps are written band by band into the group (under its temporary
    name) and read back band by band by the analysis sweeps, so peak memory is bounded by the
    band (``map_band_rows`` x W), not the sensor; without it they are in-memory (H, W) arrays and
    every sweep is one band. See :mod:`sensorfleet.emva.analysis` for the memory model.
    """
    import time

    import zarr

    t0 = time.perf_counter()
    h, w = manifest.sensor.height, manifest.sensor.width
    tmp: Path | None = None
    group: Any = None
    try:
        store: MemoryMapStore | ZarrMapStore
        if maps_out is None:
            store = MemoryMapStore(h, w)
        else:
            maps_out = Path(maps_out)
            maps_out.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp_name(maps_out)
            group = zarr.open_group(str(tmp), mode="w")
            store = ZarrMapStore(group, tmp, h, w, _map_band_rows(frames, config))
        ana = analyse(frames, manifest, config, store)
        result = ana.result
        module, channel_rows, ddf, ptc = _analyse(ana, manifest, config)
        t2 = time.perf_counter()
        timings = {
            "pass_s": result.timings.get("pass_s", 0.0),
            "pass_read_wait_s": result.read_s,
            "pass_compute_s": result.compute_s,
            "analysis_s": t2 - t0 - result.timings.get("pass_s", 0.0),
            "bytes_in": float(result.bytes_in),
            **{f"step_{k}_s": v for k, v in ana.timings.items() if k != "pass"},
        }
        if maps_out is not None and tmp is not None and isinstance(store, ZarrMapStore):
            store.drop_scratch()
            attrs: dict[str, Any] = {
                "maps_format_version": MAPS_FORMAT_VERSION,
                "session_id": manifest.session_id,
                "module_id": manifest.module_id,
                "capture_date": manifest.capture_date,
                "captured_at": manifest.captured_at.astimezone(UTC).isoformat(),
                "written_at": datetime.now(UTC).isoformat(),
                "config": _config_dict(config),
                "defect_codes": DEFECT_CODES,
                "module_stats": {k: _jsonable(v) for k, v in module.items()},
                "channel_stats": [{k: _jsonable(v) for k, v in r.items()} for r in channel_rows],
            }
            if source_attrs:
                attrs.update({f"source_{k}": v for k, v in source_attrs.items()})
            _publish(tmp, maps_out, group, attrs, ddf, ptc)
            timings["write_s"] = time.perf_counter() - t2
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SessionCharacterization(
        module_stats=module,
        channel_stats=channel_rows,
        defects=ddf,
        ptc=ptc,
        fit_r2=float(module["ptc_fit_r2"]),  # type: ignore[arg-type]
        timings=timings,
    )


def _map_band_rows(frames: ArrayLike3D, config: CharacterizationConfig) -> int:
    """Rows per band of the maps store: ``map_band_rows``, rounded to a multiple of the frames'
    zarr chunk height when one divides the other (the pass's bands then fill whole map chunks)."""
    rows = max(1, config.map_band_rows)
    chunks = getattr(frames, "chunks", None)
    if chunks is not None and len(chunks) == 3 and rows % int(chunks[1]) and int(chunks[1]) % rows:
        rows = -(-rows // int(chunks[1])) * int(chunks[1])
    return rows


def _config_dict(config: CharacterizationConfig) -> dict[str, Any]:
    return asdict(config)


def open_captures(captures_zarr: Path) -> tuple[Any, Manifest, dict[str, Any]]:
    """(frames reader ``(n, H, W)`` uint16 DN, manifest, attrs) of a complete captures group; clear
    errors otherwise."""
    import zarr

    path = Path(captures_zarr)
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a missing/invalid group
        raise FileNotFoundError(f"{path}: not a readable zarr group ({exc})") from None
    attrs = dict(group.attrs)
    if attrs.get("complete") is not True:
        raise ValueError(f"{path}: captures group is not complete (attrs['complete'] = {attrs.get('complete')!r}, expected true)")
    if "manifest" not in attrs:
        raise ValueError(f"{path}: captures group has no 'manifest' attribute")
    manifest = Manifest.model_validate(attrs["manifest"])
    frames = group.get("frames")
    if not isinstance(frames, zarr.Array):
        raise ValueError(f"{path}: captures group has no 'frames' array")
    from sensorfleet.ingest.store import FrameReader

    # chunk files read and decompressed straight into the pass's block buffers (zarr's async
    # read path costs as much CPU again as the decompression; docs/storage.md)
    # strict (a missing chunk is an error) for groups ingest wrote: it writes every chunk
    return FrameReader(frames, strict="sensorfleet_version" in attrs), manifest, attrs


def characterize_session(
    captures_zarr: Path, maps_out: Path, config: CharacterizationConfig = CharacterizationConfig()
) -> SessionCharacterization:
    """Characterize the captures group at ``captures_zarr``; write its maps group to ``maps_out``."""
    frames, manifest, attrs = open_captures(captures_zarr)
    source = {"content_hash": attrs.get("content_hash"), "path": str(captures_zarr)}
    return characterize_frames(frames, manifest, maps_out, config, source_attrs=source)


def _restore(value: object, key: str) -> object:
    if value is None:
        return math.nan if key not in ("station_id", "lot_id", "wafer_id") else None
    if key == "captured_at" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def load_session_rows(maps_group: Path) -> SessionCharacterization:
    """The table rows stored in a maps group (used when a day is re-run and a session is skipped)."""
    from sensorfleet.ingest.store import read_group_attrs

    attrs = read_group_attrs(Path(maps_group)) or {}
    module = {k: _restore(v, k) for k, v in attrs["module_stats"].items()}
    channels = [{k: _restore(v, k) for k, v in r.items()} for r in attrs["channel_stats"]]
    ident = {
        "session_id": pl.lit(attrs["session_id"]),
        "module_id": pl.lit(attrs["module_id"]),
        "captured_at": pl.lit(datetime.fromisoformat(attrs["captured_at"])).dt.convert_time_zone("UTC"),
    }
    folder = Path(maps_group) / ROWS_GROUP
    defects = pl.read_parquet(folder / DEFECTS_FILE).with_columns(**ident).select(list(DEFECT_SCHEMA)).cast(DEFECT_SCHEMA)  # type: ignore[arg-type]
    ptc = pl.read_parquet(folder / PTC_FILE).with_columns(session_id=pl.lit(attrs["session_id"]))
    return SessionCharacterization(module, channels, defects, ptc, float(module["ptc_fit_r2"]))  # type: ignore[arg-type]


def load_maps(maps_group: Path) -> dict[str, np.ndarray]:
    """All (H, W) arrays of a maps group, by name."""
    import zarr

    group = zarr.open_group(str(maps_group), mode="r")
    return {name: np.asarray(arr[...]) for name, arr in group.arrays()}


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


def _worker_init(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, threads))


def _characterize_one(captures: str, maps_out: str, config: CharacterizationConfig) -> tuple[str, str | None]:
    try:
        characterize_session(Path(captures), Path(maps_out), config)
        return captures, None
    except Exception as exc:  # one bad session never stops the day
        return captures, f"{type(exc).__name__}: {exc}"


def _rows_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, infer_schema_length=None)


def _write_partition(tables_root: Path, table: str, day: str, df: pl.DataFrame) -> Path:
    from sensorfleet.tables import write_partition

    return write_partition(tables_root, table, day, df)


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
    """
    from sensorfleet.ingest.store import read_group_attrs

    sweep_stale_temporaries(paths.maps / day)  # maps groups a killed run left unpublished
    folder = paths.captures / day
    groups = sorted(
        p for p in (folder.iterdir() if folder.is_dir() else [])
        if p.name.endswith(".zarr") and not p.name.startswith(".") and (read_group_attrs(p) or {}).get("complete") is True
    )
    todo: list[tuple[Path, Path]] = []
    skipped: list[str] = []
    maps: dict[str, Path] = {}
    for g in groups:
        sid = g.name[: -len(".zarr")]
        out = paths.maps / day / g.name
        maps[sid] = out
        src = (read_group_attrs(g) or {}).get("content_hash")
        have = read_group_attrs(out) if out.exists() else None
        if (have and have.get("complete") is True and src is not None and have.get("source_content_hash") == src
                and have.get("maps_format_version") == MAPS_FORMAT_VERSION):  # an older layout is recomputed
            skipped.append(sid)
        else:
            todo.append((g, out))
    failed: dict[str, str] = {}
    characterized: list[str] = []
    total = len(groups)
    done = len(skipped)
    if todo:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        if workers <= 1:
            _worker_init(os.cpu_count() or 1)
            outcomes = (_characterize_one(str(g), str(o), config) for g, o in todo)
            for captures, err in outcomes:
                sid = Path(captures).name[: -len(".zarr")]
                done += 1
                (failed.__setitem__(sid, err) if err else characterized.append(sid))
                if progress:
                    progress(done, total, sid)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
                futures = [pool.submit(_characterize_one, str(g), str(o), config) for g, o in todo]
                for fut in as_completed(futures):
                    captures, err = fut.result()
                    sid = Path(captures).name[: -len(".zarr")]
                    done += 1
                    (failed.__setitem__(sid, err) if err else characterized.append(sid))
                    if progress:
                        progress(done, total, sid)

    module_rows: list[dict[str, object]] = []
    channel_rows: list[dict[str, object]] = []
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
    module_df = _rows_frame(module_rows)
    channel_df = _rows_frame(channel_rows)
    if defect_frames:
        defects_df = pl.concat(defect_frames, how="vertical_relaxed")
    else:
        defects_df = pl.DataFrame(schema=DEFECT_SCHEMA | {"written_at": pl.Datetime("us", "UTC")})
    tables = {
        "module_stats": _write_partition(paths.tables, "module_stats", day, module_df),
        "module_channel_stats": _write_partition(paths.tables, "module_channel_stats", day, channel_df),
        "pixel_defects": _write_partition(paths.tables, "pixel_defects", day, defects_df),
    }
    worst = worst_session(module_df)
    return DayCharacterizationReport(
        day=day,
        characterized=sorted(characterized),
        skipped=sorted(skipped),
        failed=failed,
        module_stats=module_df,
        channel_stats=channel_df,
        defect_rows=defects_df.height,
        tables=tables,
        maps=maps,
        worst_session_id=worst,
        worst_ptc=ptcs.get(worst) if worst else None,
    )
