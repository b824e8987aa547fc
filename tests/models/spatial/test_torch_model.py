from __future__ import annotations

import pytest
import torch

from models.spatial.torch_model import SpatialAutoencoder


def test_autoencoder_keeps_the_shape_and_is_small() -> None:
    net = SpatialAutoencoder(channels=4)
    assert net(torch.zeros(2, 4, 64, 64)).shape == (2, 4, 64, 64)
    assert sum(p.numel() for p in net.parameters()) < 100_000


def test_autoencoder_names_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"\(n, channels, 64, 64\)"):
        SpatialAutoencoder()(torch.zeros(1, 4, 32, 32))
