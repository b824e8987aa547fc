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

import base64
import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

from sensorfleet.ingest.store import read_group_attrs

GRID = 16
#: maps group attribute (:func:`to_attr`): the ``(sites, grid, grid)`` block means (DN) of the flat
#: minus the dark (NaN where a block is empty) and the frames they average
ATTR = "flat_blocks"


def block_edges(n: int, grid: int) -> np.ndarray:
    """The ``grid + 1`` block edges over ``n`` samples (``linspace``, truncated)."""
    return np.linspace(0, n, grid + 1).astype(int)


def block_counts(height: int, width: int, mono: bool, grid: int = GRID) -> np.ndarray:
    """``(grid, grid)`` samples per block of each site's plane."""
    step = 1 if mono else 2
    ys, xs = block_edges(height // step, grid), block_edges(width // step, grid)
    return np.diff(ys)[:, None] * np.diff(xs)[None, :]


def add_block_sums(band: np.ndarray, y0: int, height: int, width: int, mono: bool, out: np.ndarray) -> None:
    """Add the samples of rows ``y0 : y0 + len(band)`` of an ``(height, width)`` image to ``out``
    (``(sites, grid, grid)`` in the site order above: int64 for integer images, exact; float64
    otherwise)."""
    grid = out.shape[-1]
    step = 1 if mono else 2
    ys = block_edges(height // step, grid)
    by = np.repeat(np.arange(grid), np.diff(ys))
    _band_block_sums(np.ascontiguousarray(band), y0, step, by, block_edges(width // step, grid), out,
                     out.dtype.type(0))


@numba.njit(cache=True, nogil=True)
def _band_block_sums(band: np.ndarray, y0: int, step: int, by: np.ndarray, xs: np.ndarray, out: np.ndarray,
                     zero: float) -> None:
    """Per image row of the band (``band[0]`` is row ``y0``) that belongs to a plane row ``i < by.size``
    (``i = y // step``): per block column ``k``, the row's samples of each of its ``step`` sites over
    plane columns ``xs[k]:xs[k + 1]`` summed left to right, then added to ``out[site, by[i], k]``.
    Row by row, so the sums do not depend on how the image is cut into bands; ``zero`` of ``out``'s type."""
    for r in range(band.shape[0]):
        y = y0 + r
        i = y // step
        if i >= by.size:
            continue
        row = band[r]
        base = (y % step) * step  # the site of this row's first column
        for k in range(xs.size - 1):
            s0 = s1 = zero  # of out's type
            for j in range(xs[k], xs[k + 1]):
                s0 += row[step * j]
                if step == 2:
                    s1 += row[step * j + 1]
            out[base, by[i], k] += s0
            if step == 2:
                out[base + 1, by[i], k] += s1


def site_block_sums(image: np.ndarray, mono: bool, grid: int = GRID) -> np.ndarray:
    """``(sites, grid, grid)`` int64 block sums of an integer image ``(H, W)`` (e.g. a frame sum)."""
    out = np.zeros((1 if mono else 4, grid, grid), np.int64)
    add_block_sums(image, 0, image.shape[0], image.shape[1], mono, out)
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
    """The :data:`ATTR` value: the means as little-endian float64 bytes in base64 (NaN kept; one
    short string instead of a thousand JSON numbers to write and parse), their shape, the frames."""
    data = np.ascontiguousarray(means, dtype="<f8")
    return {"shape": list(data.shape), "means_f64le_base64": base64.b64encode(data.tobytes()).decode("ascii"),
            "flat_frames": [int(i) for i in flat_frames], "dark_frames": [int(i) for i in dark_frames]}


def from_attr(value: Any) -> np.ndarray | None:
    """The ``(sites, grid, grid)`` block means of an :data:`ATTR` value; None if malformed."""
    if not isinstance(value, dict):
        return None
    shape, data = value.get("shape"), value.get("means_f64le_base64")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) for v in shape)
            and isinstance(data, str)):
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return None
    if len(raw) != 8 * math.prod(shape) or shape[0] not in (1, 4) or shape[1] != shape[2]:
        return None
    return np.frombuffer(raw, dtype="<f8").reshape(shape).astype(np.float64)


def stored_means(maps_group: Path, source_content_hash: str | None, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The block means a complete maps group holds when it was made from the captures with
    ``source_content_hash`` and they have ``shape`` ``(sites, grid, grid)``; else None."""
    attrs = read_group_attrs(maps_group) if source_content_hash is not None else None
    if not attrs or attrs.get("complete") is not True or attrs.get("source_content_hash") != source_content_hash:
        return None
    means = from_attr(attrs.get(ATTR))
    return means if means is not None and means.shape == shape else None


__all__ = ["ATTR", "GRID", "FlatBlockSums", "add_block_sums", "block_counts",
           "block_edges", "from_attr", "site_block_sums", "stored_means", "to_attr"]
