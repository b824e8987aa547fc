"""sensorfleet.plotting: a figure becomes PNG bytes of its size at the house DPI, and is closed."""

from __future__ import annotations

import io

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from sensorfleet.plotting import DPI, figure_png  # noqa: E402


def test_a_figure_becomes_a_png_of_its_size_and_is_closed() -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.plot([0, 1], [0, 1])
    png = figure_png(fig)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (int(6.4 * DPI), int(4.8 * DPI))
    assert not plt.fignum_exists(fig.number)
