"""The convolutional autoencoder: a pure ``nn.Module`` (no data loading, no training glue).

Input and output ``(n, channels, 64, 64)`` float32 (normalized module maps). Three stride-2
convolutions take 64 -> 8 blocks, a 1x1 convolution squeezes to ``latent_channels`` (8 x 8 x 8 =
512 numbers for 16 384 inputs), and three transposed convolutions come back. The bottleneck is
narrow on purpose: smooth structure (shading, dark-current level and gradient) passes, a
particle, a bad column or a tilted optical centre does not, and shows as residual.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialAutoencoder(nn.Module):
    """Convolutional autoencoder of ``(n, channels, 64, 64)`` maps (~60 k parameters)."""

    def __init__(self, channels: int = 4, width: int = 32, latent_channels: int = 8) -> None:
        super().__init__()
        half = width // 2
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, half, 3, stride=2, padding=1), nn.ReLU(),   # 32 x 32
            nn.Conv2d(half, width, 3, stride=2, padding=1), nn.ReLU(),      # 16 x 16
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),     # 8 x 8
            nn.Conv2d(width, latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, width, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.ReLU(),  # 16 x 16
            nn.ConvTranspose2d(width, half, 4, stride=2, padding=1), nn.ReLU(),   # 32 x 32
            nn.ConvTranspose2d(half, channels, 4, stride=2, padding=1),           # 64 x 64
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``maps (n, channels, 64, 64)``, same shape."""
        if maps.ndim != 4 or maps.shape[-2:] != (64, 64):
            raise ValueError(f"expected maps of shape (n, channels, 64, 64), found {tuple(maps.shape)}")
        return self.decoder(self.encoder(maps))
