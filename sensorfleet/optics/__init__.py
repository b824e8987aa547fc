"""Lens qualification: slanted-edge SFR (ISO 12233:2023 e-SFR) from ``edge_chart`` frames, and
relative illumination and colour shading from the flats. Dagster-free; one job per module:

- :mod:`~sensorfleet.optics.esfr`: the e-SFR of one edge (compiled), :mod:`~sensorfleet.optics.esfr_numpy`
  the same steps in plain numpy;
- :mod:`~sensorfleet.optics.detect`: dark squares of a chart and the ROI of each edge;
- :mod:`~sensorfleet.optics.chart`: every edge of a chart image, per CFA channel and luminance;
- :mod:`~sensorfleet.optics.module`, :mod:`~sensorfleet.optics.shading`: per-module sharpness; relative
  illumination and colour shading;
- :mod:`~sensorfleet.optics.session`, :mod:`~sensorfleet.optics.day`: one session, a whole day (tables, curves);
- :mod:`~sensorfleet.optics.plots`: the MTF50 field map and SFR curves as PNG;
- :mod:`~sensorfleet.optics.render`: edges and charts rendered with a known PSF (truth, tests).
"""

from sensorfleet.optics.chart import ChartConfig, EdgeMeasurement, analyse_chart
from sensorfleet.optics.day import (
           OpticsDayReport,
           characterize_optics_day,
           curves_path,
           read_curves,
)
from sensorfleet.optics.esfr import EdgeSfr, SfrConfig, edge_sfr

__all__ = ["ChartConfig", "EdgeMeasurement", "EdgeSfr", "OpticsDayReport", "SfrConfig", "analyse_chart",
           "characterize_optics_day", "curves_path", "edge_sfr", "read_curves"]
