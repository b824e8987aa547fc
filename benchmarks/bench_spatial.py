"""Spatial autoencoder against the synthetic truth: ROC-AUC per fault class on held-out lots.

A fleet is generated (seed 11, 128 x 96 RGGB, fault fraction 0.3 so each of the six fault classes
has enough modules in the held-out lots), ingested and characterized; the model trains on the
modules of the earlier lots that passed final test (what a line would train on: its passed
modules) and scores every module of the held-out last lots. Reported: training time, the AUC of
each fault class against the fault-free held-out modules, the alarm rate per class at the
model's threshold, and the false-alarm rate on fault-free held-out modules.

``--root DIR`` instead trains (on every session) on an existing characterized root, e.g. the
24-module 640 x 480 demo fleet (`make demo`), and reports the load and training times only.

Run: ``python -m benchmarks.bench_spatial [--quick] [--modules N] [--root DIR]``. The full run
(200 modules) writes ``benchmarks/results/spatial.json``; ``--quick`` (48 modules, 1 held-out
lot, 40 epochs) writes nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks._common import machine_info, peak_rss_bytes, print_table, write_results


def build_fleet(base: Path, modules: int, width: int, height: int, workers: int) -> Any:
    from sensorfleet.config import Paths
    from sensorfleet.emva import characterize_day
    from sensorfleet.ingest import ingest_day
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    paths = Paths(root=base / "data", landing=base / "landing")
    config = FleetConfig(modules=modules, seed=11, width=width, height=height, fault_fraction=0.3,
                         span_days=max(1.0, modules / 50), workers=workers,
                         start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    generate_fleet(config, paths.landing, base / "truth")
    days = sorted({p.name.split("-")[-1][:8] for p in paths.landing.iterdir() if p.name.startswith("CM-")})
    for compact in days:
        day = f"{compact[:4]}-{compact[4:6]}-{compact[6:]}"
        ingest_day(paths, day, workers=workers)
        characterize_day(paths, day, workers=workers)
    return paths


def main(argv: list[str] | None = None) -> int:
    from models.spatial import (
        TrainingConfig,
        auc_by_fault_class,
        list_sessions,
        score_sessions,
        split_lots,
        train_spatial,
    )
    from sensorfleet.config import Paths

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="48 modules, 40 epochs; write no result file")
    ap.add_argument("--modules", type=int, default=None, help="fleet size (default 200, quick 48)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--root", type=Path, default=None, help="train on this characterized root instead (timing only)")
    args = ap.parse_args(argv)
    config = TrainingConfig(epochs=40) if args.quick else TrainingConfig()

    if args.root is not None:
        paths = Paths(root=args.root.resolve(), landing=args.root.resolve() / "landing")
        sessions = list_sessions(paths)
        start = time.perf_counter()
        model = train_spatial(paths, sessions, seed=args.seed, config=config)
        result = {"root": str(args.root), "modules": len(sessions), "train_seconds": time.perf_counter() - start,
                  "epochs": config.epochs, "threads": config.threads, "peak_rss_mb": peak_rss_bytes() / 2**20}
        start = time.perf_counter()
        score_sessions(model, paths, sessions)
        result["score_seconds"] = time.perf_counter() - start
        print(result)
        return 0

    modules = args.modules or (48 if args.quick else 200)
    with tempfile.TemporaryDirectory(prefix="bench-spatial-") as tmp:
        start = time.perf_counter()
        paths = build_fleet(Path(tmp), modules, args.width, args.height, args.workers)
        build_s = time.perf_counter() - start
        truth = pl.read_parquet(Path(tmp) / "truth" / "modules.parquet")
        n_lots = truth["lot"].n_unique()
        train_ids, test_ids = split_lots(truth, holdout_lots=max(1, n_lots // 2))
        passed = set(truth.filter(pl.col("passed"))["session_id"].to_list())
        train_ids = [s for s in train_ids if s in passed]
        start = time.perf_counter()
        model = train_spatial(paths, train_ids, seed=args.seed, config=config)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = score_sessions(model, paths, test_ids)
        score_s = time.perf_counter() - start
    table = auc_by_fault_class(scores, truth)
    print(f"fleet {modules} modules {args.width}x{args.height}, {n_lots} lots: built in {build_s:.0f} s; "
          f"trained on {len(train_ids)} passed modules in {train_s:.1f} s ({config.epochs} epochs, "
          f"{config.threads} thread); scored {len(test_ids)} held-out modules in {score_s:.1f} s")
    print_table(table.to_dicts(), table.columns)
    if not args.quick:
        write_results("spatial", {
            "machine": machine_info(), "modules": modules, "width": args.width, "height": args.height,
            "lots": n_lots, "train_modules": len(train_ids), "heldout_modules": len(test_ids),
            "train_seconds": train_s, "score_seconds": score_s, "build_seconds": build_s,
            "training": model.metadata.training, "seed": args.seed, "auc_by_fault_class": table.to_dicts(),
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
