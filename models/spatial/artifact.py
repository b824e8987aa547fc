"""A trained spatial model and its file form: ``weights.pt`` (the ``state_dict``) and
``metadata.json`` (everything needed to score with it and to know where it came from)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import sensorfleet
from models.spatial.maps import CHANNELS, GRID
from models.spatial.torch_model import SpatialAutoencoder

MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.pt"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class Normalization:
    """Per channel ``(x - centre) / scale`` clipped to ``+-clip``; centre and scale are the median
    and 1.4826 x MAD of the training modules' valid blocks (the defect channel, 0/1, is kept)."""

    channels: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    clip: float = 10.0

    def apply(self, maps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Normalized ``maps (n, C, G, G)``; the padding (``~valid``) stays 0."""
        centre = torch.tensor(self.centre, dtype=maps.dtype).view(1, -1, 1, 1)
        scale = torch.tensor(self.scale, dtype=maps.dtype).view(1, -1, 1, 1)
        out = ((maps - centre) / scale).clamp(-self.clip, self.clip)
        return out * valid.unsqueeze(1).to(maps.dtype)

    @classmethod
    def fit(cls, maps: torch.Tensor, valid: torch.Tensor, clip: float = 10.0) -> Normalization:
        """Robust centre and scale per channel from training ``maps (n, C, G, G)``."""
        centre, scale = [], []
        for c, name in enumerate(CHANNELS):
            if name == "defect_presence":
                centre.append(0.0)
                scale.append(1.0)
                continue
            values = maps[:, c][valid].double().numpy()
            med = float(np.median(values))
            mad = 1.4826 * float(np.median(np.abs(values - med)))
            centre.append(med)
            scale.append(mad if mad > 1e-9 else 1.0)
        return cls(CHANNELS, tuple(centre), tuple(scale), clip)


@dataclass(frozen=True)
class ModelMetadata:
    """What travels with the weights (``metadata.json``)."""

    seed: int
    input_shape: tuple[int, int, int]
    normalization: Normalization
    #: reconstruction error (max of the smoothed anomaly map) above which a module alarms
    threshold_error: float
    #: per channel: median over training modules of the channel's maximum anomaly (anomaly_map.py)
    channel_scale: tuple[float, ...]
    false_alarm_rate: float
    #: sorted training-module errors: a score is the fraction of them below a module's error
    training_errors: tuple[float, ...]
    training: dict[str, float | int | str]
    n_training_modules: int
    training_seconds: float
    code_version: str = sensorfleet.__version__
    model_format_version: int = MODEL_FORMAT_VERSION
    architecture: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        raw = json.loads(text)
        if raw.get("model_format_version") != MODEL_FORMAT_VERSION:
            raise ValueError(f"metadata model_format_version {raw.get('model_format_version')!r}; "
                             f"this code reads {MODEL_FORMAT_VERSION}")
        norm = raw.pop("normalization")
        norm = Normalization(tuple(norm["channels"]), tuple(norm["centre"]), tuple(norm["scale"]), norm["clip"])
        return cls(**{**raw, "normalization": norm, "input_shape": tuple(raw["input_shape"]),
                      "training_errors": tuple(raw["training_errors"]),
                      "channel_scale": tuple(raw["channel_scale"])})


@dataclass
class SpatialModel:
    """A trained autoencoder and its metadata."""

    network: SpatialAutoencoder
    metadata: ModelMetadata

    def score_01(self, errors: np.ndarray) -> np.ndarray:
        """Fraction of training modules with a lower error, for each error."""
        train = np.asarray(self.metadata.training_errors)
        return np.searchsorted(train, errors, side="left") / max(len(train), 1)


def save(model: SpatialModel, folder: Path) -> Path:
    """Write ``weights.pt`` and ``metadata.json`` into ``folder`` (created); returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.network.state_dict(), folder / WEIGHTS_FILE)
    (folder / METADATA_FILE).write_text(model.metadata.to_json())
    return folder


def load(folder: Path) -> SpatialModel:
    """The model saved in ``folder`` by :func:`save`."""
    folder = Path(folder)
    missing = [f for f in (WEIGHTS_FILE, METADATA_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}; a saved spatial model has {WEIGHTS_FILE} and {METADATA_FILE}")
    meta = ModelMetadata.from_json((folder / METADATA_FILE).read_text())
    if meta.input_shape != (len(CHANNELS), GRID, GRID):
        raise ValueError(f"{folder}: input_shape {meta.input_shape}, this code builds {(len(CHANNELS), GRID, GRID)}")
    network = SpatialAutoencoder(channels=meta.input_shape[0], **meta.architecture)
    network.load_state_dict(torch.load(folder / WEIGHTS_FILE, weights_only=True))
    network.eval()
    return SpatialModel(network, meta)
