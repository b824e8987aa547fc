"""Slanted-edge SFR of a whole chart capture: every edge of a 12 MP (4000 x 3000) RGGB chart, in
every channel (luminance and R, Gr, Gb, B), with the compiled e-SFR kernel against the plain numpy
implementation of the same steps (``sensorfleet.optics.esfr_numpy``) in the same run.

The chart: 5 x 5 dark squares (sides 8 % of the height, rotated 2 to 9.2 degrees, corner squares
at field 0.75; ``ChartLayout``), contrast 6:1, Gaussian PSF growing with the field, camera noise at edge SNR
~100. Times are medians over ``--repeats`` runs on one thread: the e-SFR steps alone on the chart's
pre-cut ROIs (the like-for-like comparison), the square search alone, and the whole
``analyse_chart`` (square search, ROI cutting and luminance balancing shared by both). The target: < 0.5 s per 12 MP chart.

Run: ``python -m benchmarks.bench_sfr [--repeats N] [--quick]``; writes
``benchmarks/results/sfr.json`` unless ``--quick`` (2000 x 1500, 3 repeats).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from benchmarks._common import machine_info, median_seconds, print_table, write_results
from sensorfleet.optics.chart import analyse_chart, balanced_luminance, channel_sites
from sensorfleet.optics.detect import EdgeRoi, edge_rois
from sensorfleet.optics.esfr import edge_sfr
from sensorfleet.optics.esfr_numpy import edge_sfr_numpy
from sensorfleet.optics.render import ChartLayout, chart_transmission

TARGET_S = 0.5
LAYOUT = ChartLayout(grid=5, extent_field=0.75, side_frac=0.08, first_rotation_deg=2.0, rotation_step_deg=0.3)


def chart_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A rendered RGGB chart capture (DN, float64), with shot-like noise."""
    half_diag = math.hypot(width / 2, height / 2)

    def sigma(x: float, y: float) -> float:
        return 0.8 + 0.8 * math.hypot(x - width / 2, y - height / 2) / half_diag

    trans = chart_transmission(height, width, LAYOUT.squares(width, height, sigma), 1 / 6).astype(np.float64)
    gains = np.array([[0.45, 0.62], [0.62, 0.50]])
    response = np.tile(gains, (height // 2, width // 2)) * trans * 4000.0
    rng = np.random.default_rng(seed)
    return 64.0 + response + rng.normal(0.0, 1.0, response.shape) * np.sqrt(response * 0.4 + 4.0)


def _patches(image: np.ndarray, rois: list[EdgeRoi]) -> list[tuple[np.ndarray, float]]:
    """The ROIs each e-SFR of the chart runs on (luminance and the four CFA planes), edge vertical."""
    out = []
    for roi in rois:
        patch = image[roi.y0:roi.y1, roi.x0:roi.x1]
        items = [(balanced_luminance(patch, roi.y0, roi.x0, "RGGB"), 1.0)]
        items += [(patch[(oy - roi.y0) % 2::2, (ox - roi.x0) % 2::2], 2.0) for oy, ox in channel_sites("RGGB").values()]
        out += [(np.ascontiguousarray(p if roi.vertical else p.T, dtype=np.float64), step) for p, step in items]
    return out


def run(width: int, height: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    start = time.perf_counter()
    image = chart_image(width, height, seed)
    render_s = time.perf_counter() - start
    analyse_chart(image, "RGGB", 4095)  # compile / warm up
    rois = edge_rois(image)
    compiled = analyse_chart(image, "RGGB", 4095)
    reference = analyse_chart(image, "RGGB", 4095, sfr_fn=edge_sfr_numpy)
    diff = max((abs(a.mtf50_cy_per_px - b.mtf50_cy_per_px) for a, b in zip(compiled, reference, strict=True)
                if a.quality == "ok"), default=math.nan)
    patches = _patches(image, rois)
    rows = [{"implementation": f"e-SFR steps only, compiled ({len(patches)} ROIs)",
             "median_s": median_seconds(lambda: [edge_sfr(p, step) for p, step in patches], repeats=repeats)},
            {"implementation": f"e-SFR steps only, plain numpy ({len(patches)} ROIs)",
             "median_s": median_seconds(lambda: [edge_sfr_numpy(p, step) for p, step in patches], repeats=repeats)}]
    rows[0]["speedup_vs_numpy"] = rows[1]["median_s"] / rows[0]["median_s"]
    rows[1]["speedup_vs_numpy"] = 1.0
    for name, fn in (("detect only", lambda: edge_rois(image)),
                     ("compiled (numba)", lambda: analyse_chart(image, "RGGB", 4095)),
                     ("plain numpy", lambda: analyse_chart(image, "RGGB", 4095, sfr_fn=edge_sfr_numpy))):
        rows.append({"implementation": name, "median_s": median_seconds(fn, repeats=repeats)})
    base = rows[4]["median_s"]
    for row in rows[2:]:
        row["speedup_vs_numpy"] = base / row["median_s"]
    ok = sum(m.quality == "ok" for m in compiled)
    return {
        "machine": machine_info(), "width": width, "height": height, "render_s": render_s,
        "edges": len(rois), "edge_channel_results": len(compiled), "ok_results": ok,
        "max_mtf50_difference_compiled_vs_numpy": diff, "results": rows,
        "target_s": TARGET_S, "meets_target": rows[3]["median_s"] < TARGET_S,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2000 x 1500, 3 repeats, write nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.height, args.repeats = 2000, 1500, 3
    record = run(args.width, args.height, args.repeats, args.seed)
    print(f"{record['width']} x {record['height']}: {record['edges']} edges, {record['edge_channel_results']} "
          f"edge x channel results ({record['ok_results']} ok), compiled vs numpy MTF50 max difference "
          f"{record['max_mtf50_difference_compiled_vs_numpy']:.2e} cy/px; target < {TARGET_S} s: "
          f"{record['meets_target']}")
    print_table(record["results"], ["implementation", "median_s", "speedup_vs_numpy"])
    if not args.quick:
        print(f"wrote {write_results('sfr', record)}")
    return record


if __name__ == "__main__":
    main()
