"""What the ``make demo`` pipeline costs beside its data's own work, in one run.

On one synthetic demo fleet (``pipelines.demo``: the demo's size, lots, stations, edge charts and
its planted broken session), with numba's cache warm (``sensorfleet.warmup``), this measures:

- ``pipeline_s``: ``sensorfleet pipeline run`` over the fleet, the demo's first run, in a fresh
  process (the command a user runs: Python and Dagster start-up included);
- the kernels' own time for the same sessions, in this process, warm: ``ingest_kernel_s``, the
  sum over the sessions of :func:`sensorfleet.ingest.session.ingest_session` (read, hash, decode,
  statistics, compress, write: the ingest's work without Dagster or the day's tables) and
  ``characterization_kernel_s``, the sum of :func:`sensorfleet.emva.characterize_session` (the
  EMVA 1288 analysis from the captures group, maps written) plus the optics measurement
  (:func:`sensorfleet.optics.characterize_optics_day` per day, one worker);
- ``dagster_startup_s``: one Dagster run's start-up, in a fresh process: importing the code
  location, preparing the instance and executing a one-op job recorded in it;
- ``models_s``: the demo's model training and scoring (``retrain`` job), outside the comparison:
  it is neither ingest nor characterization.

Target: ``pipeline_s <= 3 * (ingest_kernel_s + characterization_kernel_s + dagster_startup_s)``.
Run: ``python -m benchmarks.bench_demo_cost [--quick] [--repeats N]``; ``--quick`` makes a fleet of
8 modules and writes nothing; the full run (the demo's 80 modules) writes
``benchmarks/results/demo_cost.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._common import machine_info, print_table, write_results
from sensorfleet.config import Paths

REPO = Path(__file__).resolve().parent.parent
_STARTUP = """
import sys, time
t0 = time.perf_counter()
from dagster import DagsterInstance, job, op, in_process_executor
from pipelines.runner import prepare_instance
import pipelines.definitions  # the code location every run loads
from sensorfleet.config import Paths
from pathlib import Path
paths = Paths(root=Path(sys.argv[1]), landing=Path(sys.argv[1]) / "landing")
instance = prepare_instance(paths)
@op
def nothing() -> None:
    return None
@job(executor_def=in_process_executor)
def startup_probe() -> None:
    nothing()
assert startup_probe.execute_in_process(instance=instance).success
print(time.perf_counter() - t0)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def fleet(root: Path, modules: int) -> Paths:
    """The demo's fleet (its size, lots, edge charts, broken session) under ``root``."""
    from pipelines.demo import add_broken_session, generate_demo_fleet

    paths = Paths(root=root, landing=root / "landing")
    console = Console(quiet=True)
    generate_demo_fleet(paths, modules, 0, console, 320, 240)
    add_broken_session(paths.landing, console)
    return paths


def pipeline_seconds(paths: Paths) -> float:
    """``sensorfleet pipeline run`` of the whole fleet (its first run) in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "pipeline", "run", "--root", str(paths.root),
                    "--landing", str(paths.landing)], check=False, env=_env(), cwd=REPO, capture_output=True)
    return time.perf_counter() - t0


def dagster_startup_seconds(root: Path) -> float:
    """One Dagster run's start-up in a fresh process (imports, instance, a one-op run)."""
    out = subprocess.run([sys.executable, "-c", _STARTUP, str(root)], check=True, env=_env(), cwd=REPO,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def kernel_seconds(landing: Path, scratch: Path) -> dict[str, float]:
    """The ingest's and the characterization's own time for every session of ``landing``."""
    from sensorfleet.emva import characterize_session
    from sensorfleet.ingest.session import ingest_session
    from sensorfleet.optics import characterize_optics_day

    paths = Paths(root=scratch, landing=landing)
    ingest_s = char_s = optics_s = 0.0
    days: set[str] = set()
    for session in sorted(p for p in landing.iterdir() if (p / "manifest.json").is_file()):
        t0 = time.perf_counter()
        result = ingest_session(session, paths)
        ingest_s += time.perf_counter() - t0
        if result.zarr_path is None:
            continue  # the planted broken session: rejected
        days.add(result.capture_date)
        t0 = time.perf_counter()
        characterize_session(Path(result.zarr_path), paths.maps / result.capture_date / Path(result.zarr_path).name)
        char_s += time.perf_counter() - t0
    for day in sorted(days):
        t0 = time.perf_counter()
        characterize_optics_day(paths, day, workers=1)
        optics_s += time.perf_counter() - t0
    return {"ingest_kernel_s": ingest_s, "emva_kernel_s": char_s, "optics_kernel_s": optics_s,
            "characterization_kernel_s": char_s + optics_s, "capture_days": float(len(days))}


def models_seconds(paths: Paths) -> float:
    """The demo's training and scoring (outside the comparison), in a fresh process."""
    code = ("import sys; from pathlib import Path; from sensorfleet.config import Paths; "
            "from pipelines.runner import train_models; "
            "train_models(Paths(root=Path(sys.argv[1]), landing=Path(sys.argv[2])))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(paths.root), str(paths.landing)], check=False, env=_env(),
                   cwd=REPO, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 modules, write nothing")
    ap.add_argument("--modules", type=int, default=None, help="fleet size (default 80, the demo's; quick: 8)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    modules = args.modules or (8 if args.quick else 80)
    from sensorfleet.warmup import warm_up

    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmpdir:
        tmp = Path(tmpdir)
        warm_up(tmp / "warmup")  # caches warm, as after `make`'s environment rule
        source = fleet(tmp / "fleet", modules)
        raw_bytes = sum(f.stat().st_size for f in source.landing.rglob("*") if f.is_file())
        runs: list[dict[str, float]] = []
        for k in range(max(1, args.repeats)):  # interleaved: each repeat measures all on one machine state
            paths = Paths(root=tmp / f"run{k}", landing=source.landing)
            row = {"pipeline_s": pipeline_seconds(paths), "dagster_startup_s": dagster_startup_seconds(tmp / f"probe{k}")}
            row.update(kernel_seconds(source.landing, tmp / f"kernels{k}"))
            row["ratio"] = row["pipeline_s"] / (row["ingest_kernel_s"] + row["characterization_kernel_s"]
                                                + row["dagster_startup_s"])
            runs.append(row)
        models_s = models_seconds(Paths(root=tmp / "run0", landing=source.landing))
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print_table([{"what": k, "value": v} for k, v in summary.items()], ["what", "value"])
    print(f"models (outside the comparison): {models_s:.1f} s; raw input {raw_bytes / 1e6:.0f} MB, {modules} modules")
    payload = {"machine": machine_info(), "modules": modules, "raw_input_bytes": raw_bytes, "median": summary,
               "runs": runs, "models_s": models_s, "target_ratio": 3.0}
    if not args.quick:
        print("wrote", write_results("demo_cost", payload))
    return payload


if __name__ == "__main__":
    main()
