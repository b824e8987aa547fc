"""Spatial anomaly model: a small convolutional autoencoder on block-reduced per-module maps
(dark current, shading-corrected flat, shading, defect presence) for what tabular summaries miss:
particles and blemishes, shading tilt, column patterns. docs/models-spatial.md.

Layout (anomalib's): ``torch_model.py`` the pure ``nn.Module``, ``training.py`` the training glue,
``anomaly_map.py`` the scoring; ``maps.py`` streams the inputs from the maps groups,
``artifact.py`` holds the trained model and its files, ``evaluation.py`` compares with the truth.
"""

from models.spatial.anomaly_map import SCORE_SCHEMA, score_modules, score_sessions
from models.spatial.artifact import ModelMetadata, Normalization, SpatialModel, load, save
from models.spatial.evaluation import auc_by_fault_class, split_lots
from models.spatial.maps import (
    CHANNELS,
    GRID,
    ModuleMapDataset,
    ModuleMaps,
    iter_module_maps,
    list_sessions,
    load_module_maps,
)
from models.spatial.training import TrainingConfig, train_spatial

__all__ = [
    "CHANNELS", "GRID", "SCORE_SCHEMA", "ModelMetadata", "ModuleMapDataset", "ModuleMaps", "Normalization",
    "SpatialModel", "TrainingConfig", "auc_by_fault_class", "iter_module_maps", "list_sessions", "load",
    "load_module_maps", "save", "score_modules", "score_sessions", "split_lots", "train_spatial",
]
