"""Training data for the models: labels from ``final_test``, point-in-time feature sets from the
feature store (with their manifest), the lot-and-time split, and the synthetic truth (for
evaluation only, never for training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.features import build_training_set
from sensorfleet.tables import read_table

NO_FAULT = "none"


def first_tests(paths: Paths) -> pl.DataFrame:
    """One row per tested module, its first final test: ``module_id``, ``label_time`` (the test
    time), ``passed``, ``fail_bin``. Retests are left out: the yield label is first-pass yield."""
    tests = read_table(paths.tables, "final_test")
    if tests.is_empty():
        raise ValueError(f"no final-test rows under {paths.tables / 'final_test'}: ingest the labels first")
    return (tests.sort("module_id", "tested_at").group_by("module_id", maintain_order=True).first()
            .select("module_id", pl.col("tested_at").alias("label_time"), "passed", "fail_bin"))


def module_sessions(paths: Paths) -> pl.DataFrame:
    """Each module's latest characterized session: ``module_id``, ``session_id``, ``lot_id``,
    ``captured_at``."""
    stats = read_table(paths.tables, "module_stats")
    if stats.is_empty():
        raise ValueError(f"no module_stats rows under {paths.tables / 'module_stats'}: characterize first")
    return (stats.sort("module_id", "captured_at").group_by("module_id", maintain_order=True).last()
            .select("module_id", "session_id", "lot_id", "captured_at"))


def spine_path(out: Path) -> Path:
    """Where :func:`labelled_training_set` writes the spine of the set ``out``."""
    return out.with_name(out.stem + ".spine.parquet")


def labelled_training_set(paths: Paths, service: str, out: Path) -> tuple[pl.DataFrame, Path]:
    """The point-in-time training set of every module with a first final test (features as known
    at the test time, service ``service``) joined to its session and lot; written to ``out`` with
    the feature store's manifest beside it and the spine at :func:`spine_path`. Returns the frame
    and the manifest path."""
    spine = first_tests(paths).join(module_sessions(paths), on="module_id", how="inner").sort("captured_at", "module_id")
    out.parent.mkdir(parents=True, exist_ok=True)
    spine_file = spine_path(out)
    spine.write_parquet(spine_file)
    manifest = build_training_set(spine_file, out, service=service, root=paths.root)
    return pl.read_parquet(out), manifest


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The numeric ``<view>__<feature>`` columns of a training set, in order (categorical features
    such as the station are left out)."""
    return [c for c, t in frame.schema.items() if "__" in c and t.is_numeric()]


def matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """``(n, len(columns))`` float64 matrix of ``columns`` (null -> NaN); a missing column is all NaN."""
    present = [pl.col(c).cast(pl.Float64) if c in frame.columns else pl.lit(None, pl.Float64).alias(c) for c in columns]
    return frame.select(present).to_numpy().astype(np.float64, copy=False)


@dataclass(frozen=True)
class Split:
    """Lot-and-time split: whole lots, the latest ``holdout`` share of them (by first capture),
    are held out. ``train_lots``/``test_lots`` in time order."""

    train_lots: tuple[str, ...]
    test_lots: tuple[str, ...]

    def is_test(self, frame: pl.DataFrame) -> pl.Series:
        return frame.get_column("lot_id").is_in(list(self.test_lots))


def split_by_lot_and_time(frame: pl.DataFrame, holdout: float = 0.3) -> Split:
    """Hold out the latest lots (ordered by their first capture) holding about ``holdout`` of the
    modules: never a random split, so a held-out lot shares no module, wafer cohort or day with
    training. At least one lot on each side."""
    lots = (frame.group_by("lot_id").agg(pl.col("captured_at").min().alias("first"), pl.len().alias("n"))
            .sort("first", "lot_id"))
    if lots.height < 2:
        raise ValueError(f"need at least 2 lots to hold one out, found {lots.height}")
    total = int(lots["n"].sum())
    ids, counts = lots["lot_id"].to_list(), lots["n"].to_list()
    held, k = 0, len(ids)
    while k > 1 and (held + counts[k - 1]) <= holdout * total + 1e-9:
        k -= 1
        held += counts[k]
    k = min(k, len(ids) - 1)
    return Split(tuple(ids[:k]), tuple(ids[k:]))


def read_truth(paths: Paths) -> pl.DataFrame:
    """The synthetic fleet's truth (``<landing>/../truth/modules.parquet``), for evaluation only."""
    path = paths.truth / "modules.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no truth table at {path}: evaluation against the truth needs a synthetic fleet")
    return pl.read_parquet(path)


TRUE_PARAMETERS = (
    "system_gain_dn_per_e", "quantum_efficiency_R", "quantum_efficiency_G", "quantum_efficiency_B",
    "read_noise_e", "dark_current_25c_e_per_s", "full_well_e", "dark_offset_dn", "temperature_c",
    "die_radius_frac", "quantum_efficiency", "dark_current_e_per_s", "dsnu_e", "prnu_pct", "prnu1288_pct",
    "row_fpn_e", "column_fpn_e", "saturation_dn", "shading_corner_min_rel", "n_hot", "n_warm", "n_dead",
    "n_stuck", "n_noisy", "n_clusters", "n_cluster_pixels", "n_bad_columns", "n_bad_rows", "n_blemishes",
)
"""Truth columns the oracle yield model is given: the module's true physical parameters and
defect counts (not the hidden latent weakness, not the fault class, not the label)."""

CEILING_EXTRA = ("latent_weakness", "deepest_blemish_frac")
"""What the final test also uses and the captures show only in part: the hidden latent weakness
(behind the ``functional`` bin) and the deepest blemish's attenuation (the ``optics`` bin). The
ceiling model gets these beside :data:`TRUE_PARAMETERS`."""


def truth_parameters(paths: Paths) -> pl.DataFrame:
    """The truth's modules with ``deepest_blemish_frac`` (largest blemish attenuation of the
    module from ``defects.parquet``, 0 without one): for the oracle and ceiling models only."""
    modules = read_truth(paths)
    defects = paths.truth / "defects.parquet"
    if not defects.is_file():
        return modules.with_columns(deepest_blemish_frac=pl.lit(None, pl.Float64))
    deepest = (pl.read_parquet(defects).filter(pl.col("class") == "blemish").group_by("module_id")
               .agg(deepest_blemish_frac=pl.col("magnitude").max()))
    return modules.join(deepest, on="module_id", how="left", maintain_order="left").with_columns(
        pl.col("deepest_blemish_frac").fill_null(0.0))
