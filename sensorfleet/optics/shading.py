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

import numba
import numpy as np

from sensorfleet.optics.chart import channel_sites

GRID = 16


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


def _block_edges(n: int, grid: int) -> np.ndarray:
    return np.linspace(0, n, grid + 1).astype(int)


def _blocks(plane: np.ndarray, grid: int) -> np.ndarray:
    h, w = plane.shape
    ys, xs = _block_edges(h, grid), _block_edges(w, grid)
    rows = np.add.reduceat(plane, ys[:-1], axis=0) / np.diff(ys)[:, None]
    return np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :]


def _site_block_sums(frame_sum: np.ndarray, cfa_pattern: str, grid: int) -> dict[str, np.ndarray]:
    """Per CFA site (``R``, ``Gr``, ``Gb``, ``B``; mono: ``mono``) its samples' sums over the block
    grid of :func:`channel_planes`' plane, int64 (exact for integer frame sums)."""
    sites = channel_sites(cfa_pattern)
    h, w = frame_sum.shape
    step = 2 if sites else 1
    ph, pw = h // step, w // step  # the plane's size
    # block index of every plane row and column (the ``linspace`` edges of _blocks)
    by = np.repeat(np.arange(grid), np.diff(_block_edges(ph, grid)))
    bx = np.repeat(np.arange(grid), np.diff(_block_edges(pw, grid)))
    offsets = np.array(list(sites.values()) or [(0, 0)], dtype=np.int64)
    out = np.zeros((len(offsets), grid, grid), dtype=np.int64)
    _block_sums(np.ascontiguousarray(frame_sum), step, offsets, by, bx, out)
    return dict(zip(sites or ("mono",), out, strict=True))


@numba.njit(cache=True, nogil=True)
def _block_sums(image: np.ndarray, step: int, offsets: np.ndarray, by: np.ndarray, bx: np.ndarray,
                out: np.ndarray) -> None:
    """``out[s, by[i], bx[j]] += image[oy + step i, ox + step j]`` for each site ``s`` at
    ``offsets[s] = (oy, ox)``, over the ``by.size x bx.size`` samples of its plane."""
    for s in range(offsets.shape[0]):
        oy, ox = offsets[s, 0], offsets[s, 1]
        for i in range(by.size):
            row = image[oy + step * i]
            acc = out[s, by[i]]
            for j in range(bx.size):
                acc[bx[j]] += row[ox + step * j]


def flat_block_means(flat_sum: np.ndarray, n_flat: int, dark_sum: np.ndarray, n_dark: int, cfa_pattern: str,
                     grid: int = GRID) -> dict[str, np.ndarray]:
    """The ``(grid, grid)`` block means (DN) of each colour plane (R, G, B; mono: mono) of the
    dark-subtracted mean flat, from the sums ``(H, W)`` of ``n_flat`` flat and ``n_dark`` dark frames
    (integers). The blocks of :func:`shading` on ``flat_sum / n_flat - dark_sum / n_dark``, to float
    rounding: the block sums are taken on the integer frame sums, exactly, and divided once."""
    flat = _site_block_sums(flat_sum, cfa_pattern, grid)
    dark = _site_block_sums(dark_sum, cfa_pattern, grid)
    means = {}
    half = 1 if "mono" in flat else 2
    ys, xs = _block_edges(flat_sum.shape[0] // half, grid), _block_edges(flat_sum.shape[1] // half, grid)
    count = np.diff(ys)[:, None] * np.diff(xs)[None, :]  # samples per block of every plane
    for name, f in flat.items():
        means[name] = (f / n_flat - dark[name] / n_dark) / count
    if "mono" in means:
        return means
    return {"R": means["R"], "G": 0.5 * (means["Gr"] + means["Gb"]), "B": means["B"]}


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


__all__ = ["GRID", "Shading", "channel_planes", "flat_block_means", "shading", "shading_of_blocks"]
