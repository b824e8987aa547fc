"""Compile every cached numba kernel ahead of the first run: ``python -m sensorfleet.warmup``.

The kernels are ``@njit(cache=True)``: compiled on first call, then loaded from numba's cache,
a folder named by the kernel modules' sources (:mod:`sensorfleet.kernel_cache`; a
``NUMBA_CACHE_DIR`` of the user's as it is). Without a warm-up the first run in a fresh clone
spent about a minute compiling (docs/architecture.md). ``make`` runs this after installing and
again whenever the package's sources changed, so the cache lands where the later runs look: an
edited kernel module starts a new folder and every kernel is compiled again (numba alone would
recompile only the edited module's kernels and keep its callers' stale machine code); with the
kernel modules unchanged this only loads the cache (a few seconds).

The warm-up does the pipeline's own work on a tiny synthetic fleet (one module of 320 x 240
pixels, the demo's size, with an edge chart), so every kernel is compiled for exactly the argument types the
pipeline passes: synthesis and ingest first (the later steps read what they write), then the
EMVA 1288 characterization, the optics (SFR) measurement and the frame codecs of every pixel
format in parallel processes, one per core. :data:`STEPS` names each step and the modules whose
kernels it compiles; ``tests/test_warmup.py`` checks that together they cover every
``cache=True`` kernel of the package.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from sensorfleet.config import Paths

DAY = "2026-03-02"
"""Capture day of the warm-up fleet (its sessions are synthesized at 06:00 UTC that day)."""

NOT_IN_RUNS: tuple[str, ...] = (
    "sensorfleet.emva.kernels.sum_block_reference",
    "sensorfleet.emva.kernels.sum_stream_reference",
)
"""Kernels no run calls (the memory-bandwidth baselines of the benchmarks and tests): not warmed."""


def _paths(work: Path) -> Paths:
    return Paths(root=work / "data", landing=work / "landing")


def synthesize_and_ingest(work: Path) -> None:
    """One synthetic module (raw12_mipi frames + an edge chart) ingested: the synthesis kernels,
    the RAW12 unpacking and the per-frame statistics."""
    from sensorfleet.ingest import ingest_day
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    # the demo's sensor size: the edge chart's squares must be large enough to measure
    config = FleetConfig(modules=1, seed=0, width=320, height=240, edge_charts=True, span_days=0.0,
                         start=datetime.fromisoformat(f"{DAY}T06:00:00").replace(tzinfo=UTC), workers=1)
    paths = _paths(work)
    generate_fleet(config, paths.landing, paths.root / "truth")
    ingest_day(paths, DAY, workers=1)


def characterize(work: Path) -> None:
    """The EMVA 1288 characterization of the ingested module (per-pixel pass, bands, defects)."""
    from sensorfleet.emva import characterize_day

    characterize_day(_paths(work), DAY, workers=1)


def optics(work: Path) -> None:
    """The slanted-edge SFR and lens-shading measurement of the module's edge chart."""
    from sensorfleet.optics import characterize_optics_day

    characterize_optics_day(_paths(work), DAY, workers=1)


def codecs(work: Path) -> None:
    """Encode and decode a frame in every pixel format (pack/unpack kernels, PNG unfiltering,
    value checks), as the ingest and ``import-emva`` call them."""
    from sensorfleet import rawio
    from sensorfleet.ingest.framestats import decode_frame_stats, frame_stats
    from sensorfleet.manifest import PIXEL_FORMATS

    frame = (np.arange(8 * 6, dtype=np.uint16).reshape(6, 8) * 5) % 256
    out = np.empty_like(frame)
    for pixel_format in PIXEL_FORMATS:
        data = rawio.encode_frame(frame, pixel_format)
        rawio.decode_frame(data, pixel_format, 8, 6)
        decode_frame_stats(data, pixel_format, 8, 6, 8, out)
        path = work / f"codec.{pixel_format}"
        rawio.write_frame(path, frame, pixel_format)
        rawio.read_frame(path, pixel_format, 8, 6, out=out)
    rawio.check_bit_depth(frame, 8)
    try:
        rawio.check_bit_depth(frame + 300, 8)  # the refusal's search for the first value too large
    except rawio.FrameFormatError:
        pass
    frame_stats(frame, 8)
    rawio.decode_png(rawio.encode_png(frame.astype(np.uint8).astype(np.uint16)), 8, 6)


STEPS: tuple[tuple[Callable[[Path], None], tuple[str, ...]], ...] = (
    (synthesize_and_ingest, ("sensorfleet.synth.physics", "sensorfleet.rawio_kernels", "sensorfleet.ingest.framestats")),
    (characterize, ("sensorfleet.emva.kernels", "sensorfleet.emva.band_kernels", "sensorfleet.emva.defects",
                    "sensorfleet.emva.flatblocks")),
    (optics, ("sensorfleet.optics.chart", "sensorfleet.optics.esfr",
              "sensorfleet.optics.detect", "sensorfleet.optics.session")),
    (codecs, ("sensorfleet.rawio_kernels", "sensorfleet.ingest.framestats")),
)
"""The warm-up's steps and the kernel modules each compiles; the first runs before the others
(they read what it writes), the rest in parallel."""


def _timed(step: Callable[[Path], None], work: Path) -> tuple[str, float]:
    t0 = time.perf_counter()
    step(work)
    return step.__name__, time.perf_counter() - t0


def warm_up(work: Path, jobs: int | None = None) -> dict[str, float]:
    """Run :data:`STEPS` in ``work`` (a scratch folder); returns seconds per step. ``jobs``: the
    parallel processes of the later steps (default: one per core, at most one per step)."""
    first, *rest = (step for step, _ in STEPS)
    timings = dict([_timed(first, work)])
    workers = max(1, min(jobs or os.cpu_count() or 1, len(rest)))
    if workers == 1:
        timings.update(_timed(step, work) for step in rest)
        return timings
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_timed, step, work) for step in rest]
        timings.update(f.result() for f in futures)
    return timings


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--jobs", type=int, default=None, help="parallel processes (default: one per core)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sensorfleet-warmup-") as tmp:
        timings = warm_up(Path(tmp), args.jobs)
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    print(f"numba kernels compiled into the cache in {time.perf_counter() - t0:.1f} s ({steps})")


if __name__ == "__main__":
    main()
