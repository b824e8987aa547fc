"""Per-module map tensors streamed from the characterized sessions' maps groups.

A session's maps group (``<root>/maps/<day>/<session_id>.zarr``, docs/metrics.md) holds float32
``(H, W)`` maps. :func:`load_module_maps` reads three of them band by band (rows ``y0:y1``, never
a whole map) and reduces each band to blocks of ``block_px x block_px`` sensor pixels:

- ``dark_current_dn_per_s``: block mean over good pixels (``defect_class == 0``), DN/s;
- ``prnu_relative`` (flat response, includes lens shading): block mean over good pixels, split
  after the sweep into a smooth **shading** surface (robust 2-D polynomial, :func:`fit_shading`)
  and the **shading-corrected flat residual** ``flat / shading - 1``;
- ``defect_class``: block max of ``defect_class != 0`` (1 where any pixel of the block is a
  defect: a block mean would make an isolated defect 1/(block_px^2), invisible at 640 x 480).

Blocks are square so pixels keep their aspect: ``block_px = ceil(max(H, W) / GRID)``, the
``ceil(H / block_px) x ceil(W / block_px)`` blocks sit in the top-left corner of the ``GRID x
GRID`` tensor and the rest is padding (zeros, ``valid`` False, left out of loss and score).
640 x 480 and 128 x 96 both give 64 x 48 blocks (10 px and 2 px). The tensor is in physical units
(:data:`CHANNELS`); :class:`models.spatial.training.Normalization` scales it for the network.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from threadpoolctl import threadpool_limits
from torch.utils.data import IterableDataset, get_worker_info

from sensorfleet.config import Paths

GRID = 64
"""Side of the square tensor (blocks)."""
CHANNELS = ("dark_current_dn_per_s", "flat_residual", "shading_rel", "defect_presence")
"""Channels of a module tensor: block-mean dark current of good pixels (DN/s), shading-corrected
flat response minus 1, the smooth shading surface (1 = channel median of the flat response), and
1 where the block holds a defective pixel."""
SOURCE_ARRAYS = ("dark_current_dn_per_s", "prnu_relative", "defect_class")
DEFAULT_BAND_ROWS = 256  # the maps' zarr chunk height (docs/metrics.md); rounded to whole blocks
SHADING_DEGREE = 4  # log-domain fit of an off-centre cos^4 shading: 0.1 % worst residual (tests)


@dataclass(frozen=True)
class ModuleMaps:
    """One module's block-reduced maps: ``maps (len(CHANNELS), GRID, GRID) float32`` in physical
    units (zeros in the padding), ``valid (GRID, GRID) bool``; ``block_px`` sensor pixels per
    block side, sensor ``width_px`` x ``height_px``."""

    session_id: str
    module_id: str
    maps: np.ndarray
    valid: np.ndarray
    block_px: int
    width_px: int
    height_px: int

    def block_centre_px(self, row: int, col: int) -> tuple[float, float]:
        """Sensor pixel (x, y) at the centre of block (row, col), clipped to the sensor."""
        x = min(col * self.block_px + self.block_px / 2, self.width_px - 0.5)
        y = min(row * self.block_px + self.block_px / 2, self.height_px - 0.5)
        return x, y


def block_size_px(height_px: int, width_px: int, grid: int = GRID) -> int:
    """Side of a square block so that the sensor fits a ``grid x grid`` tensor."""
    return max(1, math.ceil(max(height_px, width_px) / grid))


def maps_group_path(paths: Paths, session_id: str) -> Path:
    """The maps group of ``session_id`` (one of ``<root>/maps/<day>/<session_id>.zarr``)."""
    found = sorted(paths.maps.glob(f"*/{session_id}.zarr")) if paths.maps.is_dir() else []
    complete = [p for p in found if (p / "zarr.json").is_file()]
    if not complete:
        raise FileNotFoundError(f"no maps group of session {session_id!r} under {paths.maps}/<day>/ "
                                "(characterize its day first)")
    return complete[-1]  # the latest day when a session id was re-captured


def list_sessions(paths: Paths, days: Sequence[str] | None = None) -> list[str]:
    """Session ids with a maps group, in day then id order (all days when ``days`` is None)."""
    if not paths.maps.is_dir():
        return []
    folders = sorted(p for p in paths.maps.iterdir() if p.is_dir() and (days is None or p.name in days))
    return [g.name[: -len(".zarr")] for f in folders for g in sorted(f.glob("*.zarr"))
            if not g.name.startswith(".")]


def _block_reduce(values: np.ndarray, weights: np.ndarray, block_px: int, n_cols: int,
                  reduce: str) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of a band ``(h, W)`` (h a multiple of ``block_px`` but for the last band):
    ``reduce='sum'`` -> (sum of values * weights, sum of weights), ``'max'`` -> (max, count)."""
    h, w = values.shape
    rows = math.ceil(h / block_px)
    pad = ((0, rows * block_px - h), (0, n_cols * block_px - w))
    v = np.pad(values, pad).reshape(rows, block_px, n_cols, block_px)
    wt = np.pad(weights, pad).reshape(rows, block_px, n_cols, block_px)
    count = wt.sum(axis=(1, 3))
    if reduce == "max":
        return (v * wt).max(axis=(1, 3)), count
    return (v * wt).sum(axis=(1, 3)), count


def fit_shading(flat: np.ndarray, ok: np.ndarray, degree: int = SHADING_DEGREE,
                rounds: int = 3, min_sigma: float = 0.002) -> np.ndarray:
    """Smooth shading surface of block-mean flat response ``flat (h, w)`` over blocks ``ok``:
    least-squares 2-D polynomial of ``degree`` in centred coordinates fitted to ``log(flat)``
    (an off-centre cos^4 surface down to 0.61: 0.1 % worst error in the log domain, 0.8 % when
    fitted directly), refitted ``rounds`` times
    without blocks beyond 3.5 robust sigma (blemishes, bad columns pull a plain fit). The sigma is
    at least ``min_sigma`` (relative response): below the block PRNU noise a cut would drop good
    blocks and leave the polynomial to extrapolate over them."""
    h, w = flat.shape
    yy, xx = np.mgrid[0:h, 0:w]
    u = (xx.ravel() - (w - 1) / 2) / max(w / 2, 1)
    v = (yy.ravel() - (h - 1) / 2) / max(h / 2, 1)
    terms = np.stack([u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)
    keep = ok.ravel() & np.isfinite(flat.ravel()) & (flat.ravel() > 0.05)
    target = np.log(np.where(keep, flat.ravel(), 1.0))
    if keep.sum() < terms.shape[1] * 2:  # too few blocks for the polynomial: a flat surface
        level = float(np.median(flat[ok])) if ok.any() else 1.0
        return np.full((h, w), level)
    # target and surface are log(response) below; the robust sigma is thus relative
    surface = np.zeros(h * w)
    for _ in range(rounds):
        coef, *_ = np.linalg.lstsq(terms[keep], target[keep], rcond=None)
        surface = terms @ coef
        resid = target - surface
        sigma = max(1.4826 * float(np.median(np.abs(resid[keep]))), min_sigma)
        new_keep = keep & (np.abs(resid) < 3.5 * sigma)
        if new_keep.sum() < terms.shape[1] * 2 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return np.exp(surface).reshape(h, w)


def load_module_maps(maps_group: Path, band_rows: int = DEFAULT_BAND_ROWS, grid: int = GRID) -> ModuleMaps:
    """Block-reduced maps of one session, reading ``band_rows`` rows (rounded up to whole blocks)
    of each source array at a time: peak memory is a few bands, not the sensor."""
    group: Any = zarr.open_group(str(maps_group), mode="r")
    missing = [a for a in SOURCE_ARRAYS if a not in group]
    if missing:
        raise KeyError(f"maps group {maps_group} lacks {missing}; expected {list(SOURCE_ARRAYS)}")
    height, width = group["defect_class"].shape
    block = block_size_px(height, width, grid)
    rows, cols = math.ceil(height / block), math.ceil(width / block)
    band = max(1, math.ceil(band_rows / block)) * block
    dark_sum = np.zeros((rows, cols))
    dark_n = np.zeros((rows, cols))
    flat_sum = np.zeros((rows, cols))
    flat_n = np.zeros((rows, cols))
    defect = np.zeros((rows, cols))
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        r0 = y0 // block
        classes = np.asarray(group["defect_class"][y0:y1])
        dark = np.asarray(group["dark_current_dn_per_s"][y0:y1], dtype=np.float64)
        flat = np.asarray(group["prnu_relative"][y0:y1], dtype=np.float64)
        good = classes == 0
        dark_ok = good & np.isfinite(dark)
        flat_ok = good & np.isfinite(flat)
        s, n = _block_reduce(np.where(dark_ok, dark, 0.0), dark_ok.astype(np.float64), block, cols, "sum")
        dark_sum[r0:r0 + s.shape[0]], dark_n[r0:r0 + s.shape[0]] = s, n
        s, n = _block_reduce(np.where(flat_ok, flat, 0.0), flat_ok.astype(np.float64), block, cols, "sum")
        flat_sum[r0:r0 + s.shape[0]], flat_n[r0:r0 + s.shape[0]] = s, n
        m, _ = _block_reduce((classes != 0).astype(np.float64), np.ones(classes.shape), block, cols, "max")
        defect[r0:r0 + m.shape[0]] = m
    with np.errstate(invalid="ignore", divide="ignore"):
        dark_mean = np.where(dark_n > 0, dark_sum / dark_n, np.nan)
        flat_mean = np.where(flat_n > 0, flat_sum / flat_n, np.nan)
    flat_ok_blocks = np.isfinite(flat_mean)
    # one BLAS thread: the fit is a (blocks x 15) least-squares problem, and the BLAS pool made it
    # 0.1 s a call instead of 3 ms on the shared 2-core machine (docs/models-spatial.md)
    with threadpool_limits(limits=1):
        shading = fit_shading(flat_mean, flat_ok_blocks)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = flat_mean / shading - 1.0
    out = np.zeros((len(CHANNELS), grid, grid), dtype=np.float32)
    # a block with no good pixel (a blemish core, a fully dead block) reads as the neighbourhood's
    # typical value in the continuous channels; the defect channel carries it
    dark_fill = float(np.nanmedian(dark_mean)) if np.isfinite(dark_mean).any() else 0.0
    out[0, :rows, :cols] = np.where(np.isfinite(dark_mean), dark_mean, dark_fill)
    out[1, :rows, :cols] = np.where(np.isfinite(residual), residual, 0.0)
    out[2, :rows, :cols] = shading
    out[3, :rows, :cols] = defect
    valid = np.zeros((grid, grid), dtype=bool)
    valid[:rows, :cols] = True
    attrs = dict(group.attrs)
    return ModuleMaps(str(attrs.get("session_id", Path(maps_group).stem)), str(attrs.get("module_id", "")),
                      out, valid, block, int(width), int(height))


def iter_module_maps(paths: Paths, sessions: Sequence[str], band_rows: int = DEFAULT_BAND_ROWS) -> Iterator[ModuleMaps]:
    """One :class:`ModuleMaps` per session id, opened only when the consumer asks for it."""
    for session_id in sessions:
        yield load_module_maps(maps_group_path(paths, session_id), band_rows)


class ModuleMapDataset(IterableDataset[ModuleMaps]):
    """The sessions' module maps as a torch ``IterableDataset``, one module at a time; with
    ``DataLoader`` workers each worker reads every n-th session."""

    def __init__(self, paths: Paths, sessions: Sequence[str], band_rows: int = DEFAULT_BAND_ROWS) -> None:
        self.paths = paths
        self.sessions = list(sessions)
        self.band_rows = band_rows

    def __iter__(self) -> Iterator[ModuleMaps]:
        info = get_worker_info()
        mine = self.sessions if info is None else self.sessions[info.id::info.num_workers]
        return iter_module_maps(self.paths, mine, self.band_rows)


def stack(modules: Sequence[ModuleMaps]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, C, GRID, GRID) float32`` maps and ``(n, GRID, GRID) bool`` valid masks."""
    maps = torch.from_numpy(np.stack([m.maps for m in modules]))
    valid = torch.from_numpy(np.stack([m.valid for m in modules]))
    return maps, valid
