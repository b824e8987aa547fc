"""Decode throughput of the raw frame codecs at 12 MP (4000 x 3000), against memcpy bandwidth.

For each pixel format: median seconds of ``decode_frame`` (size check + unpack into a
preallocated ``(H, W) uint16`` buffer), as output GB/s (2 bytes per pixel), input GB/s (file
bytes), and the ratio of output GB/s to the single-thread memcpy bandwidth (bytes copied per
second) measured in the same run, before and after the codecs (the higher one is used, so the
ratio errs low). The target for the MIPI packed formats is a ratio >= 0.20. A vectorized numpy
RAW10 unpack is timed as a reference point.

Run: ``python -m benchmarks.bench_decode [--repeats N] [--width W --height H] [--quick]``;
writes ``benchmarks/results/decode.json`` unless ``--quick`` (1000 x 750, 3 repeats).
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import numpy as np

from benchmarks._common import (
    machine_info,
    median_seconds,
    memcpy_bandwidth,
    print_table,
    write_results,
)
from sensorfleet import rawio

FORMATS = ("raw10_mipi", "raw12_mipi", "raw14_mipi", "raw8", "raw16_le")
PACKED = ("raw10_mipi", "raw12_mipi", "raw14_mipi")
TARGET_RATIO = 0.20


def numpy_unpack_raw10(buf: np.ndarray, width: int, height: int) -> np.ndarray:
    """Vectorized numpy RAW10 unpack (width a multiple of 4): the reference point."""
    g = buf.reshape(height, width // 4, 5).astype(np.uint16)
    out = np.empty((height, width // 4, 4), dtype=np.uint16)
    for i in range(4):
        out[..., i] = (g[..., i] << 2) | ((g[..., 4] >> (2 * i)) & 3)
    return out.reshape(height, width)


def run(width: int = 4000, height: int = 3000, repeats: int = 11, seed: int = 0) -> dict[str, Any]:
    """Time every codec; return the result record (also what goes into the JSON file)."""
    rng = np.random.default_rng(seed)
    memcpy_before = memcpy_bandwidth(threads=1)
    memcpy_2threads = memcpy_bandwidth(threads=2)
    out = np.empty((height, width), dtype=np.uint16)
    rows: list[dict[str, Any]] = []
    timed: list[tuple[str, float, int]] = []
    for pixel_format in FORMATS:
        bits = rawio.container_bits(pixel_format)
        frame = rng.integers(0, 1 << bits, size=(height, width), dtype=np.uint16)
        data = np.frombuffer(rawio.encode_frame(frame, pixel_format), dtype=np.uint8)
        rawio.decode_frame(data, pixel_format, width, height, out=out)
        if not np.array_equal(out, frame):
            raise AssertionError(f"{pixel_format}: decoded frame differs from the encoded one")
        decode = partial(rawio.decode_frame, data, pixel_format, width, height, out=out)
        seconds = median_seconds(decode, repeats)
        timed.append((pixel_format, seconds, data.size))
    if width % 4 == 0:
        frame = rng.integers(0, 1024, size=(height, width), dtype=np.uint16)
        data = np.frombuffer(rawio.encode_frame(frame, "raw10_mipi"), dtype=np.uint8)
        assert np.array_equal(numpy_unpack_raw10(data, width, height), frame)
        timed.append(("raw10_mipi (numpy reference)",
                      median_seconds(partial(numpy_unpack_raw10, data, width, height), max(3, repeats // 3)),
                      data.size))
    memcpy_after = memcpy_bandwidth(threads=1)
    memcpy_1thread = max(memcpy_before, memcpy_after)
    out_bytes = 2 * width * height
    for name, seconds, in_bytes in timed:
        ratio = out_bytes / seconds / memcpy_1thread
        rows.append({
            "format": name,
            "input_MB": in_bytes / 1e6,
            "median_ms": seconds * 1e3,
            "output_GB_s": out_bytes / seconds / 1e9,
            "input_GB_s": in_bytes / seconds / 1e9,
            "ratio_to_memcpy_1t": ratio,
            "meets_target": (ratio >= TARGET_RATIO) if name in PACKED else None,
        })
    return {
        "benchmark": "decode",
        "frame": {"width": width, "height": height, "megapixels": width * height / 1e6},
        "repeats": repeats,
        "seed": seed,
        "memcpy_GB_s": {"1_thread": memcpy_1thread / 1e9, "1_thread_before": memcpy_before / 1e9,
                        "1_thread_after": memcpy_after / 1e9, "2_threads": memcpy_2threads / 1e9},
        "target_ratio_packed": TARGET_RATIO,
        "results": rows,
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1000 x 750, 3 repeats, write nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.height, args.repeats = 1000, 750, 3
    record = run(args.width, args.height, args.repeats, args.seed)
    mem = record["memcpy_GB_s"]
    print(f"memcpy bandwidth (bytes copied/s): 1 thread {mem['1_thread']:.2f} GB/s "
          f"(before {mem['1_thread_before']:.2f}, after {mem['1_thread_after']:.2f}), 2 threads {mem['2_threads']:.2f} GB/s")
    print_table(record["results"], ["format", "input_MB", "median_ms", "output_GB_s", "input_GB_s",
                                    "ratio_to_memcpy_1t", "meets_target"])
    if not args.quick:
        print(f"wrote {write_results('decode', record)}")
    return record


if __name__ == "__main__":
    main()
