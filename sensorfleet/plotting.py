"""Matplotlib figures to PNG bytes, one way for every plot the UI shows and the files beside the
data (the worst-module plots, station charts, capture-plan study, spatial anomaly maps)."""

from __future__ import annotations

import io
from typing import Any

DPI = 100
"""Dots per inch of every figure written (a 6.4 x 4.8 in figure is 640 x 480 px)."""


def figure_png(fig: Any, dpi: int = DPI) -> bytes:
    """PNG bytes of the matplotlib ``fig`` (laid out already), which is then closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
