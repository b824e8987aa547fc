"""Chunk shape of the ``frames`` array: write speed, compression ratio and read patterns.

Data: shot-noise-limited 12-bit frames (4000 x 3000, ~800 e- at K = 0.5 DN/e-, dark offset
64 DN, read noise 2 DN), ``--frames`` frames forming operating points of ``--per-point`` frames.
Codec in every case: blosc lz4 + bitshuffle, clevel 5, ``write_empty_chunks=True``.

For each chunk shape: write GB/s (uint16 bytes, one frame per ``arr[i] = frame``; for full-width
chunks also through ``FrameWriter``, the ingest's direct chunk writer; multi-frame chunks also
written a whole chunk depth at a time, which the stream would need a buffer of that many frames
for), compression ratio (uint16 bytes / stored),
read of one whole frame, read of one 512-row band across all frames of an operating point
(``frames[i0:i1, y0:y1, :]`` with a slice, and ``frames[idxs, y0:y1, :]`` with an index list,
which zarr 3 serves through its slower orthogonal-indexing path), and the sweep of a whole
operating point band by band with slices (how the characterization reads). Medians; memcpy bandwidth of the same run for reference.

Run: ``python -m benchmarks.bench_chunking [--quick]``; writes ``benchmarks/results/chunking.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks._common import (
    machine_info,
    median_seconds,
    memcpy_bandwidth,
    print_table,
    write_results,
)
from sensorfleet.ingest.store import FrameWriter, compressors

CHUNKINGS: dict[str, tuple[int, int, int] | None] = {
    "full_frame (1,H,W)": None,
    "band256 (1,256,W)": (1, 256, 0),
    "band512 (1,512,W)": (1, 512, 0),
    "tile512 (1,512,512)": (1, 512, 512),
    "mtile8 (8,256,256)": (8, 256, 256),
}
BAND_ROWS = 512


def shot_noise_frames(n: int, height: int, width: int, electrons: float = 800.0, gain_dn_per_e: float = 0.5,
                      offset_dn: float = 64.0, read_noise_dn: float = 2.0, bit_depth: int = 12,
                      seed: int = 0) -> np.ndarray:
    """``(n, H, W) uint16`` shot-noise-limited frames (Gaussian approximation of Poisson)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width), dtype=np.uint16)
    sigma = float(np.hypot(gain_dn_per_e * np.sqrt(electrons), read_noise_dn))
    for i in range(n):
        dn = rng.standard_normal((height, width), dtype=np.float32)
        dn *= sigma
        dn += offset_dn + gain_dn_per_e * electrons
        np.clip(np.rint(dn), 0, (1 << bit_depth) - 1, out=dn)
        out[i] = dn
    return out


def _chunks(spec: tuple[int, int, int] | None, height: int, width: int) -> tuple[int, int, int]:
    if spec is None:
        return (1, height, width)
    d, r, c = spec
    return (d, min(r, height), min(c or width, width))


def _stored(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(width: int, height: int, n_frames: int, per_point: int, repeats: int) -> dict[str, Any]:
    frames = shot_noise_frames(n_frames, height, width)
    raw_bytes = frames.nbytes
    idxs = list(range(per_point))  # one operating point
    rows = []
    memcpy = memcpy_bandwidth(threads=1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_chunking_"))
    try:
        for name, spec in CHUNKINGS.items():
            chunks = _chunks(spec, height, width)

            def create(path: Path, chunks: tuple[int, int, int] = chunks) -> Any:
                shutil.rmtree(path, ignore_errors=True)
                return zarr.create_array(
                    str(path), shape=frames.shape, dtype="uint16", chunks=chunks,
                    compressors=compressors(), fill_value=0, config={"write_empty_chunks": True},
                )

            path = tmp / "a.zarr"

            def write_per_frame(path: Path = path, create: Any = create) -> None:
                arr = create(path)
                for i in range(n_frames):
                    arr[i] = frames[i]

            t_write = median_seconds(write_per_frame, repeats=repeats, warmup=0)
            t_write_direct = None
            if chunks[0] == 1 and chunks[2] == width:
                def write_direct(path: Path = path, create: Any = create) -> None:
                    writer = FrameWriter(create(path))
                    for i in range(n_frames):
                        writer.write(i, frames[i])

                t_write_direct = median_seconds(write_direct, repeats=repeats, warmup=0)
            t_write_batched = None
            if chunks[0] > 1:
                def write_batched(path: Path = path, create: Any = create, depth: int = chunks[0]) -> None:
                    arr = create(path)
                    for i in range(0, n_frames, depth):
                        arr[i:i + depth] = frames[i:i + depth]

                t_write_batched = median_seconds(write_batched, repeats=repeats, warmup=0)
            stored = _stored(path)
            arr: Any = zarr.open_array(str(path), mode="r")
            assert np.array_equal(arr[1], frames[1])
            y0 = (height // 2) // BAND_ROWS * BAND_ROWS

            def read_frame(arr: Any = arr) -> None:
                arr[n_frames // 2]

            def read_band(arr: Any = arr, y0: int = y0) -> None:
                arr[0:per_point, y0:y0 + BAND_ROWS, :]

            def read_band_list(arr: Any = arr, y0: int = y0) -> None:
                arr[idxs, y0:y0 + BAND_ROWS, :]

            t_frame = median_seconds(read_frame, repeats=repeats)
            t_band = median_seconds(read_band, repeats=repeats)
            t_band_list = median_seconds(read_band_list, repeats=repeats)

            def sweep(arr: Any = arr) -> None:
                for y in range(0, height, BAND_ROWS):
                    arr[0:per_point, y:y + BAND_ROWS, :]

            t_sweep = median_seconds(sweep, repeats=max(1, repeats // 2))
            rows.append({
                "chunking": name,
                "chunks": list(chunks),
                "write_gb_s": raw_bytes / t_write / 1e9,
                "write_direct_gb_s": raw_bytes / t_write_direct / 1e9 if t_write_direct else None,
                "write_batched_gb_s": raw_bytes / t_write_batched / 1e9 if t_write_batched else None,
                "ratio": raw_bytes / stored,
                "read_frame_ms": t_frame * 1e3,
                "read_band_ms": t_band * 1e3,
                "read_band_list_ms": t_band_list * 1e3,
                "sweep_point_s": t_sweep,
                "sweep_point_gb_s": per_point * width * height * 2 / t_sweep / 1e9,
            })
            shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "benchmark": "chunking",
        "machine": machine_info(),
        "params": {"width": width, "height": height, "n_frames": n_frames, "per_point": per_point,
                   "band_rows": BAND_ROWS, "repeats": repeats, "electrons": 800, "gain_dn_per_e": 0.5,
                   "bit_depth": 12, "codec": "blosc lz4 bitshuffle clevel 5"},
        "memcpy_gb_s_1thread": memcpy / 1e9,
        "rows": rows,
        "zarr": zarr.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1000x750, 8 frames, 1 repeat")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--per-point", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    width, height, n, per, rep = (1000, 750, 8, 4, 1) if args.quick else (4000, 3000, args.frames, args.per_point, args.repeats)
    t0 = time.perf_counter()
    res = run(width, height, n, per, rep)
    res["seconds"] = time.perf_counter() - t0
    print(f"memcpy 1 thread: {res['memcpy_gb_s_1thread']:.2f} GB/s; {width}x{height}, {n} frames, points of {per}")
    print_table(res["rows"], ["chunking", "write_gb_s", "write_direct_gb_s", "write_batched_gb_s", "ratio", "read_frame_ms",
                              "read_band_ms", "read_band_list_ms", "sweep_point_s", "sweep_point_gb_s"])
    if not args.quick:
        print("wrote", write_results("chunking", res))


if __name__ == "__main__":
    main()
