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
