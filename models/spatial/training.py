"""Training glue: load the training modules, fit the normalization, train the autoencoder
deterministically, set the alarm threshold.

Deterministic for a seed: the weights' initialization and the batch order come from
``torch.manual_seed(seed)`` inside a forked RNG (the caller's global RNG is untouched),
``torch.use_deterministic_algorithms(True)`` and a fixed thread count (``threads``, restored
afterwards) while training; two runs with the same seed and sessions give bit-identical weights.
The training modules' block maps (4 x 64 x 64 float32, 64 kB each) are held in memory: 200
modules are 13 MB, and every epoch re-reading the maps groups would cost far more than training.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from models.spatial.anomaly_map import anomaly_maps, channel_maps
from models.spatial.artifact import ModelMetadata, Normalization, SpatialModel
from models.spatial.maps import CHANNELS, DEFAULT_BAND_ROWS, GRID, iter_module_maps, stack
from models.spatial.torch_model import SpatialAutoencoder
from sensorfleet.config import Paths


@dataclass(frozen=True)
class TrainingConfig:
    """How to train (stored in the model's metadata)."""

    epochs: int = 150
    batch_modules: int = 8
    learning_rate: float = 2e-3
    width: int = 32
    latent_channels: int = 8
    #: share of training modules allowed above the alarm threshold
    false_alarm_rate: float = 0.05
    #: torch threads while training (the shared development machine has 2 cores)
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), found {self.false_alarm_rate}")
        if self.epochs < 1 or self.batch_modules < 1:
            raise ValueError(f"epochs and batch_modules must be >= 1, found {self.epochs}, {self.batch_modules}")


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic torch with ``threads`` threads; the previous settings come back."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(old_threads)
            torch.use_deterministic_algorithms(old_det)


def masked_mse(recon: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid blocks of every channel."""
    mask = valid.unsqueeze(1).to(recon.dtype)
    return ((recon - target).square() * mask).sum() / (mask.sum() * recon.shape[1]).clamp(min=1)


def train_network(x: torch.Tensor, valid: torch.Tensor, config: TrainingConfig, seed: int) -> SpatialAutoencoder:
    """A :class:`SpatialAutoencoder` trained on normalized ``x (n, C, G, G)``, ``valid (n, G, G)``."""
    with deterministic(seed, config.threads):
        network = SpatialAutoencoder(x.shape[1], config.width, config.latent_channels)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        order = torch.Generator().manual_seed(seed)
        network.train()
        for _ in range(config.epochs):
            for batch in torch.randperm(len(x), generator=order).split(config.batch_modules):
                optimizer.zero_grad()
                loss = masked_mse(network(x[batch]), x[batch], valid[batch])
                loss.backward()
                optimizer.step()
        network.eval()
    return network


def train_spatial(paths: Paths, sessions: Sequence[str], seed: int = 0,
                  config: TrainingConfig | None = None, band_rows: int = DEFAULT_BAND_ROWS) -> SpatialModel:
    """Train on the maps groups of ``sessions`` (session ids); the threshold is the training
    errors' ``1 - false_alarm_rate`` quantile."""
    config = config or TrainingConfig()
    start = time.perf_counter()
    modules = list(iter_module_maps(paths, sessions, band_rows))
    if len(modules) < 2:
        raise ValueError(f"need at least 2 training sessions with maps groups, found {len(modules)}")
    maps, valid = stack(modules)
    normalization = Normalization.fit(maps, valid)
    network = train_network(normalization.apply(maps, valid), valid, config, seed)
    meta = ModelMetadata(
        seed=seed, input_shape=(len(CHANNELS), GRID, GRID), normalization=normalization,
        threshold_error=0.0, channel_scale=(), false_alarm_rate=config.false_alarm_rate, training_errors=(),
        training={k: v for k, v in asdict(config).items()}, n_training_modules=len(modules),
        training_seconds=0.0,
        architecture={"width": config.width, "latent_channels": config.latent_channels},
    )
    model = SpatialModel(network, meta)
    with deterministic(seed, config.threads):
        _, per_channel = channel_maps(model, maps, valid)
        worst = per_channel.flatten(2).max(dim=2).values.double().numpy()  # (n, C)
        channel_scale = tuple(max(float(v), 1e-6) for v in np.median(worst, axis=0))
        model.metadata = replace(meta, channel_scale=channel_scale)
        errors = np.sort(anomaly_maps(model, maps, valid).error)
    threshold = float(np.quantile(errors, 1 - config.false_alarm_rate, method="higher"))
    model.metadata = replace(model.metadata, threshold_error=threshold,
                             training_errors=tuple(float(e) for e in errors),
                             training_seconds=round(time.perf_counter() - start, 3))
    return model
