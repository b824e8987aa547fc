"""The capture-plan study's characterization of frame subsets: a selection view over a captures
group against the normal characterization of the same group, in the same run.

One synthetic session of the station plan (``build_plan``: 66 frames, RGGB) is written as a
captures group the way ingest writes it, then characterized (no maps group) three ways, medians
over ``--repeats`` runs: the normal path (``characterize_frames`` on the group's reader, the
baseline), the subset path with every frame selected (``characterize_subset``: the view's cost;
its rows are bit-identical, tests/emva/test_subset.py), and the subset path on a reduced plan
(8 frames per point, 9 levels, darks at 0.01 and 0.3 s; 38 of 66 frames). The ratios are what
to read: the view should cost nothing, and a reduced plan about its share of the frames.

Run: ``python -m benchmarks.bench_plan_study [--width W --height H --repeats N] [--quick]``;
writes ``benchmarks/results/plan_study.json`` unless ``--quick`` (320 x 240, 3 repeats).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import machine_info, median_seconds, print_table, write_results
from sensorfleet.capture_plan.plans import PlanChoice, select_indices
from sensorfleet.emva import characterize_frames
from sensorfleet.emva.session import characterize_subset, open_captures
from sensorfleet.ingest.store import FrameWriter, create_frames_group
from sensorfleet.synth.params import ModuleParams
from sensorfleet.synth.plan import build_plan
from sensorfleet.synth.session import simulate_session

REDUCED = PlanChoice(frames_per_point=8, ptc_levels=9, dark_exposures_s=(0.01, 0.3))


def captures_group(folder: Path, width: int, height: int) -> Path:
    """One station-plan session written as ingest writes a captures group."""
    frames, manifest, _ = simulate_session(ModuleParams.clean(width, height), build_plan(), 7, "bench-1")
    path = folder / "bench-1.zarr"
    group, arr = create_frames_group(path, *frames.shape)
    writer = FrameWriter(arr)
    for i, frame in enumerate(frames):
        writer.write(i, frame)
    group.attrs.update({"manifest": manifest.model_dump(mode="json"), "complete": True, "sensorfleet_version": "bench"})
    return path


def run(width: int, height: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        reader, manifest, _ = open_captures(captures_group(Path(tmp), width, height))
        every = range(len(manifest.frames))
        reduced = select_indices(manifest, REDUCED)
        cases = {
            "normal path (baseline)": lambda: characterize_frames(reader, manifest, None),
            "subset view, every frame": lambda: characterize_subset(reader, manifest, every),
            f"subset view, {REDUCED.plan_id}": lambda: characterize_subset(reader, manifest, reduced),
        }
        seconds = {name: median_seconds(fn, repeats=repeats) for name, fn in cases.items()}
    base = seconds["normal path (baseline)"]
    frames = {"normal path (baseline)": len(every), "subset view, every frame": len(every)}
    frames[f"subset view, {REDUCED.plan_id}"] = len(reduced)
    rows = [{"case": name, "frames": frames[name], "median_s": round(s, 4), "ratio_to_baseline": round(s / base, 3)}
            for name, s in seconds.items()]
    return {"width": width, "height": height, "repeats": repeats, "results": rows, "machine": machine_info()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="320 x 240, 3 repeats, write nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.height, args.repeats = 320, 240, 3
    record = run(args.width, args.height, args.repeats)
    print(f"{record['width']} x {record['height']}, station plan, medians of {record['repeats']}")
    print_table(record["results"], ["case", "frames", "median_s", "ratio_to_baseline"])
    if not args.quick:
        print(f"wrote {write_results('plan_study', record)}")
    return record


if __name__ == "__main__":
    main()
