"""Calibration of the metrics' standard uncertainties on a synthetic fleet.

Each module of a synthetic fleet (:mod:`sensorfleet.synth`: the station's capture plan, the
fleet's spread of parameters and defects) is rendered in memory and characterized; for every
metric whose realised value the module's maps define (:func:`sensorfleet.synth.realised.realised_metrics`)
the z-score ``(measured - realised) / u`` is taken, on the module row and on each CFA channel's
row. Calibrated: per metric, the z-scores' standard deviation in [0.8, 1.25] and mean within
+-0.3 (docs/metrics.md, "Uncertainty").

Run: ``python -m benchmarks.bench_uncertainty [--quick] [--modules N] [--width W --height H]``;
writes ``benchmarks/results/uncertainty.json`` (not with ``--quick``) and prints the table that
docs/metrics.md shows.
"""

from __future__ import annotations

import argparse
import math
import time

import polars as pl

from benchmarks._common import machine_info, print_table, write_results
from sensorfleet.emva.analysis import CLASSES, analyse
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.mapstore import MemoryMapStore
from sensorfleet.emva.rows import table_rows
from sensorfleet.synth.fleet import FleetConfig, plan_fleet
from sensorfleet.synth.realised import realised_metrics
from sensorfleet.synth.session import SessionIdentity, simulate_session
from sensorfleet.synth.writer import capture_plan_for

STD_BOUNDS = (0.8, 1.25)
MEAN_BOUND = 0.3
def module_z_scores(config: FleetConfig, index: int, characterization: CharacterizationConfig) -> list[dict[str, object]]:
    """One row per (group, metric) of module ``index`` of the fleet: measured, realised, u, z."""
    module = plan_fleet(config)[index]
    plan = capture_plan_for(config)
    identity = SessionIdentity(session_id=module.session_id, module_id=module.module_id)
    frames, manifest, maps = simulate_session(module.params, plan, (config.seed, index), module.session_id, identity)
    store = MemoryMapStore(module.params.height, module.params.width)
    analysis = analyse(frames, manifest, characterization, store)
    rows = table_rows(analysis, manifest, characterization)
    good = store.read(CLASSES, 0, module.params.height) == 0
    dark = analysis.result.points[analysis.result.dark_spatial]
    truths = realised_metrics(module.params, maps, good, dark.exposure_s)
    measured = [rows.module_stats] + rows.channel_stats
    out: list[dict[str, object]] = []
    for group, (row, truth) in enumerate(zip(measured, truths, strict=True)):
        name = "module" if group == 0 else str(row["channel"])
        for metric, true in truth.items():
            value, u_or_none = float(row[metric]), row[f"{metric}_u"]  # type: ignore[arg-type]
            u = math.nan if u_or_none is None else float(u_or_none)  # type: ignore[arg-type]
            z = (value - true) / u if u > 0 and math.isfinite(u) else math.nan
            out.append({"session_id": module.session_id, "group": name, "metric": metric, "measured": value,
                        "realised": true, "u": u, "z": z})
    return out


def fleet_z_scores(modules: int, width: int, height: int, seed: int = 11, cfa: str = "RGGB") -> pl.DataFrame:
    """z-scores of every module of a fleet (healthy and faulty modules, the fleet's defects)."""
    config = FleetConfig(modules=modules, seed=seed, width=width, height=height, pixel_format="npy", cfa=cfa,
                         fault_fraction=0.2, workers=1)
    characterization = CharacterizationConfig()
    rows: list[dict[str, object]] = []
    for index in range(modules):
        rows += module_z_scores(config, index, characterization)
    return pl.DataFrame(rows)


def calibration_table(z: pl.DataFrame) -> pl.DataFrame:
    """Per metric and row kind (module / channel): n, mean and std of the z-scores, and whether
    they are within the bounds."""
    kind = pl.when(pl.col("group") == "module").then(pl.lit("module")).otherwise(pl.lit("channel"))
    table = (z.filter(pl.col("z").is_finite()).with_columns(kind.alias("rows"))
             .group_by("metric", "rows", maintain_order=True)
             .agg(pl.len().alias("n"), pl.col("z").mean().alias("z_mean"), pl.col("z").std().alias("z_std"),
                  (pl.col("u") / pl.col("realised").abs()).median().alias("u_rel_median")))
    return table.with_columns(
        ((pl.col("z_std") >= STD_BOUNDS[0]) & (pl.col("z_std") <= STD_BOUNDS[1])
         & (pl.col("z_mean").abs() <= MEAN_BOUND)).alias("calibrated"))


def markdown_table(table: pl.DataFrame) -> str:
    """The calibration table as docs/metrics.md shows it: one line per metric, module rows then
    channel rows (n, mean and std of z)."""
    lines = ["| metric | median u / value | module rows: n | mean z | std z | channel rows: n | mean z | std z | calibrated |",
             "|---|---|---|---|---|---|---|---|---|"]
    for metric in table["metric"].unique(maintain_order=True):
        first = table.filter(pl.col("metric") == metric).row(0, named=True)
        cells: list[str] = [f"{first['u_rel_median']:.2g}"]
        ok = True
        for kind in ("module", "channel"):
            part = table.filter((pl.col("metric") == metric) & (pl.col("rows") == kind))
            if part.height:
                r = part.row(0, named=True)
                cells += [str(r["n"]), f"{r['z_mean']:+.2f}", f"{r['z_std']:.2f}"]
                ok = ok and bool(r["calibrated"])
            else:
                cells += ["", "", ""]
        lines.append(f"| `{metric}` | " + " | ".join(cells) + f" | {'yes' if ok else '**no**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="24 modules of 160 x 120 (too few to judge: exit 0); write no result file")
    ap.add_argument("--modules", type=int, default=120)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cfa", default="RGGB", help="RGGB (default), another Bayer order, or mono")
    args = ap.parse_args(argv)
    if args.quick:
        args = replace_args(args, modules=24, width=160, height=120)
    start = time.perf_counter()
    z = fleet_z_scores(args.modules, args.width, args.height, args.seed, args.cfa)
    table = calibration_table(z)
    seconds = time.perf_counter() - start
    print_table(table.to_dicts(), ["metric", "rows", "n", "z_mean", "z_std", "u_rel_median", "calibrated"])
    print(f"{args.modules} modules of {args.width} x {args.height} in {seconds:.0f} s\n")
    print(markdown_table(table))
    if not args.quick:
        write_results("uncertainty" if args.cfa == "RGGB" else f"uncertainty_{args.cfa}", {"modules": args.modules, "width": args.width, "height": args.height,
                                      "seed": args.seed, "cfa": args.cfa, "seconds": seconds, "machine": machine_info(),
                                      "table": table.to_dicts()})
    if args.quick:  # 24 modules only check that it runs: a mean of 24 z-scores scatters by 0.2
        return 0
    return 0 if bool(table["calibrated"].all()) else 1


def replace_args(args: argparse.Namespace, **changes: object) -> argparse.Namespace:
    """A copy of ``args`` with ``changes``."""
    return argparse.Namespace(**(vars(args) | changes))


if __name__ == "__main__":
    raise SystemExit(main())
