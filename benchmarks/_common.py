"""Shared benchmark helpers: same-run baselines, median timing, memory, result files.

Timings on a shared machine are noisy, so every benchmark reports its figures beside a baseline
measured in the same run (memory-copy bandwidth) and as medians of several runs.

- :func:`memcpy_bandwidth`: bytes copied per second by ``np.copyto`` of a large buffer, with 1 or
  more threads (each thread copies its own slice; numpy releases the GIL while copying). The
  memory traffic is twice that figure (read + write).
- :func:`median_seconds`: median wall time of a callable over ``repeats`` runs after warm-up.
- :func:`peak_rss_bytes` / :func:`rss_bytes`: the process's peak and current resident memory.
- :func:`machine_info`, :func:`write_results`, :func:`print_table`: reporting.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` timed runs after ``warmup`` untimed."""
    return statistics.median(run_seconds(fn, repeats, warmup))


def run_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` runs of ``fn()`` after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def memcpy_bandwidth(nbytes: int = 256 << 20, threads: int = 1, repeats: int = 7) -> float:
    """Median memory-copy bandwidth in bytes copied per second (``nbytes`` per copy).

    ``threads`` threads each copy a contiguous ``nbytes / threads`` slice at the same time.
    The buffers (2 x ``nbytes``) are allocated and touched before timing.
    """
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.zeros(nbytes, dtype=np.uint8)
    bounds = np.linspace(0, nbytes, threads + 1).astype(np.int64)
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if threads == 1:
        seconds = median_seconds(lambda: np.copyto(dst, src), repeats)
    else:
        with ThreadPoolExecutor(threads) as pool:
            def copy_all() -> None:
                list(pool.map(lambda s: np.copyto(dst[s], src[s]), slices))

            seconds = median_seconds(copy_all, repeats)
    return nbytes / seconds


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes (``getrusage`` ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (psutil)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def machine_info() -> dict[str, Any]:
    """Where and with what the benchmark ran (for the result file)."""
    import numba

    return {
        "when_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def write_results(name: str, payload: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``payload`` as ``<results_dir>/<name>.json`` atomically; return the path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(f".json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print ``rows`` as a fixed-width table of ``columns`` (floats with 3 significant digits)."""

    def cell(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    table = [list(columns)] + [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for index, row in enumerate(table):
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))
