"""Lens qualification: slanted-edge SFR (ISO 12233:2023 e-SFR) from ``edge_chart`` frames, and
relative illumination and colour shading from the flats. Dagster-free; one job per module:

- :mod:`~sensorfleet.optics.esfr`: the e-SFR of one edge (compiled), :mod:`~sensorfleet.optics.esfr_numpy`
  the same steps in plain numpy;
- :mod:`~sensorfleet.optics.detect`: dark squares of a chart and the ROI of each edge;
- :mod:`~sensorfleet.optics.chart`: every edge of a chart image, per CFA channel and luminance;
- :mod:`~sensorfleet.optics.render`: edges and charts rendered with a known PSF (truth, tests).
"""
