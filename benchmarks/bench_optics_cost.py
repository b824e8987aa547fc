"""Per-module cost of the optics step against the EMVA characterization of the same modules.

A synthetic fleet with edge charts (``sensorfleet synth --edge-charts``: 4 chart frames, the
standard capture plan, RGGB RAW12 as ``npy``) is generated and ingested at each size; then the two
day runners the pipeline calls are timed over the same day, interleaved (EMVA day, optics day,
EMVA day, ...), one worker process each, as the Dagster assets run them:

- EMVA: :func:`sensorfleet.emva.characterize_day` (frames from zarr, the per-pixel pass, the
  analysis, the maps group written and published, the day's table partitions); its maps groups
  are removed before each run so every session is computed;
- optics: :func:`sensorfleet.optics.characterize_optics_day` (frames from zarr, chart averaging,
  square search, e-SFR of every edge and channel, shading from the flats, rows, the day's ``sfr``
  and ``module_optics`` partitions and the SFR curves).

Per module: the wall and CPU (process, all threads) seconds between the runners' progress calls
(one per session), plus the day's closing work (gathering and writing the partitions) divided by
the modules; medians over modules and repeats. The figure of merit is the ratio optics / EMVA of
the CPU cost (the step's cost; the EMVA pass uses every core while the optics run on one).

``--baseline REF`` also runs the core package (``sensorfleet/``) of git commit ``REF`` on the same
fleet, each variant in its own process, alternating variant by variant for ``--rounds`` rounds,
so the optics cost is compared before and after in the same run (the EMVA step, the same code in
both, is the yardstick of the machine's speed).

Sizes: 640 x 480 and 320 x 240 with ``--modules`` modules, and 12 MP (4000 x 3000) in a reduced
form, ``--large-modules`` modules (default 1: ~2.5 GB of temporary files, ~3 s of EMVA per run).

Run: ``python -m benchmarks.bench_optics_cost [--baseline REF] [--sizes 640x480,320x240,4000x3000]
[--modules N] [--large-modules N] [--rounds N] [--repeats N] [--quick]``; writes
``benchmarks/results/optics_cost.json`` unless ``--quick`` (320 x 240, 3 modules, 1 round of 2
repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._common import machine_info, print_table, write_results

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-03-02"
TARGET_RATIO = 0.10
#: sizes of more pixels than this are measured with ``--large-modules`` modules
LARGE_PIXELS = 4_000_000


def build_fleet(base: Path, modules: int, width: int, height: int) -> Path:
    """Generate and ingest a fleet with edge charts under ``base``; return its captures folder."""
    from sensorfleet.config import Paths
    from sensorfleet.ingest import ingest_day
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    paths = Paths(root=base / "data", landing=base / "landing")
    config = FleetConfig(modules=modules, seed=21, width=width, height=height, edge_charts=True,
                         fault_fraction=0.0, pixel_format="npy", start=datetime(2026, 3, 2, 6, tzinfo=UTC),
                         span_days=0.2)
    generate_fleet(config, paths.landing, base / "truth")
    ingest_day(paths, DAY, workers=1)
    shutil.rmtree(paths.landing)  # the raw files are not read again (GB at 12 MP)
    return paths.captures


def _timed_day(run: Callable[[Callable[[int, int, str], None]], object]) -> tuple[list[tuple[float, float]], float, float]:
    """(per-session (wall, cpu) seconds, closing wall, closing cpu) of one day runner call."""
    stamps = [(time.perf_counter(), time.process_time())]
    run(lambda done, total, sid: stamps.append((time.perf_counter(), time.process_time())))
    end = (time.perf_counter(), time.process_time())
    per = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
    return per, end[0] - stamps[-1][0], end[1] - stamps[-1][1]


def child(captures: Path, root: Path, repeats: int) -> dict[str, Any]:
    """Time the two day runners of whatever ``sensorfleet`` this process imports (one warm-up run
    each, then ``repeats`` interleaved runs); per-module seconds of each run."""
    import sensorfleet
    from sensorfleet.config import Paths
    from sensorfleet.emva import characterize_day
    from sensorfleet.optics import characterize_optics_day

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "captures").symlink_to(captures.resolve(), target_is_directory=True)
    paths = Paths(root=root, landing=root / "landing")
    out: dict[str, Any] = {"emva": [], "optics": [], "sensorfleet": str(sensorfleet.__file__)}

    def emva(progress: Callable[[int, int, str], None]) -> object:
        return characterize_day(paths, DAY, workers=1, progress=progress)

    def optics(progress: Callable[[int, int, str], None]) -> object:
        return characterize_optics_day(paths, DAY, workers=1, progress=progress)

    for k in range(repeats + 1):
        for name, run in (("emva", emva), ("optics", optics)):
            for group in (paths.maps / DAY).glob("*.zarr") if name == "emva" else ():
                shutil.rmtree(group)  # every session computed, none skipped as current
            per, close_wall, close_cpu = _timed_day(run)
            if k:  # the first run of each is the warm-up (numba cache load, imports)
                n = len(per)
                out[name].append({"wall_s": [w + close_wall / n for w, _ in per],
                                  "cpu_s": [c + close_cpu / n for _, c in per],
                                  "closing_wall_s": close_wall, "closing_cpu_s": close_cpu})
    return out


def _variant_source(ref: str, into: Path) -> Path:
    """The ``sensorfleet/`` package of commit ``ref`` unpacked under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref, "sensorfleet"],
                             check=True, capture_output=True).stdout
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    tar_path.unlink()
    return into


def run_child(source: Path, captures: Path, root: Path, repeats: int) -> dict[str, Any]:
    """:func:`child` in a fresh process importing ``sensorfleet`` from ``source``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(source), str(REPO)]))
    # run from the root, not the repository: ``-m`` puts the working directory first on sys.path
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_optics_cost", "--child", str(captures),
                           "--child-root", str(root), "--repeats", str(repeats)],
                          check=True, capture_output=True, text=True, env=env, cwd=str(root.parent))
    result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    if Path(result["sensorfleet"]).resolve().parent.parent != source.resolve():
        raise RuntimeError(f"the child imported {result['sensorfleet']}, expected the package under {source}")
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over modules and repeats of every run of one variant, and the ratios."""
    out: dict[str, Any] = {}
    for step in ("emva", "optics"):
        for kind in ("wall_s", "cpu_s"):
            out[f"{step}_{kind}"] = statistics.median(v for run in runs for rep in run[step] for v in rep[kind])
        out[f"{step}_closing_wall_s"] = statistics.median(rep["closing_wall_s"] for run in runs for rep in run[step])
    out["ratio_cpu"] = out["optics_cpu_s"] / out["emva_cpu_s"]
    out["ratio_wall"] = out["optics_wall_s"] / out["emva_wall_s"]
    # per repeat: the ratio within one interleaved pair (the machine's drift cancels)
    pairs = [statistics.median(o["cpu_s"]) / statistics.median(e["cpu_s"])
             for run in runs for e, o in zip(run["emva"], run["optics"], strict=True)]
    out["ratio_cpu_per_repeat"] = pairs
    out["ratio_cpu_median_of_repeats"] = statistics.median(pairs)
    return out


def measure_size(width: int, height: int, args: argparse.Namespace, variants: dict[str, Path],
                 tmp: Path) -> dict[str, Any]:
    """Every variant on one fleet, alternating for ``args.rounds`` rounds."""
    t0 = time.perf_counter()
    modules = args.large_modules if width * height > LARGE_PIXELS else args.modules
    captures = build_fleet(tmp / f"fleet-{width}x{height}", modules, width, height)
    build_s = time.perf_counter() - t0
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, source in variants.items():
            runs[name].append(run_child(source, captures, tmp / f"root-{name}", args.repeats))
    record: dict[str, Any] = {"width": width, "height": height, "modules": modules, "fleet_build_s": build_s,
                              "variants": {name: summarize(r) for name, r in runs.items()}, "runs": runs}
    if "baseline" in record["variants"]:
        new, old = record["variants"]["current"], record["variants"]["baseline"]
        record["optics_cpu_current_vs_baseline"] = new["ratio_cpu"] / old["ratio_cpu"]
    record["meets_target"] = record["variants"]["current"]["ratio_cpu"] < TARGET_RATIO
    return record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="640x480,320x240,4000x3000", help="WIDTHxHEIGHT,... of the fleets")
    parser.add_argument("--modules", type=int, default=6)
    parser.add_argument("--large-modules", type=int, default=1,
                        help=f"modules of the fleets of more than {LARGE_PIXELS} pixels")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the variants")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved day runs per variant and round")
    parser.add_argument("--baseline", default=None, help="git commit whose sensorfleet/ is the 'before'")
    parser.add_argument("--quick", action="store_true", help="320 x 240, 3 modules, 1 round of 2; write nothing")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-root", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        result = child(args.child, args.child_root, args.repeats)
        print(json.dumps(result))
        return result
    if args.quick:
        args.sizes, args.modules, args.rounds, args.repeats = "320x240", 3, 1, 2
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-optics-") as tmpdir:
        tmp = Path(tmpdir)
        variants = {"current": REPO}
        if args.baseline:
            variants["baseline"] = _variant_source(args.baseline, tmp / "baseline-src")
        results = [measure_size(w, h, args, variants, tmp) for w, h in sizes]
    rows = [{"size": f"{r['width']}x{r['height']}", "variant": name, **{k: v[k] for k in (
        "emva_cpu_s", "optics_cpu_s", "ratio_cpu", "emva_wall_s", "optics_wall_s", "ratio_wall")}}
        for r in results for name, v in r["variants"].items()]
    print_table(rows, ["size", "variant", "emva_cpu_s", "optics_cpu_s", "ratio_cpu", "emva_wall_s", "optics_wall_s",
                       "ratio_wall"])
    payload = {"machine": machine_info(), "load_average": os.getloadavg(), "baseline": args.baseline,
               "target_ratio": TARGET_RATIO, "sizes": results}
    if not args.quick:
        print(f"wrote {write_results('optics_cost', payload)}")
    return payload


if __name__ == "__main__":
    main()
