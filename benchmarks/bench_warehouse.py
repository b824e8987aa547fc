"""The analyst guide's queries over a generated fleet of 1,000,000 modules.

``python -m benchmarks.bench_warehouse [--modules N] [--days D] [--repeats R]``

Generates table rows (not frames) for N modules with the registry's schemas: ``sessions`` and
``module_stats`` (one session per module, plus 2 % re-captured), ``final_test`` (10 % retested),
``rejections`` (0.5 % of sessions), hive-partitioned over D capture days like the pipeline writes
them; builds the warehouse; times every query of docs/analyst-guide.md (median of R runs after one
warm-up) beside a same-run baseline: a full scan of ``module_stats`` (``SELECT count(*), sum(...)``)
through the same views; results are fetched as polars frames, as `sensorfleet sql` does. Target: every query under 1 s at 1,000,000 modules.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._common import (
    machine_info,
    median_seconds,
    peak_rss_bytes,
    print_table,
    write_results,
)
from sensorfleet.config import Paths
from sensorfleet.registry import get_table
from sensorfleet.tables import write_partition
from sensorfleet.warehouse import build_warehouse, connect_read_only

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "analyst-guide.md"
START = datetime(2026, 1, 5, tzinfo=UTC)


def guide_queries() -> dict[str, str]:
    blocks = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return {re.match(r"-- name: (\w+)", b).group(1): b for b in blocks}  # type: ignore[union-attr]


def _fill(table: str, columns: dict[str, object], n: int) -> pl.DataFrame:
    """A frame of ``table``'s schema: the given columns, the rest null."""
    spec = get_table(table)
    data = {c.name: columns.get(c.name, pl.repeat(None, n, dtype=c.polars_dtype, eager=True)) for c in spec.columns}
    return pl.DataFrame(data).cast(spec.polars_schema())  # type: ignore[arg-type]


def generate(paths: Paths, modules: int, days: int, seed: int = 0) -> None:
    """Write the fleet's tables under ``paths.tables`` (one partition per capture day)."""
    rng = np.random.default_rng(seed)
    recaptured = rng.choice(modules, modules // 50, replace=False)
    module = np.concatenate([np.arange(modules), recaptured])
    n = module.size
    lot = module // 2000
    wafer = module // 100
    day = np.sort(rng.integers(0, days, n))
    captured = [START + timedelta(days=int(d), seconds=int(s)) for d, s in zip(day, rng.integers(0, 86400, n), strict=True)]
    ids = pl.Series([f"CM-{m:07d}" for m in module])
    stations = pl.Series([f"ST-{s:02d}" for s in rng.integers(0, 40, n)])
    dark = rng.lognormal(np.log(5), 0.3, n) * (1 + 0.002 * day)
    common = {
        "session_id": pl.Series([f"S-{i:08d}" for i in range(n)]), "module_id": ids,
        "lot_id": pl.Series([f"L{x:04d}" for x in lot]), "wafer_id": pl.Series([f"W{x:05d}" for x in wafer]),
        "die_x": pl.Series(module % 10), "die_y": pl.Series((module // 10) % 10), "station_id": stations,
        "captured_at": pl.Series(captured), "temperature_c": pl.Series(rng.normal(25, 1, n)),
        "written_at": pl.Series(captured),
    }
    stats = _fill("module_stats", {
        **common, "width_px": pl.Series(np.full(n, 4000)), "height_px": pl.Series(np.full(n, 3000)),
        "dark_current_e_per_s": pl.Series(dark), "read_noise_e": pl.Series(rng.normal(2.5, 0.3, n)),
        "dsnu_e": pl.Series(rng.gamma(4, 0.5, n)), "prnu_pct": pl.Series(rng.gamma(9, 0.07, n)),
        "quantum_efficiency": pl.Series(rng.normal(0.6, 0.03, n)), "shading_corner_ratio": pl.Series(rng.normal(0.85, 0.03, n)),
        "defect_pixels_total": pl.Series(rng.poisson(200, n)), "cluster_count": pl.Series(rng.poisson(2, n)),
        "bad_columns": pl.Series(rng.poisson(0.02, n)), "bad_rows": pl.Series(rng.poisson(0.02, n)),
    }, n)
    sessions = _fill("sessions", {**common, "status": pl.Series(["ingested"] * n)}, n)
    date = pl.Series([str((START + timedelta(days=int(d))).date()) for d in day])
    for table, frame in (("sessions", sessions), ("module_stats", stats)):
        for (d,), part in frame.with_columns(day=date).partition_by("day", as_dict=True).items():
            write_partition(paths.tables, table, str(d), part.drop("day"))

    retest = rng.random(modules) < 0.10
    tested = [START + timedelta(days=days + 2, seconds=int(s)) for s in rng.integers(0, 86400 * 10, modules)]
    first_pass = rng.random(modules) < 0.9
    rows = {
        "module_id": pl.Series([f"CM-{m:07d}" for m in np.concatenate([np.arange(modules), np.flatnonzero(retest)])]),
        "tested_at": pl.Series(tested + [t + timedelta(hours=6) for t, r in zip(tested, retest, strict=True) if r]),
        "passed": pl.Series(np.concatenate([first_pass & ~retest, np.ones(retest.sum(), bool)])),
        "attempt": pl.Series(np.concatenate([np.ones(modules, np.int64), np.full(retest.sum(), 2)])),
    }
    k = rows["module_id"].len()
    labels = _fill("final_test", {**rows, "fail_bin": pl.Series([None if p else "dark_current" for p in rows["passed"]], dtype=pl.String),
                                  "written_at": rows["tested_at"]}, k)
    for (d,), part in labels.with_columns(day=pl.col("tested_at").dt.strftime("%Y-%m-%d")).partition_by("day", as_dict=True).items():
        write_partition(paths.tables, "final_test", str(d), part.drop("day"))

    bad = rng.choice(n, n // 200, replace=False)
    reasons = ["wrong size for raw12_mipi 4000x3000: expected 18000000 bytes", "frames: an operating point has 1 frame",
               "pixel values at or above 2^12", "manifest: not JSON"]
    rejections = _fill("rejections", {
        "source": pl.Series(["landing"] * bad.size), "session_id": pl.Series([f"S-{i:08d}" for i in bad]),
        "session_dir": pl.Series([f"/landing/S-{i:08d}" for i in bad]), "file": pl.Series(["frame_003.raw12"] * bad.size),
        "reason": pl.Series([reasons[i % 4] for i in bad]), "rejected_at": pl.Series([captured[i] for i in bad]),
        "captured_at": pl.Series([captured[i] for i in bad]), "written_at": pl.Series([captured[i] for i in bad]),
    }, bad.size)
    write_partition(paths.tables, "rejections", str(START.date()), rejections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="generate under this folder and keep it")
    parser.add_argument("--quick", action="store_true", help="20,000 modules over 10 days, 2 repeats; no result file")
    args = parser.parse_args()
    if args.quick:
        args.modules, args.days, args.repeats = 20_000, 10, 2
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        paths = Paths(root=base / "data", landing=base / "landing")
        if not (paths.tables / "module_stats").exists():
            generate(paths, args.modules, args.days)
        build_warehouse(paths)
        con = connect_read_only(paths)
        baseline = median_seconds(lambda: con.sql(
            "SELECT count(*), sum(dark_current_e_per_s), sum(read_noise_e) FROM module_stats").fetchall(), args.repeats)
        rows = [{"query": "baseline: scan module_stats (2 columns)", "seconds": round(baseline, 3), "x_baseline": 1.0, "rows": 1}]
        for name, sql in guide_queries().items():
            seconds = median_seconds(lambda sql=sql: con.sql(sql).pl(), args.repeats)
            rows.append({"query": name, "seconds": round(seconds, 3), "x_baseline": round(seconds / baseline, 1),
                         "rows": con.sql(sql).pl().height})
        con.close()
    print_table(rows, ["query", "seconds", "x_baseline", "rows"])
    print(f"peak RSS {peak_rss_bytes() / 2**20:.0f} MiB; every query under 1 s: {all(r['seconds'] < 1 for r in rows)}")
    if not args.quick:
        write_results("bench_warehouse", {"machine": machine_info(), "modules": args.modules, "days": args.days, "rows": rows})


if __name__ == "__main__":
    main()
