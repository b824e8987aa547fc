"""Block means of the spatial flat, per CFA site, for the optics layer's relative illumination and
colour shading (:mod:`sensorfleet.optics.shading`).

Each CFA site's samples (a plane at half resolution; mono: the whole image at full resolution)
are summed over a ``grid x grid`` block grid whose edges are ``linspace(0, plane size, grid + 1)``
truncated to integers. Sites are in the characterization's order, ``c = 2 * (y % 2) + (x % 2)``
(``(row, column)`` offsets ``(0, 0), (0, 1), (1, 0), (1, 1)``).

The characterization computes them band by band on its mean maps of the spatial flat and dark
series (:class:`FlatBlockSums`, fed by the pass) and publishes the dark-subtracted block means in
its maps group (:data:`ATTR`), so the optics step needs not read the flat and dark frames again;
the optics step computes the same blocks from integer frame sums when no current maps group holds
them (:func:`site_block_sums`, the same kernel).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

from sensorfleet.ingest.store import read_group_attrs

GRID = 16
#: maps group attribute: ``{"grid", "flat_frames", "dark_frames", "means_dn"}``, ``means_dn`` the
#: ``(sites, grid, grid)`` block means (DN) of the flat minus the dark, null where a block is empty
ATTR = "flat_blocks"
CFA_OFFSETS = np.array([(0, 0), (0, 1), (1, 0), (1, 1)], np.int64)
MONO_OFFSETS = np.array([(0, 0)], np.int64)


def block_edges(n: int, grid: int) -> np.ndarray:
    """The ``grid + 1`` block edges over ``n`` samples (``linspace``, truncated)."""
    return np.linspace(0, n, grid + 1).astype(int)


def _plane_blocks(height: int, width: int, step: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Block index of every row and column of a site's plane (``height // step`` x ``width // step``)."""
    by = np.repeat(np.arange(grid), np.diff(block_edges(height // step, grid)))
    bx = np.repeat(np.arange(grid), np.diff(block_edges(width // step, grid)))
    return by, bx


def block_counts(height: int, width: int, mono: bool, grid: int = GRID) -> np.ndarray:
    """``(grid, grid)`` samples per block of each site's plane."""
    step = 1 if mono else 2
    ys, xs = block_edges(height // step, grid), block_edges(width // step, grid)
    return np.diff(ys)[:, None] * np.diff(xs)[None, :]


def add_block_sums(band: np.ndarray, y0: int, height: int, width: int, mono: bool, out: np.ndarray,
                   offsets: np.ndarray | None = None) -> None:
    """Add the samples of rows ``y0 : y0 + len(band)`` of an ``(height, width)`` image to ``out``
    (``(sites, grid, grid)``: int64 for integer images, exact; float64 otherwise). ``offsets``: the
    sites' ``(row, column)`` offsets (default: every site in the characterization's order; mono: one)."""
    step = 1 if mono else 2
    if offsets is None:
        offsets = MONO_OFFSETS if mono else CFA_OFFSETS
    by, bx = _plane_blocks(height, width, step, out.shape[-1])
    _band_block_sums(np.ascontiguousarray(band), y0, step, offsets, by, bx, out)


@numba.njit(cache=True, nogil=True)
def _band_block_sums(band: np.ndarray, y0: int, step: int, offsets: np.ndarray, by: np.ndarray, bx: np.ndarray,
                     out: np.ndarray) -> None:
    """``out[s, by[i], bx[j]] += image[oy + step i, ox + step j]`` for each site ``s`` at
    ``offsets[s] = (oy, ox)``, over the plane rows ``i`` whose image row is in the band (``band[0]``
    is image row ``y0``); each block's samples are added in raster order, whatever the bands."""
    h = band.shape[0]
    for s in range(offsets.shape[0]):
        oy, ox = offsets[s, 0], offsets[s, 1]
        first = max(0, (y0 - oy + step - 1) // step)
        for i in range(first, by.size):
            y = oy + step * i - y0
            if y >= h:
                break
            row = band[y]
            acc = out[s, by[i]]
            for j in range(bx.size):
                acc[bx[j]] += row[ox + step * j]


def site_block_sums(image: np.ndarray, mono: bool, grid: int = GRID,
                    offsets: np.ndarray | None = None) -> np.ndarray:
    """``(sites, grid, grid)`` int64 block sums of an integer image ``(H, W)`` (e.g. a frame sum)."""
    n = 1 if mono else (len(offsets) if offsets is not None else 4)
    out = np.zeros((n, grid, grid), np.int64)
    add_block_sums(image, 0, image.shape[0], image.shape[1], mono, out, offsets)
    return out


class FlatBlockSums:
    """Block sums of the mean flat and the mean dark maps ((H, W) DN), band by band (float64)."""

    def __init__(self, height: int, width: int, mono: bool, grid: int = GRID) -> None:
        self.height, self.width, self.mono = height, width, mono
        sites = 1 if mono else 4
        self.flat = np.zeros((sites, grid, grid))
        self.dark = np.zeros((sites, grid, grid))

    def add(self, y0: int, flat: np.ndarray, dark: np.ndarray) -> None:
        """Rows ``y0 : y0 + len(flat)`` of the mean flat and dark maps."""
        add_block_sums(flat, y0, self.height, self.width, self.mono, self.flat)
        add_block_sums(dark, y0, self.height, self.width, self.mono, self.dark)

    def means(self) -> np.ndarray:
        """``(sites, grid, grid)`` block means of flat minus dark (DN; NaN for an empty block)."""
        count = block_counts(self.height, self.width, self.mono, self.flat.shape[-1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray((self.flat - self.dark) / count)


def to_attr(means: np.ndarray, flat_frames: list[int], dark_frames: list[int]) -> dict[str, Any]:
    """The :data:`ATTR` value (JSON: NaN as null)."""
    return {"grid": int(means.shape[-1]), "flat_frames": [int(i) for i in flat_frames],
            "dark_frames": [int(i) for i in dark_frames],
            "means_dn": [[[float(v) if math.isfinite(v) else None for v in row] for row in site] for site in means]}


def from_attr(value: Any) -> np.ndarray | None:
    """The ``(sites, grid, grid)`` block means of an :data:`ATTR` value; None if malformed."""
    if not isinstance(value, dict) or "means_dn" not in value:
        return None
    try:
        means = np.array(value["means_dn"], dtype=np.float64)  # null -> NaN
    except (TypeError, ValueError):
        return None
    grid = value.get("grid")
    if means.ndim != 3 or means.shape[0] not in (1, 4) or means.shape[1:] != (grid, grid):
        return None
    return means


def stored_means(maps_group: Path, source_content_hash: str | None, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The block means a complete maps group holds when it was made from the captures with
    ``source_content_hash`` and they have ``shape`` ``(sites, grid, grid)``; else None."""
    attrs = read_group_attrs(maps_group) if source_content_hash is not None else None
    if not attrs or attrs.get("complete") is not True or attrs.get("source_content_hash") != source_content_hash:
        return None
    means = from_attr(attrs.get(ATTR))
    return means if means is not None and means.shape == shape else None


__all__ = ["ATTR", "CFA_OFFSETS", "GRID", "MONO_OFFSETS", "FlatBlockSums", "add_block_sums", "block_counts",
           "block_edges", "from_attr", "site_block_sums", "stored_means", "to_attr"]
