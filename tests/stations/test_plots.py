"""The station-chart figure draws the last WINDOW_DAYS days of a long history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import matplotlib.dates as mdates
import pytest

from sensorfleet.stations import plots
from sensorfleet.stations.spc import station_charts
from tests.stations.station_fleet import fleet_modules


def test_a_long_history_is_drawn_over_its_last_window(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = station_charts(fleet_modules(5, days=40, per_day=4))
    figures: list[Any] = []
    monkeypatch.setattr(plots, "figure_png", lambda fig: figures.append(fig) or b"\x89PNG")
    assert plots.plot_station_charts(chart, window_days=10) == b"\x89PNG"
    last = chart["day"].max()
    series = [line for ax in figures[0].axes for line in ax.get_lines()
              if list(line.get_xdata()) != [0, 1]]  # not the reference lines (axhline)
    drawn = {x if hasattr(x, "year") else mdates.num2date(x).date() for line in series for x in line.get_xdata()}
    assert drawn and all(last - timedelta(days=10) < d <= last for d in drawn)
    assert len(drawn) >= 5  # the window is drawn, not emptied


def _bottom_texts(chart: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    figures: list[Any] = []
    monkeypatch.setattr(plots, "figure_png", lambda fig: figures.append(fig) or b"\x89PNG")
    plots.plot_station_charts(chart)
    return [t.get_text() for ax in figures[0].axes[len(figures[0].axes) // 2:] for t in ax.texts]


def test_an_ewma_panel_without_points_says_the_stations_are_in_their_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    young = station_charts(fleet_modules(5, days=6, per_day=4))  # fewer days than the baseline window
    assert set(young["state"].to_list()) == {"baseline"}
    assert _bottom_texts(young, monkeypatch) and all(t == plots.BASELINE_ONLY for t in _bottom_texts(young, monkeypatch))
    grown = station_charts(fleet_modules(5, days=40, per_day=4))
    assert set(grown["state"].to_list()) != {"baseline"}
    assert _bottom_texts(grown, monkeypatch) == []


def test_a_one_day_chart_draws_without_a_warning() -> None:
    import warnings

    chart = station_charts(fleet_modules(5, days=1, per_day=4))
    assert chart["day"].n_unique() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's date locator warned on a one-day range
        assert plots.plot_station_charts(chart).startswith(b"\x89PNG")
