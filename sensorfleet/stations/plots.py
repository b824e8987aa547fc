"""PNG figure of the station charts for the Dagster UI (matplotlib, Agg)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from sensorfleet.plotting import figure_png, set_margins
from sensorfleet.stations.metrics import METRICS

BASELINE_ONLY = ("every station is still in its baseline window:\n"
                 "its EWMA and limits start once the baseline is complete")
"""The note in an EWMA panel with no point yet."""

WINDOW_DAYS = 90
"""Days drawn back from the chart's last day: the drawing's cost and legibility stay those of
a quarter however long the history (the table keeps every day)."""


def plot_station_charts(chart: pl.DataFrame, title: str = "", window_days: int = WINDOW_DAYS) -> bytes:
    """One column per metric: the daily ratio of each station against the other stations
    (top) and its EWMA with its +-limits (bottom, z units); baseline days hollow, alarms red.

    ``chart``: :func:`sensorfleet.stations.spc.station_charts` rows (any number of stations);
    the last ``window_days`` days up to its latest are drawn.

    Drawn for every capture day, so it is kept cheap: the rows are split by (metric, station)
    once, the days go to matplotlib as day numbers (its date axis, without converting each
    date), and the margins are fixed instead of measured by a layout pass.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if chart.height:
        chart = chart.filter(pl.col("day") > pl.col("day").max() - timedelta(days=window_days))
    metrics = [m for m in METRICS if m in set(chart["metric"].to_list())] or list(METRICS)
    fig, axes = plt.subplots(2, len(metrics), figsize=(6.5 * len(metrics), 7), sharex=True, squeeze=False)
    stations = sorted(set(chart["station_id"].to_list()))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(stations)}
    # matplotlib's date numbers are days since 1970-01-01, as polars' Date
    series = chart.sort("day").with_columns(x=pl.col("day").cast(pl.Int32).cast(pl.Float64)).partition_by(
        ["metric", "station_id"], as_dict=True)
    for col, metric in enumerate(metrics):
        top, bottom = axes[0][col], axes[1][col]
        live = 0
        for station in stations:
            rows = series.get((metric, station))
            if rows is not None:
                live += _draw_station(top, bottom, rows, colours[station], station)
        if not live:  # say why the panel is empty (a young fleet: the demo's is), around z = 0
            bottom.set_ylim(-3.0, 3.0)
            bottom.text(0.5, 0.5, BASELINE_ONLY, transform=bottom.transAxes, ha="center", va="center",
                        fontsize=9, color="0.35", bbox={"facecolor": "white", "edgecolor": "none"})
        top.axhline(1.0, color="grey", lw=0.6)
        top.set_title(textwrap.fill(f"{metric}: {METRICS[metric].description}", 90), fontsize=8, y=1.0)
        top.set_ylabel("ratio to the other stations")
        bottom.set_ylabel("EWMA (z), dashed: limits; x: alarm")
        bottom.axhline(0.0, color="grey", lw=0.6)
        top.legend(fontsize=7, ncol=2)
        locator = AutoDateLocator()  # its default ticks: a maxticks of its own warns on a one-day chart
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if title:
        fig.suptitle(title)
    set_margins(fig, left=0.9, right=0.15, bottom=0.55, top=0.95 if title else 0.6, wspace=0.22, hspace=0.08)
    return figure_png(fig)


def _draw_station(top: Any, bottom: Any, rows: pl.DataFrame, colour: Any, station: str) -> int:
    """One station's ratio (``top``) and EWMA with limits and alarms (``bottom``) of one metric;
    returns its days past the baseline (the points drawn at the bottom)."""
    x, ratio = rows["x"].to_numpy(), rows["ratio"].to_numpy()
    state = rows["state"].to_numpy().astype(str)
    base, alarm = state == "baseline", np.char.startswith(state, "alarm")
    live = ~base
    ewma, limit = rows["ewma"].to_numpy(), rows["limit"].to_numpy()
    top.plot(x, ratio, "-", color=colour, lw=0.8, label=station)
    if base.any():  # an empty series is an artist drawn for nothing (the demo's days are all baseline)
        top.plot(x[base], ratio[base], "o", mfc="none", color=colour, ms=4)
    if live.any():
        top.plot(x[live], ratio[live], "o", color=colour, ms=3)
        bottom.plot(x[live], ewma[live], "-o", color=colour, ms=3, lw=1)
        bottom.plot(x[live], limit[live], "--", color=colour, lw=0.7)
        bottom.plot(x[live], -limit[live], "--", color=colour, lw=0.7)
    if alarm.any():
        bottom.plot(x[alarm], ewma[alarm], "x", color="red", ms=8, mew=2)
    return int(live.sum())
