"""Find the dark squares of an edge chart and cut a region of interest (ROI) around each edge.

No ROI list is needed: as MTF Mapper does, the image is thresholded halfway between its dark and
light levels, the dark connected components that look like squares are kept, and each square's
four corners are the extremes of ``x + y`` and ``x - y`` over its pixels (exact for squares
tilted less than 45 degrees). The work runs on a ``downsample`` x ``downsample`` block mean
(which also removes the CFA pattern); the ROIs are then cut at full resolution around the
central ``edge_fraction`` of each side (clear of the corners), wide enough across the edge for
its slant over that length plus ``across_px`` on either side. A manifest ROI list replaces the
search (:func:`rois_from_manifest`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

SIDES = ("top", "right", "bottom", "left")


@dataclass(frozen=True)
class DetectConfig:
    """Square search and ROI geometry (pixels of the sensor)."""

    downsample: int = 4
    min_side_px: float = 32.0
    #: share of each side's length (centred) used for its ROI, clear of the corners
    edge_fraction: float = 0.7
    #: ROI half-width across the edge beyond the edge's own slant
    across_px: int = 20
    #: an ROI closer than this to the image border is flagged ``near_border``
    border_px: int = 2
    #: an ROI shorter than this along its edge is flagged ``too_short``
    min_edge_length_px: int = 32


@dataclass(frozen=True)
class EdgeRoi:
    """One edge's region of interest, ``image[y0:y1, x0:x1]`` (sensor pixels, half-open)."""

    edge_id: int
    square: int  # square index (raster order of the squares' centres); -1 for a manifest ROI
    side: str  # top, right, bottom, left, or "roi" for a manifest ROI
    x0: int
    y0: int
    x1: int
    y1: int
    vertical: bool  # the edge runs along the columns: its transition is along x
    quality: str = "ok"  # ok, near_border or too_short

    @property
    def centre(self) -> tuple[float, float]:
        """ROI centre (x, y), sensor pixels (pixel centres at integers)."""
        return (self.x0 + self.x1 - 1) / 2.0, (self.y0 + self.y1 - 1) / 2.0

    @property
    def length_px(self) -> int:
        """Extent along the edge."""
        return self.y1 - self.y0 if self.vertical else self.x1 - self.x0


def divided(image: np.ndarray, n: int) -> np.ndarray:
    """``image / n`` as float64: the mean of ``n`` frames from their sum (each value the same IEEE
    quotient as in the divided whole image); ``image`` itself when float64 and ``n`` is 1."""
    if n == 1 and image.dtype == np.float64:
        return image
    return np.true_divide(image, n, dtype=np.float64)


def block_mean(image: np.ndarray, block: int, n: int = 1) -> np.ndarray:
    """Mean ``(H // block, W // block)`` float64 of ``block`` x ``block`` tiles of ``image / n``
    ``(H, W)`` (:func:`divided`; cropped to a whole number of tiles); ``tiles.mean(axis=(1, 3))``
    to the bit.

    A tile narrower than 8 goes through a compiled loop in numpy's own order (each tile row summed
    left to right, numpy's order below 8 values, the rows added top to bottom, then one division),
    each pixel divided by ``n`` as it is read (the whole divided image is never formed), 10x faster
    on a 0.3 MP chart; wider tiles (numpy sums 8 or more values pairwise) through numpy.
    """
    h, w = (image.shape[0] // block) * block, (image.shape[1] // block) * block
    if block < 8 and (image.dtype == np.float64 or n != 1):
        # x / n == x * (1 / n) exactly when n is a power of two (the usual 4 chart frames): a
        # multiplication, 4x cheaper than a division per pixel
        return _block_mean(image, block, float(n), n & (n - 1) == 0)
    tiles = divided(image, n)[:h, :w].reshape(h // block, block, w // block, block)
    return tiles.mean(axis=(1, 3), dtype=np.float64)


@numba.njit(cache=True, nogil=True)
def _block_mean(image: np.ndarray, block: int, n: float, power_of_two: bool) -> np.ndarray:
    h, w = image.shape[0] // block, image.shape[1] // block
    out = np.zeros((h, w))
    inverse = 1.0 / n
    for i in range(h):
        for r in range(block):
            row = i * block + r
            for j in range(w):
                s = 0.0
                for c in range(block):
                    if power_of_two:
                        s += image[row, j * block + c] * inverse  # == / n exactly; n = 1: the value
                    else:
                        s += image[row, j * block + c] / n
                out[i, j] += s
    n = block * block
    for i in range(h):
        for j in range(w):
            out[i, j] /= n
    return out


def find_squares(image: np.ndarray, config: DetectConfig = DetectConfig(), n: int = 1) -> list[np.ndarray]:
    """Corners of the dark squares of ``image / n`` (:func:`divided`), each ``(4, 2)`` float64
    (x, y) in sensor pixels in the order top-left, top-right, bottom-right, bottom-left; squares in
    raster order of their centres."""
    ds = config.downsample
    small = block_mean(image, ds, n)
    lo, hi = np.percentile(small[:: max(1, small.shape[0] // 256), :: max(1, small.shape[1] // 256)], (2, 98))
    if not hi > lo:
        return []
    labels, n = ndimage.label(small < 0.5 * (lo + hi), structure=np.ones((3, 3)))
    min_area = (config.min_side_px / ds) ** 2
    squares = []
    sizes, boxes, extremes = _components(labels, n)
    for index, (size, (r0, c0, r1, c1)) in enumerate(zip(sizes.tolist(), boxes.tolist(), strict=True)):
        if not size:
            continue
        bh, bw = r1 - r0, c1 - c0
        touches = r0 == 0 or c0 == 0 or r1 == small.shape[0] or c1 == small.shape[1]
        if touches or size < min_area or size < 0.6 * bh * bw or not 0.7 <= bh / bw <= 1.4:
            continue
        squares.append(extremes[index].astype(np.float64) * ds + (ds - 1) / 2.0)
    squares.sort(key=lambda c: (round(c[:, 1].mean() / (4 * ds)), c[:, 0].mean()))
    return squares


@numba.njit(cache=True, nogil=True)
def _components(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component ``1..count`` of ``labels`` ``(h, w)`` (row ``k - 1`` of each result): its pixel
    count, bounding box (row0, col0, row1, col1; half-open, as ``ndimage.find_objects``) and its
    corners ``(4, 2)`` (x, y): the pixels of the least ``x + y``, the largest ``x - y``, the largest
    ``x + y`` and the least ``x - y``, each the first in raster order (``np.argmin`` / ``argmax`` over
    its pixels), in one pass over the image instead of one per component."""
    h, w = labels.shape
    sizes = np.zeros(count, np.int64)
    boxes = np.zeros((count, 4), np.int64)
    corners = np.zeros((count, 4, 2), np.int64)
    best = np.zeros((count, 4), np.int64)  # x + y, x - y, x + y, x - y of the corners so far
    for y in range(h):
        for x in range(w):
            k = labels[y, x] - 1
            if k < 0:
                continue
            s, d = x + y, x - y
            if sizes[k] == 0:
                boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3] = y, x, y + 1, x + 1
                for c in range(4):
                    corners[k, c, 0], corners[k, c, 1] = x, y
                best[k, 0], best[k, 1], best[k, 2], best[k, 3] = s, d, s, d
            else:
                boxes[k, 1] = min(boxes[k, 1], x)
                boxes[k, 2] = y + 1
                boxes[k, 3] = max(boxes[k, 3], x + 1)
                if s < best[k, 0]:
                    best[k, 0], corners[k, 0, 0], corners[k, 0, 1] = s, x, y
                if d > best[k, 1]:
                    best[k, 1], corners[k, 1, 0], corners[k, 1, 1] = d, x, y
                if s > best[k, 2]:
                    best[k, 2], corners[k, 2, 0], corners[k, 2, 1] = s, x, y
                if d < best[k, 3]:
                    best[k, 3], corners[k, 3, 0], corners[k, 3, 1] = d, x, y
            sizes[k] += 1
    return sizes, boxes, corners


def _side_roi(p0: Sequence[float], p1: Sequence[float], edge_id: int, square: int, side: str,
              shape: tuple[int, int], config: DetectConfig) -> EdgeRoi:
    """The ROI of the side from corner ``p0`` to ``p1`` ((x, y), Python floats: the same IEEE
    operations as on numpy scalars, without their cost)."""
    mid_x, mid_y = 0.5 * (p0[0] + p1[0]), 0.5 * (p0[1] + p1[1])
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    side_len = math.hypot(dx, dy)
    vertical = abs(dy) > abs(dx)
    along = config.edge_fraction * side_len
    if not (vertical or dx):
        raise ValueError(f"a chart square with two corners at {tuple(p0)}: no side to measure")
    slant = along * (abs(dx) / abs(dy) if vertical else abs(dy) / abs(dx))
    half_across = min(config.across_px + 0.5 * slant + config.downsample, 0.45 * side_len)
    ha, hc = 0.5 * along, half_across
    if vertical:
        x0, x1, y0, y1 = mid_x - hc, mid_x + hc, mid_y - ha, mid_y + ha
    else:
        x0, x1, y0, y1 = mid_x - ha, mid_x + ha, mid_y - hc, mid_y + hc
    return _roi(edge_id, square, side, x0, y0, x1, y1, vertical, shape, config)


def _roi(edge_id: int, square: int, side: str, x0: float, y0: float, x1: float, y1: float, vertical: bool,
         shape: tuple[int, int], config: DetectConfig) -> EdgeRoi:
    h, w = shape
    ix0, iy0, ix1, iy1 = int(round(x0)), int(round(y0)), int(round(x1)) + 1, int(round(y1)) + 1
    quality = "ok"
    b = config.border_px
    if ix0 < b or iy0 < b or ix1 > w - b or iy1 > h - b:
        quality = "near_border"
        ix0, iy0, ix1, iy1 = max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h)
    roi = EdgeRoi(edge_id, square, side, ix0, iy0, ix1, iy1, vertical, quality)
    if quality == "ok" and roi.length_px < config.min_edge_length_px:
        roi = EdgeRoi(edge_id, square, side, ix0, iy0, ix1, iy1, vertical, "too_short")
    return roi


def edge_rois(image: np.ndarray, config: DetectConfig = DetectConfig(), n: int = 1) -> list[EdgeRoi]:
    """The ROIs of every edge of every square found in ``image / n``, ``edge_id = 4 * square + side``."""
    rois = []
    for q, corners in enumerate(find_squares(image, config, n)):
        points = corners.tolist()
        for k, side in enumerate(SIDES):
            rois.append(_side_roi(points[k], points[(k + 1) % 4], 4 * q + k, q, side, image.shape, config))
    return rois


def rois_from_manifest(image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]],
                       config: DetectConfig = DetectConfig(), n: int = 1) -> list[EdgeRoi]:
    """ROIs given as ``(x, y, width, height)``; each edge's orientation from the gradients of the
    ROI of ``image / n``."""
    rois = []
    for i, (x, y, width, height) in enumerate(boxes):
        patch = divided(np.asarray(image[y:y + height, x:x + width]), n)
        gx = np.abs(np.diff(patch, axis=1)).sum() if patch.shape[1] > 1 else 0.0
        gy = np.abs(np.diff(patch, axis=0)).sum() if patch.shape[0] > 1 else 0.0
        rois.append(_roi(i, -1, "roi", x, y, x + width - 1, y + height - 1, bool(gx >= gy), image.shape, config))
    return rois
