"""PNG figure of the station charts for the Dagster UI (matplotlib, Agg)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from sensorfleet.plotting import figure_png
from sensorfleet.stations.metrics import METRICS

WINDOW_DAYS = 90
"""Days drawn back from the chart's last day: the drawing's cost and legibility stay those of
a quarter however long the history (the table keeps every day)."""


def plot_station_charts(chart: pl.DataFrame, title: str = "", window_days: int = WINDOW_DAYS) -> bytes:
    """One column per metric: the daily ratio of each station against the other stations
    (top) and its EWMA with its +-limits (bottom, z units); baseline days hollow, alarms red.

    ``chart``: :func:`sensorfleet.stations.spc.station_charts` rows (any number of stations);
    the last ``window_days`` days up to its latest are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if chart.height:
        chart = chart.filter(pl.col("day") > pl.col("day").max() - timedelta(days=window_days))

    metrics = [m for m in METRICS if m in set(chart["metric"].to_list())] or list(METRICS)
    fig, axes = plt.subplots(2, len(metrics), figsize=(6.5 * len(metrics), 7), sharex=True, squeeze=False)
    stations = sorted(set(chart["station_id"].to_list()))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(stations)}
    for col, metric in enumerate(metrics):
        top, bottom = axes[0][col], axes[1][col]
        for station in stations:
            rows = chart.filter((pl.col("metric") == metric) & (pl.col("station_id") == station)).sort("day")
            if rows.is_empty():
                continue
            c = colours[station]
            base = rows.filter(pl.col("state") == "baseline")
            live = rows.filter(pl.col("state") != "baseline")
            top.plot(rows["day"].to_list(), rows["ratio"].to_list(), "-", color=c, lw=0.8, label=station)
            top.plot(base["day"].to_list(), base["ratio"].to_list(), "o", mfc="none", color=c, ms=4)
            top.plot(live["day"].to_list(), live["ratio"].to_list(), "o", color=c, ms=3)
            bottom.plot(live["day"].to_list(), live["ewma"].to_list(), "-o", color=c, ms=3, lw=1)
            bottom.plot(live["day"].to_list(), live["limit"].to_list(), "--", color=c, lw=0.7)
            bottom.plot(live["day"].to_list(), (-live["limit"]).to_list(), "--", color=c, lw=0.7)
            alarms = live.filter(pl.col("state").str.starts_with("alarm"))
            bottom.plot(alarms["day"].to_list(), alarms["ewma"].to_list(), "x", color="red", ms=8, mew=2)
        top.axhline(1.0, color="grey", lw=0.6)
        top.set_title(f"{metric}: {METRICS[metric].description}", fontsize=8)
        top.set_ylabel("ratio to the other stations")
        bottom.set_ylabel("EWMA (z), dashed: limits; x: alarm")
        bottom.axhline(0.0, color="grey", lw=0.6)
        top.legend(fontsize=7, ncol=2)
        for label in bottom.get_xticklabels():
            label.set_rotation(30)
            label.set_fontsize(7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return figure_png(fig)
