"""EMVA 1288 (Release 4.0) characterization core: per-pixel maps, module metrics, defects.

Dagster-free. Entry points: :func:`characterize_frames` (any (n, H, W) uint16 array-like + its
manifest), :func:`characterize_session` (a captures zarr group) and :func:`characterize_day`;
:func:`worst_session` ranks a day's ``module_stats``.
Definitions and choices: docs/metrics.md.
"""

from sensorfleet.emva.config import DEFECT_CODES, CharacterizationConfig, DefectThresholds
from sensorfleet.emva.day import DayCharacterizationReport, characterize_day
from sensorfleet.emva.mapsgroup import load_maps, load_session_rows
from sensorfleet.emva.plots import plot_defect_map, plot_ptc
from sensorfleet.emva.quality import MIN_FIT_R2, PTC_R2_COLUMN, worst_session
from sensorfleet.emva.rows import SessionCharacterization
from sensorfleet.emva.session import characterize_frames, characterize_session

__all__ = [
    "DEFECT_CODES",
    "MIN_FIT_R2",
    "PTC_R2_COLUMN",
    "CharacterizationConfig",
    "DayCharacterizationReport",
    "DefectThresholds",
    "SessionCharacterization",
    "characterize_day",
    "characterize_frames",
    "characterize_session",
    "load_maps",
    "load_session_rows",
    "plot_defect_map",
    "plot_ptc",
    "worst_session",
]
