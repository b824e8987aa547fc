"""What a command costs before it does any work: every ``--help``, and a re-run of the demo
fleet with nothing new; this tree against a base commit, in the same run.

``python -m benchmarks.bench_cli [--base REV] [--repeats R] [--quick]``

The base tree is ``git archive REV`` unpacked in a temporary folder (no worktree registered,
nothing stashed); both trees run in fresh processes with this interpreter, ``PYTHONPATH`` set to
the tree. ``--base`` defaults to the merge base of HEAD and ``main`` (where this branch left it).
Timings are medians of R runs after one warm-up. The re-run: ``sensorfleet demo`` of 24 modules
(128 x 96: the cost measured is per day and per session, not per pixel; 13 capture days, the
planted broken session included) run once by this tree, then ``pipeline run`` over it again by
this tree (median of R) and by the base tree (median of R, after this tree's, since the base's
runs record no code versions and would make this tree's days stale). Targets: every ``--help``
< 0.5 s, the re-run < 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks._common import machine_info, print_table, write_results

REPO = Path(__file__).resolve().parents[1]
CLI = "from pipelines.cli import app; app()"
HELPS: tuple[tuple[str, ...], ...] = (
    ("--help",), ("demo", "--help"), ("features", "--help"), ("import-emva", "--help"), ("pipeline", "--help"),
    ("pipeline", "run", "--help"), ("sql", "--help"), ("synth", "--help"),
)
DEMO = ("--modules", "24", "--width", "128", "--height", "96", "--seed", "0")


def base_revision() -> str:
    done = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "HEAD~1"


def unpack(revision: str, into: Path) -> Path:
    """The tree of ``revision`` as plain files under ``into`` (``git archive``)."""
    archive = into / "base.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "archive", "--format=tar", revision], cwd=REPO, stdout=out, check=True)
    tree = into / "base"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def cli_seconds(tree: Path, args: tuple[str, ...], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``sensorfleet ARGS`` run from ``tree`` (fresh process each)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSORFLEET_")}
    env["PYTHONPATH"] = str(tree)
    times = []
    for index in range(warmup + repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CLI, *args], cwd=tree, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode not in (0, 1):  # 1: a run that reports a failure is still a timing
            raise RuntimeError(f"{tree}: sensorfleet {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        if index >= warmup:
            times.append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default=None, help="revision to compare with (default: merge base with main)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats (1 for the base re-run); no result file")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    base_rev = args.base or base_revision()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = unpack(base_rev, Path(tmp))
        for help_args in HELPS:
            before = statistics.median(cli_seconds(base, help_args, repeats))
            after = statistics.median(cli_seconds(REPO, help_args, repeats))
            rows.append({"command": "sensorfleet " + " ".join(help_args), "before_s": before, "after_s": after,
                         "speedup": before / after, "target_s": 0.5, "ok": after < 0.5})
        root = Path(tmp) / "fleet"
        first = cli_seconds(REPO, ("demo", "--root", str(root), *DEMO), 1, warmup=0)[0]
        rerun = ("pipeline", "run", "--root", str(root))
        after = statistics.median(cli_seconds(REPO, rerun, repeats, warmup=0))
        before = statistics.median(cli_seconds(base, rerun, 1 if args.quick else 3, warmup=0))
        days = len([p for p in (root / "tables" / "sessions").glob("capture_date=*")])
        rows.append({"command": f"pipeline run, nothing new ({days} days; first run {first:.0f} s)",
                     "before_s": before, "after_s": after, "speedup": before / after, "target_s": 5.0, "ok": after < 5.0})
    print(f"base {base_rev[:12]} vs this tree; medians of {repeats}")
    print_table(rows, ["command", "before_s", "after_s", "speedup", "target_s", "ok"])
    if not args.quick:
        write_results("cli", {"machine": machine_info(), "base": base_rev, "repeats": repeats, "rows": rows})
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
