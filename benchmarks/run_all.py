"""Run every benchmark, one after the other, each in a fresh process.

A fresh process per benchmark keeps their figures apart: peak RSS is per process, and one
benchmark's compiled kernels, caches and allocations do not weigh on the next.

Run: ``python -m benchmarks.run_all [--quick] [--only NAME ...]``. Without ``--quick`` each
benchmark runs at its full size and writes ``benchmarks/results/<name>.json`` (tens of minutes
on 2 cores); ``--quick`` runs each at its small size (1000 x 750) and writes nothing, to check
that they all still run. Exits non-zero when any benchmark failed, after running the others.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS: tuple[str, ...] = (
    "cli", "decode", "chunking", "ingest", "pass_kernel", "characterize", "warehouse", "features", "spatial", "models",
    "sfr", "optics_cost", "uncertainty", "stations", "plan_study", "fleet_scale", "emva_path", "demo_cost",
)
"""Every ``benchmarks/bench_<name>.py``, cheapest first; each takes ``--quick``."""


def command(name: str, quick: bool) -> list[str]:
    """The command line that runs benchmark ``name``."""
    return [sys.executable, "-m", f"benchmarks.bench_{name}", *(["--quick"] if quick else [])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="each benchmark at its small size; write no result files")
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                    help=f"run only these (choices: {', '.join(BENCHMARKS)})")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    failed: list[str] = []
    for name in args.only or BENCHMARKS:
        print(f"== bench_{name}{' (quick)' if args.quick else ''}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command(name, args.quick), cwd=repo)
        print(f"== bench_{name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
