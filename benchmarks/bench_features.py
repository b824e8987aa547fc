"""Point-in-time training sets and online lookup at fleet size.

Data: ``module_stats`` with 1,000,000 rows (250,000 modules x 4 sessions over 60 days, a tenth
of the sessions written late), read as hive-partitioned parquet; a spine of 100,000 rows
(random modules, some unknown, label times over the same span). A service of 3 views over it with
40 features in all (27 EMVA metrics, 12 defect counts, the die temperature). Each case runs in a
fresh process (so its peak RSS is its own), median of several runs:

- ``features``: :func:`sensorfleet.features.get_training_set` (both time axes, TTL, tie-break);
- ``features_label``: the same with ``as_of="label"`` (each row's created-time cut is its own
  label time, so the cut is a per-row condition, not a constant filter);
- ``floor``: the bare DuckDB ``ASOF LEFT JOIN`` of the same 3 views on event time alone (no
  created-time cut, no TTL, no tie-break), same spine, same fetch to polars: the target is
  ``features`` within 1.2x of it;
- ``floor_one_join``: all 40 columns in one bare ASOF join (the least any tool can do here);
- ``correlated``: a correlated subquery (``LEFT JOIN LATERAL ... ORDER BY ... LIMIT 1``) on a
  subsample of the spine, scaled to 100,000 rows.

Online: :func:`materialize_online` over 1,000,000 distinct modules, then p50/p99 of
:func:`get_online_features` for one random module (target p99 < 5 ms).

Run: ``python -m benchmarks.bench_features [--quick] [--repeats N]``; ``--quick`` uses 100,000
feature rows and a 10,000-row spine and writes nothing; the full run writes
``benchmarks/results/features.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks._common import machine_info, peak_rss_bytes, print_table, run_seconds, write_results

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 60
CASES = ("features", "features_label", "floor", "floor_one_join", "correlated")


def bench_service() -> Any:
    from sensorfleet.features import FeatureService, FeatureView, Selection, Source
    from sensorfleet.features.catalog import MODULE_DEFECTS, MODULE_EMVA
    from sensorfleet.registry import MODULE_STATS

    times = ("session_id", "module_id", "captured_at", "written_at")
    counts = tuple(c for c in MODULE_DEFECTS.features if not c.name.endswith("_per_mp"))[:12]
    temp = (MODULE_STATS.column("temperature_c"),)
    views = [FeatureView(n, 1, n, Source.table("module_stats", (*times, *(c.name for c in cols)), ("session_id",)),
                         cols, timedelta(days=30))
             for n, cols in (("emva", MODULE_EMVA.features), ("defects", counts), ("conditions", temp))]
    return FeatureService("bench", 1, "3 views, 40 features", tuple(Selection(v) for v in views))


def make_table(root: Path, rows: int, modules: int, seed: int) -> None:
    """``rows`` module_stats rows over ``modules`` modules, one parquet file per capture day."""
    from sensorfleet.registry import MODULE_STATS
    from sensorfleet.tables import write_partition

    rng = np.random.default_rng(seed)
    captured_us = (T0.timestamp() + rng.uniform(0, SPAN_DAYS * 86400, rows)) * 1e6
    late = rng.random(rows) < 0.1
    written_us = captured_us + np.where(late, rng.uniform(3600, 3 * 86400, rows), 60.0) * 1e6
    data: dict[str, Any] = {}
    for c in MODULE_STATS.columns:
        if c.dtype == "f64":
            data[c.name] = rng.normal(10.0, 2.0, rows)
        elif c.dtype in ("i64", "i32"):
            data[c.name] = rng.integers(0, 100, rows)
        elif c.dtype == "bool":
            data[c.name] = np.ones(rows, bool)
        elif c.dtype == "str":
            data[c.name] = np.full(rows, c.name)
    data["session_id"] = [f"S{i:08d}" for i in range(rows)]
    data["module_id"] = [f"M{i:07d}" for i in rng.integers(0, modules, rows)] if modules < rows else \
        [f"M{i:07d}" for i in range(rows)]
    df = pl.DataFrame(data).with_columns(
        pl.Series("captured_at", captured_us.astype("int64")).cast(pl.Datetime("us", "UTC")),
        pl.Series("written_at", written_us.astype("int64")).cast(pl.Datetime("us", "UTC")),
        pl.lit(None, pl.String).alias("cfa_pattern"))
    df = MODULE_STATS.conform(df).with_columns(pl.col("captured_at").dt.date().alias("_day"))
    for (day,), part in df.partition_by("_day", as_dict=True).items():
        write_partition(root / "tables", "module_stats", str(day), part.drop("_day"))


def make_spine(rows: int, modules: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed + 1)
    label_us = (T0.timestamp() + rng.uniform(0, SPAN_DAYS * 86400, rows)) * 1e6
    ids = rng.integers(0, int(modules * 1.05), rows)  # ~5 % unknown modules
    return pl.DataFrame({"module_id": [f"M{i:07d}" for i in ids], "y": rng.integers(0, 2, rows)}).with_columns(
        pl.Series("label_time", label_us.astype("int64")).cast(pl.Datetime("us", "UTC")))


def _floor_sql(service: Any, files: list[Path], one_join: bool) -> str:
    rel = "read_parquet([" + ", ".join(f"'{p}'" for p in files) + "], hive_partitioning = true)"
    groups = [[c.name for s in service.selections for c in s.columns()]] if one_join else \
        [[c.name for c in s.columns()] for s in service.selections]
    joins = [f"ASOF LEFT JOIN (SELECT module_id, captured_at, {', '.join(g)} FROM {rel}) v{i} "
             f"ON s.module_id = v{i}.module_id AND v{i}.captured_at <= s.label_time" for i, g in enumerate(groups)]
    cols = ", ".join(f"v{i}.{c}" for i, g in enumerate(groups) for c in g)
    return f"SELECT s.*, {cols} FROM spine s " + " ".join(joins) + " ORDER BY s.__row"


def _correlated_sql(service: Any, files: list[Path], as_of: datetime) -> str:
    rel = "read_parquet([" + ", ".join(f"'{p}'" for p in files) + "], hive_partitioning = true)"
    parts, cols = [], []
    for i, s in enumerate(service.selections):
        names = [c.name for c in s.columns()]
        cols += [f"v{i}.{n}" for n in names]
        parts.append(
            f"LEFT JOIN LATERAL (SELECT {', '.join(names)} FROM {rel} f WHERE f.module_id = s.module_id "
            f"AND f.captured_at <= s.label_time AND f.written_at <= TIMESTAMPTZ '{as_of.isoformat()}' "
            f"AND f.captured_at > s.label_time - INTERVAL 30 DAY "
            f"ORDER BY f.captured_at DESC, f.written_at DESC, f.session_id DESC LIMIT 1) v{i} ON true")
    return f"SELECT s.*, {', '.join(cols)} FROM spine s " + " ".join(parts) + " ORDER BY s.__row"


def run_case(case: str, root: Path, spine_path: Path, repeats: int, subsample: int) -> dict[str, Any]:
    """One case in this (fresh) process: run times, rows out, peak RSS."""
    from sensorfleet.features import get_training_set
    from sensorfleet.features.retrieval import connect
    from sensorfleet.features.sources import table_files

    service, spine = bench_service(), pl.read_parquet(spine_path)
    files = table_files(root / "tables", "module_stats")
    as_of = T0 + timedelta(days=SPAN_DAYS + 10)
    rows_in = spine.height
    if case == "correlated":
        spine = spine.head(subsample)
    holder: dict[str, int] = {}

    def once() -> None:
        if case in ("features", "features_label"):
            moment = "label" if case == "features_label" else as_of
            holder["rows"] = get_training_set(spine, service, moment, root).height
            return
        con = connect()
        con.register("spine", spine.with_row_index("__row").to_arrow())
        sql = _correlated_sql(service, files, as_of) if case == "correlated" else _floor_sql(service, files, case == "floor_one_join")
        out = pl.from_arrow(con.sql(sql).arrow().read_all())
        holder["rows"] = out.height
        con.close()

    times = run_seconds(once, repeats=1 if case == "correlated" else repeats, warmup=0 if case == "correlated" else 1)
    seconds = statistics.median(times)
    scale = rows_in / spine.height
    return {"case": case, "median_s": seconds * scale, "runs_s": times, "scaled_from_rows": spine.height,
            "rows_out": holder["rows"], "peak_rss_mib": _vm_hwm_bytes() / 2**20}


def _vm_hwm_bytes() -> int:
    # getrusage's ru_maxrss of a child started by fork + exec starts at the parent's peak on Linux
    # (the parent holds the generated data), so read this process's own high-water mark
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def bench_online(root: Path, lookups: int) -> dict[str, Any]:
    from sensorfleet.features import get_online_features, materialize_online
    from sensorfleet.features.online import load_online_store

    service = bench_service()
    start = time.perf_counter()
    materialize_online(root, now=T0 + timedelta(days=SPAN_DAYS), service=service)
    materialize_s = time.perf_counter() - start
    start = time.perf_counter()
    store = load_online_store(root)
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(3)
    ids = store.ids[rng.integers(0, len(store.ids), lookups)]
    lat = []
    for m in ids:
        t = time.perf_counter()
        get_online_features([str(m)], service, root)
        lat.append(time.perf_counter() - t)
    ms = np.asarray(lat) * 1e3
    return {"modules": len(store.ids), "materialize_s": materialize_s, "first_load_s": load_s,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "lookups": lookups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--subsample", type=int, default=2000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, JSON on stdout
        result = run_case(args.case, args.data, args.data / "spine.parquet", args.repeats, args.subsample)
        print(json.dumps(result))
        return
    rows, spine_rows, online_modules = (100_000, 10_000, 100_000) if args.quick else (1_000_000, 100_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        data, online = Path(tmp) / "pit", Path(tmp) / "online"
        make_table(data, rows, rows // 4, seed=1)
        make_spine(spine_rows, rows // 4, seed=1).write_parquet(data / "spine.parquet")
        # Cases alternate round by round (each round runs every case once, in a fresh process),
        # so a change of load on the shared machine weighs on all cases alike; each case's figure
        # is its median over the rounds, each ratio the median of the per-round ratios.
        def run(case: str, repeats: int) -> dict[str, Any]:
            cmd = [sys.executable, "-m", "benchmarks.bench_features", "--case", case, "--data", str(data),
                   "--repeats", str(repeats), "--subsample", str(max(200, spine_rows // 50))]
            return dict(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))

        rounds: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        for _ in range(args.repeats):
            for case in CASES:
                if case != "correlated":
                    rounds[case].append(run(case, 1))
        rounds["correlated"].append(run("correlated", 1))
        results = []
        for case, runs in rounds.items():
            ratios = [r["median_s"] / f["median_s"] for r, f in zip(runs, rounds["floor"], strict=False)]
            results.append({**runs[0], "median_s": statistics.median(r["median_s"] for r in runs),
                            "runs_s": [r["median_s"] for r in runs],
                            "x_floor": statistics.median(ratios) if case != "correlated" else None,
                            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)})
        floor = next(r for r in results if r["case"] == "floor")["median_s"]
        for r in results:
            if r["x_floor"] is None:
                r["x_floor"] = r["median_s"] / floor
        print(f"training set: {spine_rows} spine rows over {rows} feature rows, 3 views, 40 features")
        print_table(results, ["case", "median_s", "x_floor", "rows_out", "peak_rss_mib", "scaled_from_rows"])
        assert all(r["rows_out"] == (spine_rows if r["case"] != "correlated" else r["scaled_from_rows"]) for r in results)
        make_table(online, online_modules, online_modules, seed=2)
        on = bench_online(online, lookups=2000)
        print(f"online: one module among {on['modules']}: p50 {on['p50_ms']:.3f} ms, p99 {on['p99_ms']:.3f} ms "
              f"(materialize {on['materialize_s']:.2f} s, first load {on['first_load_s']:.2f} s)")
    if not args.quick:
        path = write_results("features", {"machine": machine_info(), "training_set": results, "online": on,
                                          "rows": rows, "spine_rows": spine_rows, "repeats": args.repeats})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
