"""sensorfleet: Dagster-free core of the camera-module characterization pipeline.

Importable without Dagster: raw decoders, the manifest schema, the zarr layout, EMVA 1288
statistics, defect classification, the synthetic fleet and the warehouse.
"""

__version__ = "0.1.0"
