"""End-to-end ingest at realistic size: 12 MP (4000 x 3000) 12-bit raw12_mipi frames of a
shot-noise-limited signal (~800 e- at K = 0.5 DN/e-, dark offset 64 DN, read noise 2 DN).

Measures, beside the memory-copy bandwidth of the same run (1 and 2 threads):
- throughput of ``ingest_session`` (read + xxh3-128 + decode + checks + per-frame stats + compress +
  write + publish) in GB/s of raw input file bytes: one session in this process (one core; and
  with its frames on every core, ``threads=None``), and two sessions at once in a warmed-up
  2-process spawn pool, one frame thread each as ``ingest_day`` gives them (both cores; the target
  is >= 0.8 GB/s);
  ``ingest_day`` with ``workers=2`` including the pool start-up, for reference;
- the same from CPU time: 2 x raw bytes / CPU seconds of one session (what two free cores
  would reach; robust against other load on a shared machine);
- the per-stage CPU split of one frame (read, xxh3-128 checksum, decode + stats in one pass, and
  for reference decode and stats apart, compress alone, compress + write), and the compressor
  alone with byte shuffle instead of bitshuffle (speed and ratio of that choice);
- compression ratio: uint16 array bytes / stored bytes (the target is >= 1.9) and raw input
  bytes / stored bytes;
- peak RSS of a fresh process ingesting one 64-frame session (the target is < 1 GiB).

The input files are generated once into a temp folder. Run:
``python -m benchmarks.bench_ingest [--quick] [--frames N] [--repeats N]``; ``--quick`` shrinks
everything (1000 x 750, 8 frames) for a smoke run and writes nothing. The full run writes
``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_info, memcpy_bandwidth, print_table, write_results
from sensorfleet.config import Paths

ELECTRONS, GAIN, OFFSET_DN, READ_NOISE_DN, BIT_DEPTH = 800.0, 0.5, 64.0, 2.0, 12
DAY = "2026-03-14"


def write_session(landing: Path, sid: str, n_frames: int, width: int, height: int, seed: int) -> Path:
    """One landing session of ``n_frames`` shot-noise flat frames (raw12_mipi), points of 8."""
    from sensorfleet.rawio import encode_frame

    rng = np.random.default_rng(seed)
    d = landing / sid
    d.mkdir(parents=True)
    sigma = float(np.hypot(GAIN * np.sqrt(ELECTRONS), READ_NOISE_DN))
    entries = []
    buf = np.empty((height, width), dtype=np.float32)
    for i in range(n_frames):
        rng.standard_normal((height, width), dtype=np.float32, out=buf)
        buf *= sigma
        buf += OFFSET_DN + GAIN * ELECTRONS
        np.clip(np.rint(buf), 0, (1 << BIT_DEPTH) - 1, out=buf)
        name = f"frame_{i:03d}.raw"
        (d / name).write_bytes(encode_frame(buf.astype(np.uint16), "raw12_mipi"))
        point = i // 8  # 8 frames per operating point
        entries.append({"file": name, "kind": "flat", "exposure_s": 0.001 * (point + 1),
                        "photons_per_pixel": ELECTRONS / 0.6})
    if n_frames % 8 == 1:  # keep every operating point at >= 2 frames
        entries[-1]["exposure_s"] = entries[-2]["exposure_s"]
    manifest = {
        "schema_version": 1, "session_id": sid, "module_id": f"M-{sid}", "station_id": "ST-BENCH",
        "captured_at": f"{DAY}T12:00:00+00:00", "temperature_c": 35.0,
        "sensor": {"lot_id": "L", "wafer_id": "W", "die_x": 0, "die_y": 0, "width": width, "height": height,
                   "bit_depth": BIT_DEPTH, "cfa_pattern": "RGGB", "pixel_pitch_um": 1.4},
        "pixel_format": "raw12_mipi", "frames": entries,
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def vm_hwm_bytes() -> int:
    """Peak RSS of this process image (``VmHWM``). Unlike ``getrusage``'s ``ru_maxrss``, which
    Linux carries over ``execve`` from the parent (a forked child of a big parent reports the
    parent's peak), ``VmHWM`` starts afresh with the new image."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _ingest(session_dir: str, root: str, threads: int | None = 1) -> dict[str, Any]:
    """Worker: ingest one session into ``root`` with its frames on ``threads`` threads (None: every
    core); return its figures and this process's peak RSS."""
    from sensorfleet.ingest import ingest_session

    t0, c0 = time.perf_counter(), time.process_time()
    r = ingest_session(Path(session_dir), Paths(root=Path(root), landing=Path(session_dir).parent), threads=threads)
    return {"status": r.status, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "bytes_in": r.bytes_in,
            "bytes_stored": r.bytes_stored, "n_frames": r.n_frames,
            "peak_rss": vm_hwm_bytes()}


def stage_split(session_dir: Path, width: int, height: int, repeats: int) -> dict[str, float]:
    """Median CPU ms per frame of each stage (``time.process_time``: all threads of this
    process, so less sensitive than wall time to other load on the machine). Blosc runs one
    thread, as in the ingest workers."""
    import numcodecs.blosc
    import xxhash
    from numcodecs import Blosc

    from sensorfleet.ingest.framestats import decode_frame_stats, frame_stats
    from sensorfleet.ingest.store import FrameWriter, blosc_compress_ctx, create_frames_group
    from sensorfleet.rawio import decode_frame

    numcodecs.blosc.set_nthreads(1)
    path = session_dir / "frame_000.raw"
    raw = bytearray(path.stat().st_size)
    frame = np.empty((height, width), dtype=np.uint16)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stage_"))
    _, arr = create_frames_group(tmp / "g.zarr", repeats + 1, height, width)
    writer = FrameWriter(arr)
    stages = ("read", "xxh3_128", "decode_stats_fused", "compress_write")
    extra = ("decode_alone", "stats_alone", "compress_alone", "compress_alone_byteshuffle")
    times: dict[str, list[float]] = {k: [] for k in stages + extra}
    bands = [frame[y:y + writer.rows] for y in range(0, height, writer.rows)]
    ctx = blosc_compress_ctx()
    compress_ctx = ctx[0] if ctx is not None else None
    cbuf = np.empty(writer.rows * width * 2 + 16, np.uint8)

    def byte_shuffle(band: np.ndarray) -> int:  # same call as FrameWriter.encode, byte shuffle (1)
        if compress_ctx is None:
            return len(Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=0).encode(band))
        return compress_ctx(5, 1, 2, band.nbytes, band.ctypes.data, cbuf.ctypes.data, cbuf.nbytes, b"lz4", 0, 1)
    stored = {"bitshuffle": 0, "byteshuffle": 0}
    for i in range(repeats + 1):
        t = [time.process_time()]
        with open(path, "rb", buffering=0) as f:
            f.readinto(raw)
        t.append(time.process_time())
        xxhash.xxh3_128_digest(raw)
        t.append(time.process_time())
        decode_frame_stats(raw, "raw12_mipi", width, height, BIT_DEPTH, frame)
        t.append(time.process_time())
        writer.write(i, frame)
        t.append(time.process_time())
        decode_frame(raw, "raw12_mipi", width, height, out=frame)
        t.append(time.process_time())
        frame_stats(frame, BIT_DEPTH)
        t.append(time.process_time())
        stored["bitshuffle"] = sum(len(writer.encode(b)) for b in bands)
        t.append(time.process_time())
        stored["byteshuffle"] = sum(byte_shuffle(b) for b in bands)
        t.append(time.process_time())
        if i:  # first round warms up
            for k, a, b in zip(times, t[:-1], t[1:], strict=True):
                times[k].append((b - a) * 1e3)
    shutil.rmtree(tmp, ignore_errors=True)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["total"] = sum(out[k] for k in stages)
    out["ratio_uint16_bitshuffle"] = frame.nbytes / stored["bitshuffle"]
    out["ratio_uint16_byteshuffle"] = frame.nbytes / stored["byteshuffle"]
    out.update(compress_by_library(bands, repeats))
    return out


def compress_by_library(bands: list[np.ndarray], repeats: int) -> dict[str, Any]:
    """CPU ms per frame of the writer's compression (lz4 + bitshuffle, clevel 5) with each c-blosc
    library found (python-blosc's AVX2 build, numcodecs' SSE2 build), interleaved repeat by
    repeat (alternating order) so that drift of the machine hits both; medians. Same bytes out."""
    from sensorfleet.ingest import store

    ctx = store.blosc_compress_ctx()
    out: dict[str, Any] = {"compress_library": ctx[1] if ctx else "numcodecs Blosc.encode"}
    cbuf = np.empty(bands[0].nbytes + 16, np.uint8)
    fns = [(Path(lib).name, fn) for lib in store.blosc_libraries() if (fn := store.load_compress_ctx(lib)) is not None]
    times: dict[str, list[float]] = {name: [] for name, _ in fns}
    sizes: set[int] = set()
    for rep in range(4 * repeats + 1):
        for name, fn in fns if rep % 2 else fns[::-1]:
            t0 = time.process_time()
            total = sum(fn(store.CLEVEL, 2, 2, b.nbytes, b.ctypes.data, cbuf.ctypes.data, cbuf.nbytes, b"lz4", 0, 1)
                        for b in bands)
            if rep:  # the first round warms up
                times[name].append((time.process_time() - t0) * 1e3)
            sizes.add(total)
    for name, t in times.items():
        out[f"compress_alone_ms[{name}]"] = statistics.median(t)
    out["compress_libraries_same_size"] = len(sizes) <= 1
    return out


def read_back(group: Path, repeats: int) -> dict[str, Any]:
    """A stored session swept band by band (all frames x 512 rows, as the characterization
    reads it) through zarr and through :class:`sensorfleet.ingest.store.FrameReader`, in GB/s of
    uint16 out (wall and CPU time, medians; the bytes must be equal)."""
    import zarr

    from sensorfleet.ingest.store import FrameReader

    arr: Any = zarr.open_group(str(group), mode="r")["frames"]
    reader = FrameReader(arr)
    n, h, _ = arr.shape
    rows = arr.chunks[1]
    out: dict[str, Any] = {}
    for name, src in (("zarr", arr), ("frame_reader", reader)):
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for y0 in range(0, h, rows):
                band = np.asarray(src[0:n, y0:y0 + rows, :])
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        nbytes = arr.nbytes
        out[f"{name}_gb_s"] = nbytes / statistics.median(wall) / 1e9
        out[f"{name}_cpu_gb_s"] = nbytes / statistics.median(cpu) / 1e9
    assert np.array_equal(band, np.asarray(arr[0:n, (h - 1) // rows * rows:, :]))
    return out


def peak_rss_fresh(session_dir: Path, root: Path) -> dict[str, Any]:
    """Ingest ``session_dir`` in a fresh interpreter; its figures and peak RSS."""
    code = ("import json, sys; from benchmarks.bench_ingest import _ingest; "
            "print(json.dumps(_ingest(sys.argv[1], sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", code, str(session_dir), str(root)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(width: int, height: int, n_frames: int, repeats: int, rss_frames: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        landing = work / "landing"
        sessions = [write_session(landing, f"S{i}", n_frames, width, height, seed=i) for i in range(2)]
        warm = write_session(landing, "warm", 2, 64, 48, seed=9)
        raw_per_session = sum(p.stat().st_size for p in sessions[0].glob("*.raw"))
        uint16_per_session = n_frames * width * height * 2
        memcpy_1 = memcpy_bandwidth(threads=1)
        memcpy_2 = memcpy_bandwidth(threads=2)

        roots = iter(range(1 << 30))

        def fresh_root() -> Path:
            # a new folder each time, all deleted at the end: deleting ~1 GB of chunk files between
            # timed runs leaves the kernel freeing (and, on this ext4 mounted with `discard`,
            # trimming) them while the next run is timed
            return work / f"root-{next(roots)}"

        # one core, in this process
        _ingest(str(warm), str(fresh_root()))
        one: list[dict[str, Any]] = []
        for _ in range(repeats):
            root = fresh_root()
            one.append(_ingest(str(sessions[0]), str(root)))
        stored = one[-1]["bytes_stored"]
        # one session in this process, its frames on every core (what an in-process ingest does)
        threaded = [_ingest(str(sessions[0]), str(fresh_root()), None) for _ in range(repeats)]

        # both cores: two sessions at once in a warmed-up spawn pool
        two: list[dict[str, Any]] = []
        ctx = multiprocessing.get_context("spawn")
        from sensorfleet.ingest.day import WORKER_THREADS
        from sensorfleet.parallel import set_threads

        with ProcessPoolExecutor(2, mp_context=ctx, initializer=set_threads, initargs=(WORKER_THREADS,)) as pool:
            list(pool.map(_ingest, [str(warm)] * 2, [str(work / "w0"), str(work / "w1")]))
            for _ in range(repeats):
                root = fresh_root()
                t0 = time.perf_counter()
                res = list(pool.map(_ingest, [str(s) for s in sessions], [str(root)] * 2))
                two.append({"seconds": time.perf_counter() - t0, "results": res})

        # ingest_day, workers=2, including the pool start-up (spawn + imports)
        from sensorfleet.ingest import ingest_day

        shutil.rmtree(warm)
        root = fresh_root()
        t0 = time.perf_counter()
        report = ingest_day(Paths(root=root, landing=landing), DAY, workers=2)
        day_seconds = time.perf_counter() - t0
        assert report.n_ingested == 2, report
        readback = read_back(root / "captures" / DAY / "S0.zarr", repeats)

        split = stage_split(sessions[0], width, height, repeats=5)

        # peak RSS of a fresh process on one long session
        shutil.rmtree(landing)
        rss_session = write_session(landing, "rss", rss_frames, width, height, seed=5)
        rss = peak_rss_fresh(rss_session, fresh_root())
        rss_raw = sum(p.stat().st_size for p in rss_session.glob("*.raw"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    one_s = statistics.median(r["seconds"] for r in one)
    threaded_s = statistics.median(r["seconds"] for r in threaded)
    cpu_s = statistics.median(x["cpu_seconds"] for t in two for x in t["results"])  # pool workers
    two_s = statistics.median(r["seconds"] for r in two)
    result = {
        "benchmark": "ingest",
        "machine": machine_info(),
        "params": {"width": width, "height": height, "frames_per_session": n_frames, "pixel_format": "raw12_mipi",
                   "bit_depth": BIT_DEPTH, "electrons": ELECTRONS, "gain_dn_per_e": GAIN, "offset_dn": OFFSET_DN,
                   "read_noise_dn": READ_NOISE_DN, "repeats": repeats, "rss_frames": rss_frames},
        "memcpy_gb_s": {"1thread": memcpy_1 / 1e9, "2threads": memcpy_2 / 1e9},
        "raw_bytes_per_session": raw_per_session,
        "one_core_gb_s": raw_per_session / one_s / 1e9,
        "one_session_all_cores_gb_s": raw_per_session / threaded_s / 1e9,
        "two_cores_gb_s": 2 * raw_per_session / two_s / 1e9,
        "two_cores_runs_s": [r["seconds"] for r in two],
        "two_cores_gb_s_best": 2 * raw_per_session / min(r["seconds"] for r in two) / 1e9,
        "cpu_seconds_per_session": cpu_s,
        "two_cores_gb_s_cpu_bound": 2 * raw_per_session / cpu_s / 1e9,
        "ingest_day_workers2_gb_s_incl_startup": 2 * raw_per_session / day_seconds / 1e9,
        "ingest_day_seconds": day_seconds,
        "compression_ratio_uint16": uint16_per_session / stored,
        "compression_ratio_raw_input": raw_per_session / stored,
        "stage_cpu_ms_per_frame": split,
        "read_back_band_sweep": readback,
        "peak_rss_bytes": {"frames": rss_frames, "raw_input_bytes": rss_raw, "peak_rss": rss["peak_rss"],
                           "status": rss["status"]},
        "worker_peak_rss_bytes": max(r["peak_rss"] for t in two for r in t["results"]),
        "targets": {"two_cores_gb_s": 0.8, "compression_ratio_uint16": 1.9, "peak_rss_bytes": 1 << 30},
    }
    result["two_cores_vs_memcpy_2threads"] = result["two_cores_gb_s"] / result["memcpy_gb_s"]["2threads"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1000x750, 8 frames, 1 repeat; writes no result file")
    ap.add_argument("--frames", type=int, default=32, help="frames per session (throughput runs)")
    ap.add_argument("--rss-frames", type=int, default=64, help="frames of the peak-RSS session")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.quick:
        res = run(1000, 750, 8, 1, 8)
    else:
        res = run(4000, 3000, args.frames, args.repeats, args.rss_frames)
    t = res["targets"]
    print(f"memcpy GB/s 1 thread {res['memcpy_gb_s']['1thread']:.2f}, 2 threads {res['memcpy_gb_s']['2threads']:.2f}")
    print_table([
        {"figure": "throughput 1 core (GB/s raw in)", "value": res["one_core_gb_s"], "target": ""},
        {"figure": "one session, frames on every core", "value": res["one_session_all_cores_gb_s"], "target": ""},
        {"figure": "throughput 2 cores (GB/s raw in)", "value": res["two_cores_gb_s"], "target": t["two_cores_gb_s"]},
        {"figure": "throughput 2 cores, best run", "value": res["two_cores_gb_s_best"], "target": ""},
        {"figure": "2 free cores from CPU time (GB/s raw in)", "value": res["two_cores_gb_s_cpu_bound"], "target": ""},
        {"figure": "ingest_day workers=2 incl. start-up", "value": res["ingest_day_workers2_gb_s_incl_startup"], "target": ""},
        {"figure": "compression ratio (uint16 / stored)", "value": res["compression_ratio_uint16"], "target": t["compression_ratio_uint16"]},
        {"figure": "compression ratio (raw in / stored)", "value": res["compression_ratio_raw_input"], "target": ""},
        {"figure": f"peak RSS MiB, {res['params']['rss_frames']} frames", "value": res["peak_rss_bytes"]["peak_rss"] / 2**20, "target": 1024},
    ], ["figure", "value", "target"])
    print("read back, band sweep GB/s (wall / CPU):", {k: round(v, 2) for k, v in res["read_back_band_sweep"].items()})
    print("stage CPU ms per frame:", {k: round(v, 1) if isinstance(v, float) else v for k, v in res["stage_cpu_ms_per_frame"].items()})
    if not args.quick:
        print("wrote", write_results("ingest", res))


if __name__ == "__main__":
    main()
