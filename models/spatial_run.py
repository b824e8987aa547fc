"""The spatial model (``models/spatial/``) as a registered model like the tabular ones: a training
run (known-good modules of the earlier lots, evaluated on the held-out later lots against the
truth, logged and registered in MLflow, champion or challenger by the same rule), the day's
``spatial_scores`` by a registered version, and the figure of a module's anomaly map.

The model's own files (``weights.pt``, a ``state_dict`` read with ``weights_only=True``, and
``metadata.json``) are the registered artifact: no pickle is ever loaded back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from models.data import first_tests, module_sessions, split_by_lot_and_time
from models.metrics import ranking_metrics
from models.plots import roc_figure
from models.scores import day_sessions, publish_scores
from models.tracking import (
    CHAMPION,
    Candidate,
    download_source,
    log_and_register,
    register_folder,
    resolve_version,
    version_source,
)
from models.train import (
    HOLDOUT,
    TOLERANCE,
    TrainingRun,
    anomaly_targets,
    class_curves,
    per_class_metrics,
    ranking_report,
    truth_or_none,
)
from sensorfleet.config import Paths
from sensorfleet.registry import SPATIAL_SCORES
from sensorfleet.tables import PartitionWrite

SPATIAL_MODEL = "sensorfleet-spatial"
TORCH_THREADS = 1
"""torch threads for training and scoring: a fixed number, not the machine's count, so that a seed
gives the same weights on any machine; one, because on the shared 2-core machine two threads made
the demo fleet's training 12x slower (619 s vs 52 s at load average 13: docs/models-spatial.md)."""


def default_config() -> Any:
    """The training configuration the retrain job uses (``TrainingConfig`` with :data:`TORCH_THREADS`)."""
    from models.spatial import TrainingConfig

    return TrainingConfig(threads=TORCH_THREADS)


@dataclass(frozen=True)
class SpatialSplit:
    """Training sessions (known-good modules of the training lots) and the held-out modules
    (every module of the later lots: ``module_id``, ``session_id``, ``passed``)."""

    train_sessions: list[str]
    test: pl.DataFrame
    train_lots: tuple[str, ...]
    test_lots: tuple[str, ...]


def spatial_split(paths: Paths, holdout: float = HOLDOUT) -> SpatialSplit:
    """Each tested module's latest session, split by lot and time as the tabular models are;
    training keeps the modules that passed their first final test (known-good)."""
    from models.spatial import list_sessions

    mapped = set(list_sessions(paths))
    frame = (first_tests(paths).join(module_sessions(paths), on="module_id", how="inner")
             .filter(pl.col("session_id").is_in(list(mapped))).sort("captured_at", "module_id"))
    split = split_by_lot_and_time(frame, holdout)
    is_test = split.is_test(frame)
    train = frame.filter(~is_test & pl.col("passed"))
    return SpatialSplit(train["session_id"].to_list(), frame.filter(is_test), split.train_lots, split.test_lots)


def load_version(name: str, version: str, root: str | Path) -> Any:
    """The ``SpatialModel`` registered as ``version`` of ``name`` in the root's tracking store;
    kept in memory by its artifact URI (unique to its run, and a registered version's files never
    change): re-scoring every day in one process downloaded the same files once a day."""
    return _load_source(version_source(name, version, root))


@lru_cache(maxsize=4)
def _load_source(source: str) -> Any:
    from models.spatial import load

    with tempfile.TemporaryDirectory(prefix="spatial-model-") as tmp:
        return load(download_source(source, Path(tmp)))


def _errors(model: Any, modules: Sequence[Any]) -> pl.DataFrame:
    from models.spatial import score_modules
    from models.spatial.training import deterministic

    with deterministic(model.metadata.seed, TORCH_THREADS):
        return score_modules(model, modules)


def _log_model(candidate: Candidate) -> str:
    from models.spatial import save

    with tempfile.TemporaryDirectory(prefix="spatial-model-") as tmp:
        return register_folder(candidate.name, save(candidate.model, Path(tmp) / "model"))


def train_spatial_run(paths: Paths, config: Any = None, seed: int = 0, register: bool = True,
                      holdout: float = HOLDOUT, tolerance: float = TOLERANCE) -> TrainingRun:
    """Train the autoencoder on the known-good modules of the training lots, evaluate the
    reconstruction error on every module of the held-out lots (ROC-AUC overall and per fault
    class of the truth, else failed final test), log, register and alias it (``roc_auc``)."""
    from models.spatial import iter_module_maps, train_spatial

    config = config or default_config()
    split = spatial_split(paths, holdout)
    model = train_spatial(paths, split.train_sessions, seed=seed, config=config)
    held = list(iter_module_maps(paths, split.test["session_id"].to_list()))  # 64 kB each, read once
    test = split.test.join(_errors(model, held).drop("module_id"), on="session_id", how="left", maintain_order="left")
    truth = truth_or_none(paths)
    y, classes = anomaly_targets(test, truth)
    error = test["error"].to_numpy()
    overall, per_class = ranking_report(y, classes, error, test["is_alarm"].to_numpy(), config.false_alarm_rate)
    metrics = {**overall, **per_class_metrics(per_class), "threshold_error": model.metadata.threshold_error,
               "training_seconds": model.metadata.training_seconds, "fit_modules": float(len(split.train_sessions)),
               "test_modules": float(test.height)}
    registered = None
    if register:
        def evaluate(champion: Any) -> float:  # the champion's error on the same held-out modules, same order
            return ranking_metrics(y, _errors(champion, held)["error"].to_numpy())["roc_auc"]

        worst = test.sort("error", descending=True).row(0, named=True)
        figures = {"roc.png": roc_figure(class_curves(y, classes, error), f"{SPATIAL_MODEL}: held-out lots"),
                   "worst_heldout_anomaly_map.png": anomaly_map_figure(model, paths, worst["session_id"])}
        candidate = Candidate(
            name=SPATIAL_MODEL, model=model, metrics=metrics, primary="roc_auc", evaluate=evaluate,
            example=None, output=None, figures=figures, log_model=_log_model,
            loader=lambda name, version: load_version(name, version, paths.root),
            params={**asdict(config), "seed": seed, "train_lots": ",".join(split.train_lots),
                    "test_lots": ",".join(split.test_lots), "input_shape": str(model.metadata.input_shape),
                    "evaluated_against": "truth fault_class" if truth is not None else "final_test"},
            tags={"threshold_error": f"{model.metadata.threshold_error:.6f}", "test_lots": ",".join(split.test_lots)})
        registered = log_and_register(candidate, paths.root, tolerance)
    return TrainingRun(registered, metrics, {"per_fault_class": per_class}, model)


@dataclass(frozen=True)
class SpatialDay:
    """The day's published partition, its rows and the model that scored them (None without rows)."""

    write: PartitionWrite
    rows: pl.DataFrame
    model: Any


def spatial_rows(sessions: pl.DataFrame, scores: pl.DataFrame, version: str, now: datetime) -> pl.DataFrame:
    """``spatial_scores`` rows: the day's ``sessions`` (module_id, session_id, captured_at) with
    their ``score_sessions`` columns, the model version and times; the registry's column order."""
    ts = pl.Datetime("us", "UTC")
    scores = scores.drop("module_id").rename({"worst_channel": "worst_map"})
    return (sessions.join(scores, on="session_id", how="inner")
            .with_columns(model_name=pl.lit(SPATIAL_MODEL), model_version=pl.lit(version),
                          scored_at=pl.lit(now, ts), written_at=pl.lit(now, ts))
            .select(SPATIAL_SCORES.column_names).sort("rank"))


def score_spatial_day(paths: Paths, day: str, version_or_alias: str = CHAMPION, now: datetime | None = None) -> SpatialDay:
    """Score the day's modules (each one's latest session) with ``sensorfleet-spatial`` at a
    version or alias (default the champion), streaming their maps groups, and publish the day's
    ``spatial_scores`` partition. LookupError when there is no such version (before training)."""
    sessions = day_sessions(paths, day)
    if sessions.is_empty():
        return SpatialDay(publish_scores(paths, SPATIAL_SCORES, day, pl.DataFrame()), pl.DataFrame(), None)
    version = resolve_version(SPATIAL_MODEL, version_or_alias, paths.root)  # before torch loads
    from models.spatial import score_sessions
    from models.spatial.training import deterministic

    model = load_version(SPATIAL_MODEL, version, paths.root)
    with deterministic(model.metadata.seed, TORCH_THREADS):
        scores = score_sessions(model, paths, sessions["session_id"].to_list())
    rows = spatial_rows(sessions.select("module_id", "session_id", "captured_at"), scores, version,
                        now or datetime.now(UTC))
    return SpatialDay(publish_scores(paths, SPATIAL_SCORES, day, rows), rows, model)


def anomaly_map_figure(model: Any, paths: Paths, session_id: str) -> Any:
    """Two panels over the sensor (pixels of the full sensor on both axes): the module's anomaly
    map (the smoothed, scaled sum of squared residuals whose maximum is its error) and the
    normalized input map with the largest share at the worst block, the worst block marked."""
    from models.spatial import CHANNELS, load_module_maps
    from models.spatial.anomaly_map import anomaly_maps
    from models.spatial.maps import maps_group_path, stack
    from models.spatial.training import deterministic

    module = load_module_maps(maps_group_path(paths, session_id))
    maps, valid = stack([module])
    with deterministic(model.metadata.seed, TORCH_THREADS):
        result = anomaly_maps(model, maps, valid)
        normalized = model.metadata.normalization.apply(maps, valid)
    rows, cols = int(valid[0].any(dim=1).sum()), int(valid[0].any(dim=0).sum())
    extent = (0, cols * module.block_px, rows * module.block_px, 0)
    channel = int(result.worst_channel[0])
    x, y = module.block_centre_px(int(result.worst[0][0]), int(result.worst[0][1]))
    from matplotlib.figure import Figure  # no pyplot: no global figure state, half the time

    # no colour bars (the titles give the range): axes drawing was most of the 0.45 s a figure
    # took, and the day's asset draws one on every re-score of every day
    fig = Figure(figsize=(8, 3.4), dpi=80)
    for ax, image, cmap, title in zip(fig.subplots(1, 2), (result.anomaly[0], normalized[0, channel]),
                                      ("magma", "coolwarm"), ("anomaly map", f"{CHANNELS[channel]} (normalized)"),
                                      strict=True):
        values = image[:rows, :cols].numpy()
        ax.imshow(values, extent=extent, cmap=cmap)
        ax.plot([x], [y], marker="o", markersize=14, markerfacecolor="none", markeredgecolor="cyan")
        ax.set_title(f"{title}: {values.min():.2g} to {values.max():.2g}", fontsize=9)
        ax.set(xlabel="x (px)", ylabel="y (px)")
        ax.locator_params(nbins=4)
    fig.suptitle(f"{module.module_id} ({session_id}): worst residual at x={x:.0f}, y={y:.0f} px in {CHANNELS[channel]}, "
                 f"error {result.error[0]:.2f}", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.82, wspace=0.25)
    return fig


