"""PNG figures for the Dagster UI: photon-transfer curve and defect map (matplotlib, Agg)."""

from __future__ import annotations

import textwrap

import numpy as np
import polars as pl

from sensorfleet.emva.config import DEFECT_CODES
from sensorfleet.plotting import figure_png, set_margins


def plot_ptc(ptc: pl.DataFrame, gain_k_dn_per_e: float | None = None, title: str = "") -> bytes:
    """Photon-transfer curve (sigma_y^2 - sigma_y.dark^2 vs mu_y - mu_y.dark, DN) as PNG bytes.

    ``ptc`` is :attr:`SessionCharacterization.ptc`; points used in the fit are filled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flat = ptc.filter(pl.col("kind") == "flat")
    dark = ptc.filter(pl.col("kind") == "dark").sort("exposure_s")
    d_var = np.interp(flat["exposure_s"].to_numpy(), dark["exposure_s"].to_numpy(), dark["temporal_var_dn2"].to_numpy())
    x = flat["mean_dn"].to_numpy() - flat["mean_dark_dn"].to_numpy()
    y = flat["temporal_var_dn2"].to_numpy() - d_var
    used = flat["used_in_fit"].to_numpy()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x[used], y[used], "o", color="C0", label="in fit")
    ax.plot(x[~used], y[~used], "o", mfc="none", color="C0", label="not in fit")
    if gain_k_dn_per_e is not None and np.isfinite(gain_k_dn_per_e) and x.size:
        xs = np.linspace(0, float(np.nanmax(x)), 50)
        ax.plot(xs, gain_k_dn_per_e * xs, "-", color="C1", label=f"K = {gain_k_dn_per_e:.4g} DN/e-")
    ax.set_xlabel("mu_y - mu_y.dark (DN)")
    ax.set_ylabel("sigma_y^2 - sigma_y.dark^2 (DN^2)")
    # a long title (session ids run to 128 chars) is wrapped, not clipped at the figure edge
    wrapped = textwrap.fill(title or "photon transfer", 60)
    ax.set_title(wrapped, fontsize=9, y=1.0)
    ax.legend(loc="upper left")
    set_margins(fig, left=0.95, right=0.2, bottom=0.55, top=0.2 + 0.16 * (wrapped.count("\n") + 1))
    return figure_png(fig)


def plot_defect_map(defects: np.ndarray | pl.DataFrame, width: int, height: int, title: str = "") -> bytes:
    """Defect map as PNG bytes: a (H, W) uint8 class map, or a pixel_defects frame (x, y, defect_class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6 * height / max(width, 1) + 0.6))
    names = list(DEFECT_CODES)
    if isinstance(defects, pl.DataFrame):
        for i, name in enumerate(names):
            sel = defects.filter(pl.col("defect_class") == name)
            if sel.height:
                ax.scatter(sel["x"].to_numpy(), sel["y"].to_numpy(), s=4, color=f"C{i}", label=name)
    else:
        for i, name in enumerate(names):
            ys, xs = np.nonzero(defects == DEFECT_CODES[name])
            if xs.size:
                ax.scatter(xs, ys, s=4, color=f"C{i}", label=name)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    wrapped = textwrap.fill(title or "defects", 60)
    ax.set_title(wrapped, fontsize=9, y=1.0)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
    set_margins(fig, left=0.55, right=0.2, bottom=0.35, top=0.2 + 0.16 * (wrapped.count("\n") + 1))
    return figure_png(fig)
