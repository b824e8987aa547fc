"""Models at fleet size: held-out evaluation on a synthetic fleet, and scoring speed.

Evaluation: a fleet of ``--modules`` modules (small 64x48 sensors, default fault fraction 5 %,
yield 90 %) taken through the core steps (``models.fleet.build_fleet``), then
``train_anomaly`` and ``train_yield`` with their MLflow runs under the fleet's data root. Reports
the held-out-lot metrics: anomaly ROC-AUC, PR-AUC, F1-max, recall at 1 % false alarms overall and
per fault class of the truth; yield ROC-AUC, PR-AUC, Brier, recall at the escape rate beside chance,
the oracle (same pipeline given the truth's true parameters) and the ceiling (also given the
hidden latent weakness and the deepest blemish).

Scoring: ``--score-rows`` generated feature rows (the last four days' feature rows resampled with
5 % multiplicative jitter) scored in 100,000-row batches by the trained anomaly model (score +
top features) and the yield model, in a fresh process so its peak RSS is its own. Target < 60 s
for 1,000,000 rows.

Run: ``python -m benchmarks.bench_models [--modules 2000] [--data DIR] [--quick]``; the fleet is
kept in ``--data`` (default a temporary folder) and reused when complete. ``--quick``: 150
modules, 100,000 rows, writes nothing; the full run writes ``benchmarks/results/models.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_info, peak_rss_bytes, print_table, write_results

BATCH = 100_000


def score_case(models_file: Path, rows: int, seed: int) -> dict[str, Any]:
    """Child process: load the pickled models and their base matrix, generate ``rows`` feature
    rows, score them in batches; timing and peak RSS."""
    with models_file.open("rb") as f:
        saved = pickle.load(f)  # written by this benchmark a moment ago
    anomaly, yield_model, base_a, base_y = saved["anomaly"], saved["yield"], saved["base_a"], saved["base_y"]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    alarms, fails = 0, 0
    for lo in range(0, rows, BATCH):
        n = min(BATCH, rows - lo)
        pick = rng.integers(0, len(base_a), n)
        xa = base_a[pick] * rng.normal(1, 0.05, (n, base_a.shape[1]))
        alarms += int((anomaly.score(xa) > anomaly.threshold).sum())
        anomaly.explain(xa)
        xy = base_y[pick] * rng.normal(1, 0.05, (n, base_y.shape[1]))
        fails += int((1 - yield_model.probability_pass(xy) > yield_model.fail_threshold).sum())
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "alarm_share": alarms / rows,
            "predicted_fail_share": fails / rows, "peak_rss_mib": peak_rss_bytes() / 2**20,
            "features_anomaly": base_a.shape[1], "features_yield": base_y.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path, help="fleet folder (kept and reused)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--score-case", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_case:
        print(json.dumps(score_case(args.score_case, args.score_rows, args.seed)))
        return
    if args.quick:
        args.modules, args.score_rows = 150, 100_000
    import polars as pl

    from models.data import matrix
    from models.fleet import build_fleet
    from models.scores import day_modules
    from models.train import train_anomaly, train_yield
    from sensorfleet.synth.fleet import FleetConfig

    with tempfile.TemporaryDirectory(prefix="bench_models_") as tmp:
        base = args.data or Path(tmp) / "fleet"
        start = time.perf_counter()
        paths = build_fleet(base, FleetConfig(modules=args.modules, seed=args.seed, width=64, height=48,
                                              workers=args.workers), workers=args.workers)
        fleet_s = time.perf_counter() - start
        start = time.perf_counter()
        anomaly = train_anomaly(paths)
        anomaly_s = time.perf_counter() - start
        start = time.perf_counter()
        yielded = train_yield(paths)
        yield_s = time.perf_counter() - start
        per_class = anomaly.details["per_fault_class"]
        print(f"fleet: {args.modules} modules ({fleet_s:.0f} s to build); train anomaly {anomaly_s:.1f} s, "
              f"yield {yield_s:.1f} s")
        print_table([{"fault_class": "all", **{k: anomaly.metrics[k] for k in ("roc_auc", "pr_auc", "f1_max",
                                                                                    "recall_at_far", "positives")}},
                     *per_class.to_dicts()], ["fault_class", "roc_auc", "pr_auc", "f1_max", "recall_at_far", "positives"])
        print(f"held-out normal modules alarmed: {anomaly.metrics['false_alarm_rate_heldout']:.4f}")
        ym = yielded.metrics
        print_table([{"model": who, **{k: ym.get(f"{prefix}{k}", float("nan")) for k in
                                        ("roc_auc", "pr_auc", "brier", "recall_at_escape", "rejected_at_escape")}}
                     for who, prefix in (("model", ""), ("chance", "chance_"), ("oracle", "oracle_"), ("ceiling", "ceiling_"))],
                    ["model", "roc_auc", "pr_auc", "brier", "recall_at_escape", "rejected_at_escape"])
        print(f"yield ROC-AUC / oracle's: {ym.get('roc_auc_vs_oracle', float('nan')):.3f}, "
              f"/ ceiling's: {ym.get('roc_auc_vs_ceiling', float('nan')):.3f}")
        print("top permutation importance:", yielded.details["permutation_importance"].head(5).to_dicts())
        print(f"predicted_bin per final-test bin (bin accuracy {ym['bin_accuracy']:.3f}, right bin among caught "
              f"failures {ym['failure_bin_accuracy']:.3f}):")
        print_table(yielded.details["per_bin"].to_dicts(), ["bin", "support", "predicted", "precision", "recall"])
        days = sorted({p.name.split("=")[1] for p in (paths.tables / "module_features").glob("*=*")})
        sample = day_modules(paths, days[-1])
        for d in days[-4:-1]:
            sample = pl.concat([sample, day_modules(paths, d)], how="diagonal_relaxed")
        models_file = Path(tmp) / "models.pkl"
        with models_file.open("wb") as f:
            pickle.dump({"anomaly": anomaly.model, "yield": yielded.model,
                         "base_a": np.nan_to_num(matrix(sample, anomaly.model.feature_names)),
                         "base_y": matrix(sample, yielded.model.feature_names)}, f)
        cmd = [sys.executable, "-m", "benchmarks.bench_models", "--score-case", str(models_file),
               "--score-rows", str(args.score_rows), "--seed", str(args.seed)]
        scoring = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"scoring {scoring['rows']:,} rows: {scoring['seconds']:.1f} s ({scoring['rows_per_s']:,.0f} rows/s), "
              f"peak RSS {scoring['peak_rss_mib']:.0f} MiB")
    if not args.quick:
        payload = {"machine": machine_info(), "modules": args.modules, "seed": args.seed, "fleet_build_s": fleet_s,
                   "train_anomaly_s": anomaly_s, "train_yield_s": yield_s, "anomaly": anomaly.metrics,
                   "anomaly_per_fault_class": per_class.to_dicts(), "yield": ym,
                   "permutation_importance_top10": yielded.details["permutation_importance"].head(10).to_dicts(),
                   "yield_per_bin": yielded.details["per_bin"].to_dicts(),
                   "scoring": scoring}
        print(f"wrote {write_results('models', payload)}")


if __name__ == "__main__":
    main()
