"""Post-processing: residuals -> anomaly map -> module score and worst location.

Per channel, the residual (reconstruction - input, normalized units) becomes a map of blocks:

- continuous channels (dark current, flat residual, shading): the **signed** residual averaged
  over a ``smoothing_blocks`` square window, then squared. The block-level PRNU and dark-current
  noise is white and cannot be reconstructed; averaging before squaring cancels it (variance / 25)
  while a blemish edge, a shading change or a dark-current gradient keeps its weight. Squaring
  first left a noise floor (~2 in the first trial) above every particle and column module.
- defect presence: the squared residual averaged over the window (anomalib smooths its maps the
  same way): an isolated defective pixel spreads to 1/25, a bad column keeps 1/5, a particle ~1.

Each channel's map is divided by its training scale (the median over training modules of the
channel's maximum), so the channels' typical worst blocks weigh 1 each; the anomaly map is their
sum. A module's error is the maximum of its map, its worst block where that lies, its worst
channel the one with the largest share there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from models.spatial.artifact import SpatialModel
from models.spatial.maps import CHANNELS, DEFAULT_BAND_ROWS, ModuleMaps, iter_module_maps, stack
from sensorfleet.config import Paths

SMOOTHING_BLOCKS = 5

SCORE_SCHEMA = {
    "module_id": pl.String, "session_id": pl.String, "score": pl.Float64, "error": pl.Float64,
    "rank": pl.Int64, "is_alarm": pl.Boolean, "worst_x_px": pl.Float64, "worst_y_px": pl.Float64,
    "worst_channel": pl.String,
}


@dataclass(frozen=True)
class AnomalyMaps:
    """``residual (n, C, G, G)`` squared residuals (0 in the padding), ``anomaly (n, G, G)`` the
    smoothed sum over channels, ``error (n,)`` its maximum, ``worst (n, 2)`` (row, col) of the
    maximum, ``worst_channel (n,)`` index into :data:`CHANNELS`."""

    residual: torch.Tensor
    anomaly: torch.Tensor
    error: np.ndarray
    worst: np.ndarray
    worst_channel: np.ndarray


def _smooth(x: torch.Tensor, blocks: int) -> torch.Tensor:
    return F.avg_pool2d(x, blocks, stride=1, padding=blocks // 2, count_include_pad=True)


def channel_maps(model: SpatialModel, maps: torch.Tensor, valid: torch.Tensor,
                 smoothing_blocks: int = SMOOTHING_BLOCKS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(residual, per_channel)``: squared residuals and the unscaled per-channel anomaly maps
    ``(n, C, G, G)`` of physical-unit ``maps (n, C, G, G)`` with ``valid (n, G, G)``."""
    x = model.metadata.normalization.apply(maps, valid)
    model.network.eval()
    with torch.no_grad():
        recon = model.network(x)
    mask = valid.unsqueeze(1).to(x.dtype)
    signed = (recon - x) * mask
    continuous = torch.tensor([name != "defect_presence" for name in CHANNELS]).view(1, -1, 1, 1)
    per_channel = torch.where(continuous, _smooth(signed, smoothing_blocks).square(),
                              _smooth(signed.square(), smoothing_blocks)) * mask
    return signed.square(), per_channel


def anomaly_maps(model: SpatialModel, maps: torch.Tensor, valid: torch.Tensor,
                 smoothing_blocks: int = SMOOTHING_BLOCKS) -> AnomalyMaps:
    """Residuals and anomaly maps of physical-unit ``maps (n, C, G, G)`` with ``valid (n, G, G)``."""
    residual, per_channel = channel_maps(model, maps, valid, smoothing_blocks)
    scale = torch.tensor(model.metadata.channel_scale or (1.0,) * len(CHANNELS), dtype=per_channel.dtype)
    per_channel = per_channel / scale.view(1, -1, 1, 1)
    anomaly = per_channel.sum(dim=1)
    error, index = anomaly.flatten(1).max(dim=1)
    grid = anomaly.shape[-1]
    rows, cols = (index // grid).numpy(), (index % grid).numpy()
    channel = per_channel[torch.arange(len(rows)), :, rows, cols].argmax(dim=1).numpy()
    return AnomalyMaps(residual, anomaly, error.double().numpy(), np.stack([rows, cols], axis=1), channel)


def score_modules(model: SpatialModel, modules: Sequence[ModuleMaps]) -> pl.DataFrame:
    """Scores of ``modules`` (rank 1 = the highest error among them); schema :data:`SCORE_SCHEMA`."""
    if not modules:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    maps, valid = stack(modules)
    result = anomaly_maps(model, maps, valid)
    xy = [m.block_centre_px(int(r), int(c)) for m, (r, c) in zip(modules, result.worst, strict=True)]
    frame = pl.DataFrame({
        "module_id": [m.module_id for m in modules],
        "session_id": [m.session_id for m in modules],
        "score": model.score_01(result.error).astype(np.float64),
        "error": result.error,
        "rank": np.zeros(len(modules), dtype=np.int64),
        "is_alarm": result.error > model.metadata.threshold_error,
        "worst_x_px": [p[0] for p in xy],
        "worst_y_px": [p[1] for p in xy],
        "worst_channel": [CHANNELS[int(c)] for c in result.worst_channel],
    }, schema=SCORE_SCHEMA)
    return frame.with_columns(rank=pl.col("error").rank("ordinal", descending=True).cast(pl.Int64))


def score_sessions(model: SpatialModel, paths: Paths, sessions: Sequence[str], batch_modules: int = 64,
                   band_rows: int = DEFAULT_BAND_ROWS) -> pl.DataFrame:
    """Score the sessions' modules, streaming their maps groups (``batch_modules`` small tensors
    held at a time); ``rank`` is over all ``sessions``. Columns: :data:`SCORE_SCHEMA`."""
    parts: list[pl.DataFrame] = []
    batch: list[ModuleMaps] = []
    for module in iter_module_maps(paths, sessions, band_rows):
        batch.append(module)
        if len(batch) == batch_modules:
            parts.append(score_modules(model, batch))
            batch = []
    parts.append(score_modules(model, batch))
    frame = pl.concat(parts)
    return frame.with_columns(rank=pl.col("error").rank("ordinal", descending=True).cast(pl.Int64))
