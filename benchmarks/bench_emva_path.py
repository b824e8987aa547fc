"""The EMVA 1288 path a camera engineer takes, against the ``emva1288`` reference, per data set.

For every reference data set under ``../shared/data/emva1288-reference-*`` (set 003 here), in one
run, interleaved (each repeat runs all three on the same machine state):

- ``reference_s``: the ``emva1288`` package parsing, loading and analysing the set
  (``tests/emva/reference_harness.run_reference``), in this process;
- ``in_process_s``: :func:`sensorfleet.emva_import.import_emva` into a fresh landing root +
  :func:`sensorfleet.ingest.session.ingest_session` + :func:`sensorfleet.emva.characterize_session`
  (numba's cache warm), split into ``import_s``, ``ingest_s`` and ``characterize_s``;
- ``cli_s``: ``sensorfleet import-emva`` + ``sensorfleet pipeline run`` of the imported day, two
  fresh processes, as the engineer types them.

Targets: ``in_process_s <= reference_s / 3`` and ``cli_s <= reference_s``, on medians. Beside the
wall times, ``reference_cpu_s`` and ``in_process_cpu_s`` (CPU seconds of this process, all its
threads) and their ratio ``in_process_cpu_ratio``: what the wall-time ratio tends to when the
other jobs of a shared machine leave no core free (the chain then cannot run its threads in
parallel; the reference uses one core either way).
Run: ``python -m benchmarks.bench_emva_path [--quick] [--repeats N]``; ``--quick`` runs one repeat
without the command line and writes nothing; the full run writes
``benchmarks/results/emva_path.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._common import machine_info, print_table, write_results

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def reference_sets() -> list[Path]:
    """The EMVA 1288 reference data sets present beside the checkout."""
    return sorted(p for p in DATA.glob("emva1288-reference-*") if p.is_dir())


def in_process(source: Path, work: Path) -> dict[str, float]:
    """import + ingest + characterize of ``source`` under ``work`` (seconds per step)."""
    from sensorfleet.config import Paths
    from sensorfleet.emva import characterize_session
    from sensorfleet.emva_import import ImportOptions, import_emva
    from sensorfleet.ingest.session import ingest_session

    paths = Paths(root=work / "data", landing=work / "landing")
    c0 = time.process_time()
    t0 = time.perf_counter()
    imported = import_emva(source, paths.landing, ImportOptions(captured_at=datetime.now(UTC)))
    t1 = time.perf_counter()
    ingested = ingest_session(imported.session_dir, paths)
    t2 = time.perf_counter()
    if ingested.zarr_path is None:
        raise RuntimeError(f"{source}: the ingest rejected the imported session: {ingested.rejections}")
    characterize_session(Path(ingested.zarr_path), paths.maps / ingested.capture_date / Path(ingested.zarr_path).name)
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "ingest_s": t2 - t1, "characterize_s": t3 - t2, "in_process_s": t3 - t0,
            "in_process_cpu_s": time.process_time() - c0}


def command_line(source: Path, work: Path) -> dict[str, float]:
    """``sensorfleet import-emva`` then ``sensorfleet pipeline run`` of its day, fresh processes."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    day = datetime.now(UTC).date().isoformat()
    cli = [sys.executable, "-m", "pipelines.cli"]
    t0 = time.perf_counter()
    subprocess.run([*cli, "import-emva", str(source), "--landing", str(work / "landing"),
                    "--captured-at", f"{day}T12:00:00Z"], check=True, env=env, cwd=REPO, capture_output=True)
    t1 = time.perf_counter()
    run = subprocess.run([*cli, "pipeline", "run", "--root", str(work / "data"), "--landing", str(work / "landing"),
                          "--day", day], check=False, env=env, cwd=REPO, capture_output=True, text=True)
    t2 = time.perf_counter()
    if run.returncode != 0:
        raise RuntimeError(f"pipeline run of {source} failed:\n{run.stdout[-2000:]}")
    return {"cli_import_s": t1 - t0, "cli_pipeline_run_s": t2 - t1, "cli_s": t2 - t0}


def measure(source: Path, tmp: Path, repeats: int, with_cli: bool) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests" / "emva"))
    import reference_harness as rh

    in_process(source, tmp / "warm")  # numba's cache loaded, files in the page cache
    runs: list[dict[str, float]] = []
    for k in range(max(1, repeats)):
        c0 = time.process_time()
        row = {"reference_s": rh.run_reference(source).seconds, "reference_cpu_s": time.process_time() - c0}
        row.update(in_process(source, tmp / f"in{k}"))
        if with_cli:
            row.update(command_line(source, tmp / f"cli{k}"))
        row["in_process_speedup"] = row["reference_s"] / row["in_process_s"]
        row["in_process_cpu_ratio"] = row["reference_cpu_s"] / row["in_process_cpu_s"]
        if with_cli:
            row["cli_speedup"] = row["reference_s"] / row["cli_s"]
        runs.append(row)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return {"median": median, "runs": runs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat, no command line, write nothing")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    for source in reference_sets():
        with tempfile.TemporaryDirectory(prefix="bench-emva-") as tmp:
            results[source.name] = measure(source, Path(tmp), 1 if args.quick else args.repeats, not args.quick)
        print(source.name)
        print_table([{"what": k, "value": v} for k, v in results[source.name]["median"].items()], ["what", "value"])
    if not results:
        print(f"no reference data set under {DATA}")
    payload = {"machine": machine_info(), "sets": results, "targets": {"in_process_speedup": 3.0, "cli_speedup": 1.0}}
    if not args.quick and results:
        print("wrote", write_results("emva_path", payload))
    return payload


if __name__ == "__main__":
    main()
