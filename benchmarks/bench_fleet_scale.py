"""Fleet scale, measured: what one 12 MP session costs in each layer, what it stores, and how the
throughput of capture-day partitions scales with the cores they are given.

The sessions come from the synthetic fleet generator (:mod:`sensorfleet.synth`) at 4000 x 3000,
12-bit raw12_mipi, with an edge-chart capture (70 frames: dark series, photon-transfer pairs,
averaging series, chart); one is generated and cloned under new session and module ids (frame
files hard-linked: the pipeline's work does not depend on the values). Measures, in this process
after a warm-up run of every layer on a tiny day (Dagster, numba and the models' imports loaded,
as in a long-lived run worker):

- per layer (``captures`` = ingest, ``characterization``, ``optics`` (the edge chart: SFR,
  colour shading), ``features``): wall and CPU seconds (this process and its reaped children) of
  one Dagster run of that layer over a day of ``--sessions`` sessions, per session; the same run
  over a day of one tiny session is the per-run overhead (Dagster events, table rewrite, locks);
- bytes and files (= object-store objects, PUT requests) each layer adds to the data root, per
  session; and the raw landing bytes and files of a session (GET requests of the ingest);
- scoring: per session from benchmarks/results/models.json (a feature row per session scored by
  both models; independent of the sensor size), when that result is present;
- scaling: N capture days run at once, each in its own process pinned to its own core
  (``sched_setaffinity``; inside it one worker, one thread: :func:`sensorfleet.parallel.available_cores`),
  for N = 1 and N = 2, the whole daily graph up to the features; throughput in sessions per second
  and the ratio N=2 / N=1 (ideal 2.0 on 2 free cores), medians of ``--repeats``;
- the machine: load average before and after, memory-copy bandwidth of the same run.

From these, :func:`derive_sizing` gives the machines, storage and object-store request rates for
10,000 and 100,000 sessions a day (``--derive`` recomputes them from the result file).

Run: ``python -m benchmarks.bench_fleet_scale [--quick] [--sessions N] [--repeats N]``.
``--quick``: 320 x 240 sessions, one repeat, no warm-up runs and no per-run overhead, writes
nothing (to check that it runs). The full
run writes ``benchmarks/results/fleet_scale.json``; docs/operations.md#sizing is derived from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    machine_info,
    memcpy_bandwidth,
    print_table,
    write_results,
)

LAYERS = ("captures", "characterization", "optics", "features")
"""The daily layers measured one run each, in graph order (Dagster group names)."""
DAY = "2026-03-12"
TINY_DAY = "2026-03-11"
WARM_DAY = "2026-03-10"
SKIP_IN_ROOT = ("dagster_home", "state")
"""Bookkeeping under the data root that is not a layer's output (the instance is Postgres in
production; ``state`` holds locks and caches)."""


@dataclass(frozen=True)
class Cost:
    """Wall and CPU seconds of one piece of work (CPU: this process and its reaped children)."""

    wall_s: float
    cpu_s: float


def measure(fn: Any) -> Cost:
    """Run ``fn()`` and return its wall and CPU seconds."""
    before, t0 = os.times(), time.perf_counter()
    fn()
    after, wall = os.times(), time.perf_counter() - t0
    cpu = sum(after[i] - before[i] for i in range(4))  # user, system, children user, children system
    return Cost(wall, cpu)


def generate_template(folder: Path, width: int, height: int) -> Path:
    """One synthetic session with an edge chart (the fleet generator); returns its landing folder."""
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    config = FleetConfig(modules=1, seed=14, width=width, height=height, edge_charts=True, workers=1)
    generate_fleet(config, folder / "landing", folder / "truth")
    return next(p for p in (folder / "landing").iterdir() if (p / "manifest.json").is_file())


def clone_session(template: Path, landing: Path, day: str, index: int) -> Path:
    """A copy of ``template`` captured on ``day`` under new session and module ids, its frame
    files hard-linked (the landing is read only to the pipeline)."""
    manifest = json.loads((template / "manifest.json").read_text())
    session_id = f"BENCH-{day}-{index:04d}"
    manifest.update(session_id=session_id, module_id=f"BM-{day}-{index:04d}",
                    captured_at=f"{day}T{8 + index % 12:02d}:{index % 60:02d}:00+00:00")
    target = landing / session_id
    target.mkdir(parents=True)
    for frame in manifest["frames"]:
        os.link(template / frame["file"], target / frame["file"])
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file under ``root`` but the bookkeeping."""
    out: dict[str, tuple[int, int]] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP_IN_ROOT or not path.is_file():
            continue
        st = path.stat()
        out[str(rel)] = (st.st_size, st.st_mtime_ns)
    return out


def written(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """Bytes and files new or rewritten between two snapshots."""
    changed = [v for k, v in after.items() if before.get(k) != v]
    return sum(size for size, _ in changed), len(changed)


def run_layer(paths: Any, day: str, layer: str) -> None:
    """One Dagster run of ``layer`` for ``day`` (what ``sensorfleet pipeline run --select`` does)."""
    from pipelines.runner import run_pipeline

    summary = run_pipeline(paths, select=[layer], days=[day], force=True)
    errors = [f"{d.day}: {d.error}" for d in summary.days if d.error]
    if errors:
        raise RuntimeError(f"layer {layer} failed: {'; '.join(errors)}")


def layer_costs(work: Path, template: Path, tiny: Path, sessions: int, warm: bool = True) -> dict[str, Any]:
    """Per layer: cost of a day of ``sessions`` clones of ``template``, per session, and of a day
    of one ``tiny`` session (the per-run overhead; not with ``warm`` False, which also skips the
    warm-up: the quick mode); bytes and files written per session."""
    from sensorfleet.config import Paths

    root, landing = work / "layers" / "data", work / "layers" / "landing"
    for i in range(sessions):
        clone_session(template, landing, DAY, i)
    clone_session(tiny, landing, TINY_DAY, 0)
    clone_session(tiny, landing, WARM_DAY, 0)
    paths = Paths(root=root, landing=landing)
    for layer in LAYERS if warm else ():  # warm-up: imports, numba's cache, the instance
        run_layer(paths, WARM_DAY, layer)
    rows: dict[str, Any] = {}
    for layer in LAYERS:
        before = files_under(root)
        cost = measure(lambda layer=layer: run_layer(paths, DAY, layer))
        nbytes, nfiles = written(before, files_under(root))
        overhead = measure(lambda layer=layer: run_layer(paths, TINY_DAY, layer)) if warm else None
        rows[layer] = {
            "day_wall_s": cost.wall_s, "day_cpu_s": cost.cpu_s,
            "wall_s_per_session": cost.wall_s / sessions, "cpu_s_per_session": cost.cpu_s / sessions,
            "run_overhead_wall_s": overhead and overhead.wall_s, "run_overhead_cpu_s": overhead and overhead.cpu_s,
            "bytes_per_session": nbytes / sessions, "files_per_session": nfiles / sessions,
        }
    return rows


def scoring_per_session() -> dict[str, Any] | None:
    """Scoring cost per session from the models benchmark's result (one feature row a session)."""
    path = RESULTS_DIR / "models.json"
    if not path.is_file():
        return None
    scoring = json.loads(path.read_text()).get("scoring") or {}
    if not scoring.get("rows_per_s"):
        return None
    return {"source": "benchmarks/results/models.json (scoring)", "rows_per_s": scoring["rows_per_s"],
            "cpu_s_per_session": 1.0 / scoring["rows_per_s"], "bytes_per_session": None}


def partition_child(root: str, landing: str, day: str, core: int, warm: bool = True) -> None:
    """The body of one partition process: pinned to ``core``, warm up on a tiny day of its own,
    say ``ready`` and wait for ``go`` on stdin (all partitions start together), then run the day's
    graph up to the features; print its wall and CPU seconds as JSON."""
    os.sched_setaffinity(0, {core})
    from pipelines.runner import run_pipeline
    from sensorfleet.config import Paths

    paths = Paths(root=Path(root), landing=Path(landing))
    if warm:
        run_pipeline(paths, select=list(LAYERS), days=[warm_day(day)], force=True)  # imports, numba's cache
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    cost = measure(lambda: run_pipeline(paths, select=list(LAYERS), days=[day], force=True))
    print(json.dumps({"day": day, "core": core, "wall_s": cost.wall_s, "cpu_s": cost.cpu_s,
                      "start_epoch_s": start, "end_epoch_s": time.time()}), flush=True)


def warm_day(day: str) -> str:
    """The tiny warm-up day of the partition process of ``day`` (one per process: two processes
    warming up on one day would wait for each other on its run lock)."""
    return day.replace("2026-04-", "2026-05-")


def concurrent_partitions(work: Path, template: Path, tiny: Path, n: int, sessions: int,
                          warm: bool = True) -> dict[str, Any]:
    """``n`` capture days of ``sessions`` sessions each, one process per day pinned to its own
    core, started together; throughput over the wall time of the slowest."""
    base = work / f"scale-{n}"
    landing, root = base / "landing", base / "data"
    days = [f"2026-04-{10 + i:02d}" for i in range(n)]
    for day in days:
        for i in range(sessions):
            clone_session(template, landing, day, i)
        clone_session(tiny, landing, warm_day(day), 0)
    # the instance's tables once, before the processes share it (two processes creating the
    # SQLite tables at once collide; a production instance is Postgres, deploy/dagster.yaml)
    from pipelines.runner import prepare_instance
    from sensorfleet.config import Paths

    prepare_instance(Paths(root=root, landing=landing)).dispose()
    cores = sorted(os.sched_getaffinity(0))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_fleet_scale", "--partition-child",
                               str(root), str(landing), day, str(cores[i % len(cores)]), str(int(warm))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for i, day in enumerate(days)]
    try:
        for p in procs:  # every process warmed up: start them together
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a partition process failed while warming up (exit {p.wait()})")
        for p in procs:  # all of them before waiting for any
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate()[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a partition process failed: exit codes {[p.returncode for p in procs]}")
    children = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    shutil.rmtree(base)
    # from the first start to the last end of the measured runs (not the interpreters' exits)
    span = max(c["end_epoch_s"] for c in children) - min(c["start_epoch_s"] for c in children)
    cpu = sum(c["cpu_s"] for c in children)
    return {"partitions": n, "sessions_per_partition": sessions, "wall_s": span,
            "sessions_per_s": n * sessions / span, "cpu_s_per_session": cpu / (n * sessions),
            "start_skew_s": max(c["start_epoch_s"] for c in children) - min(c["start_epoch_s"] for c in children),
            "children": children}


def scaling(work: Path, template: Path, tiny: Path, sessions: int, repeats: int, warm: bool = True) -> dict[str, Any]:
    """N = 1 and N = 2 concurrent partitions, alternated ``repeats`` times (drift on a shared
    machine hits both alike); the median throughput of each and the median of the per-pair ratios."""
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    ratios = []
    for _ in range(repeats):
        for n in (1, 2):
            runs[n].append(concurrent_partitions(work, template, tiny, n, sessions, warm))
        ratios.append(runs[2][-1]["sessions_per_s"] / runs[1][-1]["sessions_per_s"])
    return {
        "sessions_per_s": {str(n): statistics.median(r["sessions_per_s"] for r in runs[n]) for n in runs},
        "cpu_s_per_session": {str(n): statistics.median(r["cpu_s_per_session"] for r in runs[n]) for n in runs},
        "ratio_2_vs_1": statistics.median(ratios), "ratios": ratios, "runs": {str(n): runs[n] for n in runs},
    }


SESSIONS_PER_DAY = (10_000, 100_000)
NODE_CORES = 16
"""Cores of one run node in the derived sizing (a common cloud size; scale linearly)."""
TARGET_UTILIZATION = 0.7
"""Share of a node's cores the sizing plans to keep busy (headroom for retries and backfills)."""
DAY_S = 86_400.0


def derive_sizing(payload: dict[str, Any]) -> dict[str, Any]:
    """Machines, storage and object-store requests for ``SESSIONS_PER_DAY`` from the measured
    per-session figures of ``payload`` (docs/operations.md#sizing explains each line).

    CPU: the sum of the layers' CPU seconds per session (plus scoring when measured). Storage: the
    bytes each layer adds per session (landing input counted apart). PUT requests: the files each
    layer writes per session (one file = one object); GET requests: the landing files (ingest
    reads each), the capture objects read back by characterization, and the edge-chart share of
    them read by optics (the tables are read per day, not per session); bytes moved likewise.
    """
    from sensorfleet.synth.fleet import FleetConfig

    layers = payload["layers"]
    cpu_s = sum(v["cpu_s_per_session"] for v in layers.values()) + ((payload.get("scoring") or {}).get("cpu_s_per_session") or 0.0)
    stored = sum(v["bytes_per_session"] for v in layers.values())
    puts = sum(v["files_per_session"] for v in layers.values())
    frames = payload["session_shape"]["frames"]
    chart_share = FleetConfig(modules=1).chart_frames / frames
    captures_files = layers["captures"]["files_per_session"]
    gets = payload["landing"]["files_per_session"] + captures_files * (1.0 + chart_share)
    # read the landing, write every layer, read the captures back (characterization, optics' share)
    moved = payload["landing"]["bytes_per_session"] + stored + layers["captures"]["bytes_per_session"] * (1.0 + chart_share)
    out: dict[str, Any] = {"cpu_s_per_session": cpu_s, "stored_bytes_per_session": stored,
                           "put_per_session": puts, "get_per_session": gets,
                           "object_store_bytes_moved_per_session": moved, "node_cores": NODE_CORES,
                           "target_utilization": TARGET_UTILIZATION, "per_day": {}}
    for n in SESSIONS_PER_DAY:
        cores = n * cpu_s / DAY_S / TARGET_UTILIZATION
        out["per_day"][str(n)] = {
            "core_hours": n * cpu_s / 3600, "cores_busy": cores, "nodes": max(1, -(-cores // NODE_CORES)),
            "one_node_hours_for_the_day": n * cpu_s / NODE_CORES / 3600,
            "stored_tb_per_day": n * stored / 1e12, "stored_pb_per_year": 365 * n * stored / 1e15,
            "landing_tb_per_day": n * payload["landing"]["bytes_per_session"] / 1e12,
            "put_per_s": n * puts / DAY_S, "get_per_s": n * gets / DAY_S,
            "object_store_gb_per_s": n * moved / DAY_S / 1e9,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="320 x 240, one repeat, write nothing")
    ap.add_argument("--sessions", type=int, default=2, help="sessions per capture day")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the scaling measurement")
    ap.add_argument("--derive", action="store_true",
                    help="print the sizing derived from benchmarks/results/fleet_scale.json and add it there")
    ap.add_argument("--partition-child", nargs=5, metavar=("ROOT", "LANDING", "DAY", "CORE", "WARM"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.partition_child:
        root, landing, day, core, warm = args.partition_child
        partition_child(root, landing, day, int(core), warm == "1")
        return {}
    if args.derive:
        payload = json.loads((RESULTS_DIR / "fleet_scale.json").read_text())
        payload["sizing"] = derive_sizing(payload)
        print(json.dumps(payload["sizing"], indent=2))
        write_results("fleet_scale", payload)
        return payload
    width, height = (320, 240) if args.quick else (4000, 3000)
    repeats = 1 if args.quick else args.repeats
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        template = generate_template(work / "template", width, height)
        tiny = generate_template(work / "tiny", 64, 48)
        generate_s = time.perf_counter() - t0
        landing_files = [p for p in template.iterdir() if p.is_file()]
        landing = {"bytes_per_session": sum(p.stat().st_size for p in landing_files),
                   "files_per_session": len(landing_files), "generate_s": generate_s}
        print(f"session: {width} x {height}, {landing['files_per_session']} files, "
              f"{landing['bytes_per_session'] / 1e9:.2f} GB raw; generated in {generate_s:.0f} s", flush=True)
        layers = layer_costs(work, template, tiny, args.sessions, warm=not args.quick)
        print_table([{"layer": k, **v} for k, v in layers.items()],
                    ["layer", "wall_s_per_session", "cpu_s_per_session", "run_overhead_cpu_s",
                     "bytes_per_session", "files_per_session"])
        scale = scaling(work, template, tiny, args.sessions, repeats, warm=not args.quick)
    scoring = scoring_per_session()
    load_after = os.getloadavg()
    print(f"throughput (sessions/s): 1 partition {scale['sessions_per_s']['1']:.3g}, 2 partitions "
          f"{scale['sessions_per_s']['2']:.3g}; ratio {scale['ratio_2_vs_1']:.2f} (runs {scale['ratios']})")
    print(f"load average before {load_before}, after {load_after}")
    payload = {
        "machine": machine_info(), "load_average_before": load_before, "load_average_after": load_after,
        "memcpy_gbps_1_thread": memcpy_bandwidth(256 << 20, threads=1, repeats=5) / 1e9,
        "session_shape": {"width": width, "height": height, "frames": landing["files_per_session"] - 1},
        "sessions_per_day_measured": args.sessions, "landing": landing, "layers": layers,
        "scoring": scoring, "scaling": scale,
    }
    payload["sizing"] = derive_sizing(payload)
    if not args.quick:
        print("wrote", write_results("fleet_scale", payload))
    return payload


if __name__ == "__main__":
    main()
