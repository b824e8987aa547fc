"""The study's figure: station time against accuracy, one point per evaluated plan (PNG, Agg)."""

from __future__ import annotations

import numpy as np
import polars as pl

from sensorfleet.plotting import figure_png

FLOOR = 1e-3
"""Ratios below this (the full plan's 0 among them) are drawn at it on the log axis."""


def plot_study(plans: pl.DataFrame, title: str = "capture-plan study") -> bytes:
    """Station time per module (s) against the worst metric deviation in units of its tolerance
    (log; 1 = at the tolerance), from ``capture_plans`` rows: plans within tolerance and the
    decision limit in green, outside tolerance in red, within tolerance but changing too many
    decisions in orange; the recommended plan starred. PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    share = plans["changed_decisions_share"].fill_null(0.0).to_numpy()
    limit = plans["max_changed_share"].to_numpy()
    within = plans["metrics_within_tolerance"].to_numpy().astype(bool)
    decided = share <= limit
    x = plans["station_time_s"].to_numpy()
    y = np.maximum(np.nan_to_num(plans["worst_tolerance_ratio"].to_numpy().astype(float), nan=np.inf), FLOOR)
    y = np.minimum(y, 1e4)
    groups = ((within & decided, "C2", "o", "within tolerance"), (~within, "C3", "x", "outside tolerance"),
              (within & ~decided, "C1", "s", "decisions changed beyond the limit"))
    for mask, colour, marker, label in groups:
        if mask.any():
            ax.scatter(x[mask], y[mask], c=colour, marker=marker, label=label, zorder=3)
    for row, xi, yi in zip(plans.iter_rows(named=True), x, y, strict=True):
        if row["recommended"] or row["plan_id"] == "full":
            if row["recommended"]:
                ax.scatter([xi], [yi], s=260, marker="*", facecolors="none", edgecolors="k", zorder=4,
                           label="recommended")
            ax.annotate(row["plan_id"], (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("station time per module (s)")
    ax.set_ylabel(f"worst metric deviation / tolerance (0 drawn at {FLOOR:g})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)
