"""Relative illumination per colour channel and colour shading, from a flat field.

The dark-subtracted flat's colour planes (R, G = mean of Gr and Gb, B; mono: one plane) are
averaged over a ``grid x grid`` block grid (default 16 x 16 blocks over the sensor). Per channel:

- relative illumination: mean of the four corner blocks over the centre (the mean of the 2 x 2
  central blocks for an even grid), 1 = no fall-off;
- colour shading (CFA only): the ratios R/G and B/G per block, each divided by its value at the
  centre; the maximum of ``|ratio - 1|`` over the blocks, in percent. An IR-cut filter's
  angle-dependent cut-off makes R/G fall towards the corners.

The synthetic fleet's truth is this same function applied to the noise-free response, so the
measurement and the truth share their definition exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorfleet.emva.flatblocks import GRID, block_counts, block_edges, site_block_sums
from sensorfleet.optics.chart import channel_sites


@dataclass(frozen=True)
class Shading:
    """Per-channel relative illumination (corner / centre) and colour shading (percent)."""

    relative_illumination: dict[str, float]  # R, G, B (mono: mono)
    colour_shading_r_pct: float  # max |R/G relative to the centre - 1|, %; NaN for mono
    colour_shading_b_pct: float


def channel_planes(signal: np.ndarray, cfa_pattern: str) -> dict[str, np.ndarray]:
    """R, G (mean of Gr and Gb), B planes of a CFA image at half resolution; mono: the image."""
    sites = channel_sites(cfa_pattern)
    if not sites:
        return {"mono": np.asarray(signal, dtype=np.float64)}
    h, w = (signal.shape[0] // 2) * 2, (signal.shape[1] // 2) * 2

    def plane(name: str) -> np.ndarray:
        oy, ox = sites[name]
        return np.asarray(signal[oy:h:2, ox:w:2], dtype=np.float64)

    return {"R": plane("R"), "G": 0.5 * (plane("Gr") + plane("Gb")), "B": plane("B")}


def _blocks(plane: np.ndarray, grid: int) -> np.ndarray:
    h, w = plane.shape
    ys, xs = block_edges(h, grid), block_edges(w, grid)
    rows = np.add.reduceat(plane, ys[:-1], axis=0) / np.diff(ys)[:, None]
    return np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :]


def site_block_means(flat_sum: np.ndarray, n_flat: int, dark_sum: np.ndarray, n_dark: int, mono: bool,
                     grid: int = GRID) -> np.ndarray:
    """The ``(sites, grid, grid)`` block means (DN) of each CFA site's plane (the characterization's
    site order, :mod:`sensorfleet.emva.flatblocks`; mono: one) of the dark-subtracted mean flat, from
    the sums ``(H, W)`` of ``n_flat`` flat and ``n_dark`` dark frames (integers): the block sums are
    taken on the integer frame sums, exactly, and divided once."""
    count = block_counts(flat_sum.shape[0], flat_sum.shape[1], mono, grid)
    flat, dark = site_block_sums(flat_sum, mono, grid), site_block_sums(dark_sum, mono, grid)
    return np.asarray((flat / n_flat - dark / n_dark) / count)


def colour_blocks(site_means: np.ndarray, cfa_pattern: str) -> dict[str, np.ndarray]:
    """The block means of the colour planes (R, G = mean of Gr and Gb, B; mono: mono) from those of
    the CFA sites ``(sites, grid, grid)`` in the characterization's order (``2 * row + column``)."""
    sites = channel_sites(cfa_pattern)
    if not sites:
        return {"mono": site_means[0]}
    m = {name: site_means[2 * oy + ox] for name, (oy, ox) in sites.items()}
    return {"R": m["R"], "G": 0.5 * (m["Gr"] + m["Gb"]), "B": m["B"]}


def flat_block_means(flat_sum: np.ndarray, n_flat: int, dark_sum: np.ndarray, n_dark: int, cfa_pattern: str,
                     grid: int = GRID) -> dict[str, np.ndarray]:
    """The ``(grid, grid)`` block means (DN) of each colour plane (R, G, B; mono: mono) of the
    dark-subtracted mean flat, from integer frame sums (:func:`site_block_means`): the blocks of
    :func:`shading` on ``flat_sum / n_flat - dark_sum / n_dark``, to float rounding."""
    return colour_blocks(site_block_means(flat_sum, n_flat, dark_sum, n_dark, cfa_pattern == "mono", grid),
                         cfa_pattern)


def _centre(blocks: np.ndarray) -> float:
    g = blocks.shape[0]
    lo, hi = (g - 1) // 2, g // 2 + 1
    return float(blocks[lo:hi, lo:hi].mean())


def shading(signal: np.ndarray, cfa_pattern: str, grid: int = GRID) -> Shading:
    """Relative illumination and colour shading of a dark-subtracted flat ``(H, W)``."""
    return shading_of_blocks({name: _blocks(p, grid) for name, p in channel_planes(signal, cfa_pattern).items()})


def shading_of_blocks(blocks: dict[str, np.ndarray]) -> Shading:
    """Relative illumination and colour shading from the block means of the colour planes (R, G, B;
    mono: mono), e.g. :func:`flat_block_means`."""
    ri = {}
    for name, b in blocks.items():
        corners = (b[0, 0] + b[0, -1] + b[-1, 0] + b[-1, -1]) / 4.0
        ri[name] = float(corners / _centre(b))
    if "G" not in blocks:
        return Shading(ri, float("nan"), float("nan"))
    out = []
    for name in ("R", "B"):
        ratio = blocks[name] / blocks["G"]
        out.append(float(np.max(np.abs(ratio / _centre(ratio) - 1.0)) * 100.0))
    return Shading(ri, out[0], out[1])


__all__ = ["GRID", "Shading", "channel_planes", "colour_blocks", "flat_block_means", "shading", "shading_of_blocks",
           "site_block_means"]
