"""PNG figures for the UI: a module's MTF50 field map and its SFR curves (matplotlib, Agg)."""

from __future__ import annotations

import polars as pl

from sensorfleet.plotting import figure_png

_MAIN = ("L", "mono")


def plot_mtf50_field_map(sfr: pl.DataFrame, width: int, height: int, title: str = "") -> bytes:
    """Each good luminance (or mono) edge at its position, coloured by MTF50 (cycles/pixel);
    flagged edges as grey crosses. ``sfr``: the module's rows of the ``sfr`` table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sfr.filter(pl.col("channel").is_in(_MAIN) & pl.col("x_px").is_not_null())
    good = rows.filter(pl.col("quality") == "ok")
    bad = rows.filter(pl.col("quality") != "ok")
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    points = ax.scatter(good["x_px"].to_numpy(), good["y_px"].to_numpy(), c=good["mtf50_cy_per_px"].to_numpy(),
                        cmap="viridis", s=60, vmin=0.0, vmax=0.35, edgecolors="k")
    ax.scatter(bad["x_px"].to_numpy(), bad["y_px"].to_numpy(), marker="x", color="0.5", label="flagged")
    fig.colorbar(points, ax=ax, label="MTF50 (cycles/pixel)")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(title or "MTF50 over the field", fontsize=9, y=1.0)
    return figure_png(fig)


def plot_sfr_curves(curves: pl.DataFrame, sfr: pl.DataFrame, title: str = "") -> bytes:
    """The luminance (or mono) SFR of every good edge, coloured by field fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    field = dict(sfr.filter(pl.col("channel").is_in(_MAIN)).select("edge_id", "field_frac").iter_rows())
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    cmap = plt.get_cmap("plasma")
    main = curves.filter(pl.col("channel").is_in(_MAIN))
    for (edge_id,), one in main.group_by(["edge_id"], maintain_order=True):
        f = field.get(edge_id)
        ax.plot(one["frequency_cy_per_px"].to_numpy(), one["mtf"].to_numpy(), lw=0.8,
                color=cmap(float(f) if f is not None else 0.0))
    ax.axhline(0.5, color="0.6", lw=0.6, ls="--")
    ax.axvline(0.5, color="0.6", lw=0.6, ls=":")
    ax.set_xlim(0, 0.6)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.set_ylabel("SFR")
    ax.set_title(title or "SFR per edge (colour: field fraction)", fontsize=9, y=1.0)
    return figure_png(fig)
