"""Write a synthetic fleet in the landing contract, plus final-test results and ground truth.

Each session is rendered frame by frame into a hidden folder ``<landing>/.<session_id>.partial``
and renamed into place once its manifest is written, so a reader never sees half a session.
Modules are independent (seeded from ``(seed, module index)``) and run in a process pool; the
bytes written do not depend on the number of workers.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sensorfleet.manifest import MANIFEST_NAME, parse_manifest
from sensorfleet.parallel import Outcome, available_cores, run_each
from sensorfleet.rawio import write_frame
from sensorfleet.synth.fleet import FleetConfig, ModulePlan, plan_fleet
from sensorfleet.synth.lens import edge_truth, module_truth
from sensorfleet.synth.physics import build_maps, maps_for_frame, module_rng, render_frame
from sensorfleet.synth.plan import CapturePlan, build_plan
from sensorfleet.synth.session import SessionIdentity, session_manifest
from sensorfleet.synth.stations import STATION_EVENTS_TRUTH, events_frame

FINAL_TEST_DIR = "final_test"
SFR_TRUTH = "sfr_edges.parquet"
"""Truth of every chart edge of a fleet with edge charts: position, field, PSF sigma, true MTF50."""


@dataclass(frozen=True)
class FleetSummary:
    """What :func:`generate_fleet` wrote."""

    modules: int
    frames: int
    bytes_written: int
    passed: int
    fault_counts: dict[str, int]
    fail_bins: dict[str, int]
    landing: Path
    truth: Path
    final_test: Path
    wall_s: float
    session_ids: list[str] = field(repr=False)

    @property
    def yield_fraction(self) -> float:
        return self.passed / self.modules


@dataclass
class _SessionResult:
    index: int
    frames: int
    nbytes: int
    summary: dict[str, float]
    defects: list[dict[str, Any]]
    edges: list[dict[str, Any]] = field(default_factory=list)  # chart edges' truth (fleets with charts)
    optics: dict[str, float] = field(default_factory=dict)  # the module's true optics (fleets with charts)


def capture_plan_for(config: FleetConfig) -> CapturePlan:
    """The station's capture plan for a fleet configuration."""
    return build_plan(ptc_levels=config.ptc_levels, frames_per_point=config.frames_per_point,
                      averaging_frames=config.averaging_frames, ptc_exposure_s=config.ptc_exposure_s,
                      dark_exposures_s=config.dark_exposures_s,
                      chart_frames=config.chart_frames if config.edge_charts else 0)


def _identity(module: ModulePlan) -> SessionIdentity:
    return SessionIdentity(session_id=module.session_id, module_id=module.module_id, station_id=module.station_id,
                           captured_at=module.captured_at, lot_id=module.lot_id, wafer_id=module.wafer_id,
                           die_x=module.die_x, die_y=module.die_y)


def write_session(config: FleetConfig, module: ModulePlan, landing: Path) -> _SessionResult:
    """Render and write one module's session; returns its truth (maps summary, defects)."""
    params = module.params
    capture = capture_plan_for(config)
    rng, key = module_rng((config.seed, module.index))
    maps = build_maps(params, rng, capture.ptc_exposure_s)
    final = landing / module.session_id
    tmp = landing / f".{module.session_id}.partial"
    if tmp.exists():  # a leftover of an interrupted run of ours: never visible as a session
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        buf = np.empty((params.height, params.width), dtype=np.uint16)
        manifest = session_manifest(params, capture, _identity(module), config.pixel_format)
        nbytes = 0
        for i, (frame, entry) in enumerate(zip(capture.frames, manifest["frames"], strict=True)):
            render_frame(params, maps_for_frame(params, maps, frame), frame, i, key, buf)
            nbytes += write_frame(tmp / entry["file"], buf, config.pixel_format)
        text = json.dumps(manifest, indent=1)
        parse_manifest(text, tmp / MANIFEST_NAME)  # the contract holds for everything we write
        (tmp / MANIFEST_NAME).write_text(text)
        if final.exists():
            raise FileExistsError(f"{final}: session folder appeared while writing; not replaced")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    defects = [{"session_id": module.session_id, "module_id": module.module_id, "x": d.x, "y": d.y,
                "class": d.defect_class, "magnitude": d.magnitude, "unit": d.unit, "cluster_id": d.cluster_id,
                "radius_px": d.radius_px} for d in maps.defects]
    edges, optics = _lens_truth(module)
    return _SessionResult(module.index, len(capture.frames), nbytes + len(text), maps.summary, defects, edges, optics)


def _lens_truth(module: ModulePlan) -> tuple[list[dict[str, Any]], dict[str, float]]:
    lens = module.params.lens
    if lens is None:
        return [], {}
    ids = {"session_id": module.session_id, "module_id": module.module_id}
    return ([ids | row for row in edge_truth(module.params, lens)],
            {f"lens_{k}": v for k, v in asdict(lens).items()} | module_truth(module.params, lens))


def _truth_row(module: ModulePlan, result: _SessionResult, seed: int) -> dict[str, Any]:
    p = module.params
    d = p.defects
    counts: dict[str, int] = {}
    for row in result.defects:
        counts[row["class"]] = counts.get(row["class"], 0) + 1
    clusters = {row["cluster_id"] for row in result.defects if row["cluster_id"] is not None}
    return {
        "module_id": module.module_id, "session_id": module.session_id, "fleet_seed": seed,
        "module_index": module.index,
        "lot": module.lot_id, "wafer": module.wafer_id, "die_x": module.die_x, "die_y": module.die_y,
        "die_radius_frac": module.die_radius_frac, "station": module.station_id,
        "captured_at": module.captured_at, "temperature_c": p.temperature_c, "fault_class": module.fault_class,
        "width": p.width, "height": p.height, "bit_depth": p.bit_depth, "cfa_pattern": p.cfa_pattern,
        "system_gain_dn_per_e": p.system_gain_dn_per_e,
        "quantum_efficiency_R": p.quantum_efficiency("R"), "quantum_efficiency_G": p.quantum_efficiency("G"),
        "quantum_efficiency_B": p.quantum_efficiency("B"), "quantum_efficiency": p.mean_quantum_efficiency,
        "read_noise_e": p.read_noise_e, "dark_current_e_per_s": p.dark_current_e_per_s,
        "dark_current_25c_e_per_s": p.dark_current_25c_e_per_s, "dark_current_doubling_c": p.dark_current_doubling_c,
        "dark_offset_dn": p.black_level_dn, "full_well_e": p.full_well_e, "saturation_dn": p.saturation_dn,
        "dsnu_e": result.summary["dsnu_e"], "dsnu_offset_e": p.dsnu_offset_e,
        "row_fpn_e": result.summary["row_fpn_e"], "column_fpn_e": result.summary["column_fpn_e"],
        "prnu_pct": result.summary["prnu_pixel_pct"], "prnu1288_pct": result.summary["prnu1288_pct"],
        "dark_current_spread_pct": result.summary["dark_current_spread_pct"],
        "nonlinearity_knee_frac": p.nonlinearity_knee_frac, "nonlinearity_loss_frac": p.nonlinearity_loss_frac,
        "shading_corner_rel": p.shading_corner_rel, "shading_corner_min_rel": result.summary["shading_corner_min_rel"],
        "shading_center_x_px": result.summary["shading_center_x_px"],
        "shading_center_y_px": result.summary["shading_center_y_px"], "pixel_pitch_um": p.pixel_pitch_um,
        "n_hot": counts.get("hot", 0), "n_warm": counts.get("warm", 0), "n_dead": counts.get("dead", 0),
        "n_stuck": counts.get("stuck", 0), "n_noisy": counts.get("noisy", 0), "n_clusters": len(clusters),
        "n_cluster_pixels": sum(row["cluster_id"] is not None for row in result.defects),
        "n_bad_columns": counts.get("bad_column", 0) // max(p.height, 1),
        "n_bad_rows": counts.get("bad_row", 0) // max(p.width, 1), "n_blemishes": counts.get("blemish", 0),
        "n_planned_point_defects": d.total_point_defects, "latent_weakness": module.latent_weakness,
        "tested_at": module.tested_at, "passed": module.passed, "fail_bin": module.fail_bin,
    } | result.optics


def _write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def _append_truth(frame: pl.DataFrame, path: Path) -> None:
    if path.exists():
        frame = pl.concat([pl.read_parquet(path), frame], how="diagonal_relaxed")
    _write_parquet_atomic(frame, path)


def generate_fleet(config: FleetConfig, landing: Path, truth: Path,
                   progress: Callable[[int, int], None] | None = None) -> FleetSummary:
    """Write ``config.modules`` capture sessions under ``landing``, final-test results under
    ``landing/final_test/final_test_seed<seed>.parquet`` and the truth tables
    ``truth/modules.parquet`` and ``truth/defects.parquet`` (appended to when they exist), plus
    ``truth/station_events.parquet`` when the fleet has station events.

    Refuses (FileExistsError naming the paths) when a session folder or the final-test file of this
    fleet already exists. ``progress(done, total)`` is called after each module.
    """
    start = time.perf_counter()
    landing, truth = Path(landing), Path(truth)
    plans = plan_fleet(config)
    final_test = landing / FINAL_TEST_DIR / f"final_test_seed{config.seed}.parquet"
    clashes = [str(landing / p.session_id) for p in plans if (landing / p.session_id).exists()]
    if final_test.exists():
        clashes.insert(0, str(final_test))
    if clashes:
        raise FileExistsError(f"refusing to overwrite {len(clashes)} existing path(s) of this fleet, e.g. "
                              f"{', '.join(clashes[:3])}; choose another --seed or an empty landing folder")
    landing.mkdir(parents=True, exist_ok=True)
    results: dict[int, _SessionResult] = {}
    workers = config.workers if config.workers is not None else available_cores()
    workers = max(1, min(workers, len(plans)))
    if progress:
        progress(0, len(plans))
    def done(outcome: Outcome[ModulePlan, _SessionResult]) -> None:
        assert outcome.value is not None  # stop_on_error: an error is raised, never passed here
        results[outcome.value.index] = outcome.value
        if progress:
            progress(len(results), len(plans))

    # sessions written before an error stay complete; the error is raised
    run_each(partial(write_session, config, landing=landing), plans, workers=workers, on_done=done,
             stop_on_error=True)

    rows = [_truth_row(m, results[m.index], config.seed) for m in plans]
    if config.station_events:  # columns of fleets with events only: the others keep their bytes
        rows = [row | {"station_light_factor": m.params.light_source_factor,
                       "station_temperature_excess_c": m.params.temperature_excess_c} for row, m in zip(rows, plans, strict=True)]
    defects = [d for m in plans for d in results[m.index].defects]
    modules_df = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("captured_at", "tested_at").dt.convert_time_zone("UTC"))
    defect_schema = {"session_id": pl.String, "module_id": pl.String, "x": pl.Int32, "y": pl.Int32,
                     "class": pl.String, "magnitude": pl.Float64, "unit": pl.String, "cluster_id": pl.Int32,
                     "radius_px": pl.Float64}
    defects_df = pl.DataFrame(defects, schema=defect_schema)
    final_df = pl.DataFrame({
        "module_id": [m.module_id for m in plans],
        "tested_at": [m.tested_at for m in plans],
        "passed": [m.passed for m in plans],
        "fail_bin": [m.fail_bin for m in plans],
    }, schema={"module_id": pl.String, "tested_at": pl.Datetime("us", "UTC"), "passed": pl.Boolean,
               "fail_bin": pl.String})
    _write_parquet_atomic(final_df, final_test)
    _append_truth(modules_df, truth / "modules.parquet")
    _append_truth(defects_df, truth / "defects.parquet")
    if config.station_events:
        _append_truth(events_frame(config.station_events, config.seed), truth / STATION_EVENTS_TRUTH)
    if config.edge_charts:
        edges = [e for m in plans for e in results[m.index].edges]
        _append_truth(pl.DataFrame(edges, infer_schema_length=None), truth / SFR_TRUTH)

    faults: dict[str, int] = {}
    bins: dict[str, int] = {}
    for m in plans:
        if m.fault_class:
            faults[m.fault_class] = faults.get(m.fault_class, 0) + 1
        if m.fail_bin:
            bins[m.fail_bin] = bins.get(m.fail_bin, 0) + 1
    return FleetSummary(
        modules=len(plans), frames=sum(r.frames for r in results.values()),
        bytes_written=sum(r.nbytes for r in results.values()), passed=sum(m.passed for m in plans),
        fault_counts=faults, fail_bins=bins, landing=landing, truth=truth, final_test=final_test,
        wall_s=time.perf_counter() - start, session_ids=[m.session_id for m in plans],
    )
