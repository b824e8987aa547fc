"""sensorfleet: Dagster-free core of the camera-module characterization pipeline.

Importable without Dagster: raw decoders, the manifest schema, the zarr layout, EMVA 1288
statistics, defect classification, the synthetic fleet and the warehouse.
"""

from sensorfleet.kernel_cache import configure as _configure_kernel_cache

__version__ = "0.1.0"

_configure_kernel_cache()  # before any kernel module is imported (sensorfleet/kernel_cache.py)
