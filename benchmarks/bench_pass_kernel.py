"""The per-pixel pass against the machine's read bandwidth, measured interleaved in one process.

The figure of issue 4 ("Fast"): :func:`sensorfleet.emva.maps.per_pixel_pass` on an in-memory
(96, 3000, 4000) uint16 session (``bench_characterize.make_session``) in input GB/s, over the read
bandwidth of the same stack measured by :func:`sensorfleet.emva.kernels.sum_block_reference` (a
compiled parallel sum, same threads). On a shared machine both drift, so every repeat times the
reference right before the pass and the fraction is taken per repeat (``t_ref / t_pass``); the
median over repeats is the figure. Also reported: the kernel-only time of the pass
(``PassResult.compute_s``), the same stack summed as long contiguous streams
(:func:`~sensorfleet.emva.kernels.sum_stream_reference`, the stricter baseline), and the small-sensor case: the EMVA sample data set 003 (302 frames,
640 x 480) when ``../shared/data`` has it, else a synthetic session of the same size.

Run: ``python -m benchmarks.bench_pass_kernel [--repeats 7] [--quick] [--small-only] [--ab REV]``
(``--ab REV``: the pass with ``reduce_block`` from git revision REV, alternating with this one). Writes
``benchmarks/results/pass_kernel.json`` unless ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from benchmarks._common import machine_info, print_table, write_results
from benchmarks.bench_characterize import make_session
from sensorfleet.manifest import Manifest

REPO = Path(__file__).resolve().parent.parent


def interleaved(frames: np.ndarray, manifest: Manifest, repeats: int) -> dict[str, Any]:
    """Reference sum and per-pixel pass timed alternately ``repeats`` times (after one warm-up)."""
    from sensorfleet.emva import kernels
    from sensorfleet.emva.maps import per_pixel_pass

    nbytes = frames.nbytes
    flat = frames.reshape(-1)
    kernels.sum_block_reference(frames)
    kernels.sum_stream_reference(flat, 64)
    per_pixel_pass(frames, manifest)
    stream_s: list[float] = []
    ref_s: list[float] = []
    pass_s: list[float] = []
    kernel_s: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        kernels.sum_block_reference(frames)
        ref_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = per_pixel_pass(frames, manifest)
        pass_s.append(time.perf_counter() - t0)
        kernel_s.append(res.compute_s)
        t0 = time.perf_counter()
        kernels.sum_stream_reference(flat, 64)
        stream_s.append(time.perf_counter() - t0)
    fractions = [r / p for r, p in zip(ref_s, pass_s, strict=True)]
    return {
        "input_bytes": nbytes,
        "shape": list(frames.shape),
        "threads": numba.get_num_threads(),
        "read_gbps_runs": [nbytes / t / 1e9 for t in ref_s],
        "pass_gbps_runs": [nbytes / t / 1e9 for t in pass_s],
        "fraction_runs": fractions,
        "read_gbps": nbytes / statistics.median(ref_s) / 1e9,
        "pass_gbps": nbytes / statistics.median(pass_s) / 1e9,
        "pass_s": statistics.median(pass_s),
        "kernel_s": statistics.median(kernel_s),
        "kernel_gbps": nbytes / statistics.median(kernel_s) / 1e9,
        "fraction_of_read_bandwidth": statistics.median(fractions),
        "fraction_best": max(fractions),
        # the same stack read as 64 long contiguous streams: the bandwidth the row-wise reference
        # leaves on the table; the pass over it is the stricter figure
        "stream_read_gbps": nbytes / statistics.median(stream_s) / 1e9,
        "fraction_of_stream_bandwidth": statistics.median(
            [(nbytes / p) / (nbytes / s) for p, s in zip(pass_s, stream_s, strict=True)]),
    }


def ab_against(rev: str, frames: np.ndarray, manifest: Manifest, repeats: int) -> dict[str, Any]:
    """The pass with ``kernels.reduce_block`` of git revision ``rev`` against the working tree's,
    alternately, each beside the reference sum: the speed-up and both fractions under the same load."""
    import importlib.util
    import inspect
    import subprocess

    from sensorfleet.emva import kernels, maps
    from sensorfleet.emva.maps import per_pixel_pass

    source = subprocess.run(["git", "show", f"{rev}:sensorfleet/emva/kernels.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmpdir:
        path = Path(tmpdir) / "kernels_ab.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("kernels_ab", path)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    old_reduce = old.reduce_block
    if any(q.kind is inspect.Parameter.VAR_POSITIONAL for q in inspect.signature(old_reduce).parameters.values()):
        # a revision before the typed plan: its kernel takes the plan's fields positionally
        def old_reduce(plan: Any) -> None:
            old.reduce_block(*kernels.kernel_args(plan))
    variants = {"old": old_reduce, "new": kernels.reduce_block}
    times: dict[str, list[float]] = {"ref": [], "old": [], "new": []}
    try:
        for rep in range(repeats + 1):
            t0 = time.perf_counter()
            kernels.sum_block_reference(frames)
            t_ref = time.perf_counter() - t0
            for name, fn in variants.items():
                maps.kernels.reduce_block = fn  # type: ignore[attr-defined]
                t0 = time.perf_counter()
                per_pixel_pass(frames, manifest)
                if rep:
                    times[name].append(time.perf_counter() - t0)
            if rep:
                times["ref"].append(t_ref)
    finally:
        maps.kernels.reduce_block = variants["new"]  # type: ignore[attr-defined]
    return {
        "rev": rev,
        "speedup_new_over_old": statistics.median(o / n for o, n in zip(times["old"], times["new"], strict=True)),
        "fraction_old": statistics.median(r / o for r, o in zip(times["ref"], times["old"], strict=True)),
        "fraction_new": statistics.median(r / n for r, n in zip(times["ref"], times["new"], strict=True)),
        "runs_s": times,
    }


def small_session(tmp: Path) -> tuple[np.ndarray, Manifest, str]:
    """EMVA data set 003 decoded (when present), else a synthetic 640 x 480 x 302-frame session."""
    sys.path.insert(0, str(REPO / "tests" / "emva"))
    try:
        import reference_harness as rh

        if rh.DATA_003.is_dir():
            frames, manifest, _ = rh.load_as_session(rh.DATA_003, tmp / "landing", session_id="emva-003")
            return frames, manifest, "emva1288-reference-003"
    except ImportError:
        pass
    frames, manifest = make_session(640, 480, 47, 100)
    return frames, manifest, "synthetic 640x480x302"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="1000 x 750 instead of 4000 x 3000, write nothing")
    ap.add_argument("--small-only", action="store_true", help="only the 640 x 480 case")
    ap.add_argument("--ab", metavar="REV", help="also time the pass with reduce_block from git revision REV")
    args = ap.parse_args(argv)
    payload: dict[str, Any] = {"machine": machine_info()}
    rows = []
    if not args.small_only:
        width, height = (1000, 750) if args.quick else (4000, 3000)
        frames, manifest = make_session(width, height, 12, 32)
        big = interleaved(frames, manifest, args.repeats)
        payload["in_memory_12mp" if not args.quick else "in_memory_quick"] = big
        rows.append({"case": f"{width}x{height}x{frames.shape[0]}", **_row(big)})
        if args.ab:
            ab = ab_against(args.ab, frames, manifest, args.repeats)
            payload["ab"] = ab
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in ab.items() if k != "runs_s"})
        del frames
    with tempfile.TemporaryDirectory(prefix="bench-pass-") as tmpdir:
        frames, manifest, name = small_session(Path(tmpdir))
    small = interleaved(frames, manifest, max(args.repeats, 9))
    small["data"] = name
    payload["small_sensor"] = small
    rows.append({"case": name, **_row(small)})
    print_table(rows, ["case", "read GB/s", "stream GB/s", "pass GB/s", "kernel GB/s", "pass s", "fraction", "best",
                      "of stream"])
    cases = [payload[k] for k in ("in_memory_12mp", "in_memory_quick", "small_sensor") if k in payload]
    print("fraction per run:", {r["case"]: [round(f, 3) for f in c["fraction_runs"]] for r, c in zip(rows, cases, strict=True)})
    if not args.quick:
        print("wrote", write_results("pass_kernel", payload))
    return payload


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"read GB/s": r["read_gbps"], "stream GB/s": r["stream_read_gbps"], "pass GB/s": r["pass_gbps"], "kernel GB/s": r["kernel_gbps"],
            "pass s": r["pass_s"], "fraction": r["fraction_of_read_bandwidth"], "best": r["fraction_best"],
            "of stream": r["fraction_of_stream_bandwidth"]}


if __name__ == "__main__":
    main()
