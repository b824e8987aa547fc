"""Deterministic training, the stored threshold and metadata, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from models.spatial import SpatialModel, load, save, score_sessions, train_spatial
from models.spatial.artifact import METADATA_FILE
from tests.models.spatial.conftest import FAST, Fleet


def _normal(fleet: Fleet) -> list[str]:
    return fleet.sessions_where(pl.col("fault_class").is_null())


def test_same_seed_gives_identical_weights_and_scores(fleet: Fleet, model: SpatialModel) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = train_spatial(fleet.paths, _normal(fleet), seed=3, config=FAST)
    assert torch.rand(1) == before  # the caller's RNG is untouched
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    ours, theirs = model.network.state_dict(), again.network.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert model.metadata.training_errors == again.metadata.training_errors
    assert model.metadata.threshold_error == again.metadata.threshold_error


def test_another_seed_gives_other_weights(fleet: Fleet, model: SpatialModel) -> None:
    other = train_spatial(fleet.paths, _normal(fleet), seed=4, config=FAST)
    assert not torch.equal(model.network.encoder[0].weight, other.network.encoder[0].weight)


def test_threshold_and_training_scores(model: SpatialModel) -> None:
    meta = model.metadata
    errors = np.asarray(meta.training_errors)
    assert meta.n_training_modules == len(errors) == 6 and np.all(np.diff(errors) >= 0)
    assert meta.threshold_error == float(np.quantile(errors, 1 - meta.false_alarm_rate, method="higher"))
    assert (errors > meta.threshold_error).mean() <= meta.false_alarm_rate
    assert model.score_01(errors).tolist() == [i / 6 for i in range(6)]


def test_save_and_load_give_the_same_scores(fleet: Fleet, model: SpatialModel, tmp_path: Path) -> None:
    folder = save(model, tmp_path / "spatial")
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["seed"] == 3 and meta["input_shape"] == [4, 64, 64] and meta["code_version"]
    assert meta["normalization"]["channels"][0] == "dark_current_dn_per_s" and "threshold_error" in meta
    back = load(folder)
    assert back.metadata == model.metadata
    sessions = fleet.sessions[:4]
    assert score_sessions(back, fleet.paths, sessions).equals(score_sessions(model, fleet.paths, sessions))


def test_load_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights.pt"):
        load(tmp_path)


def test_too_few_sessions_is_refused(fleet: Fleet) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        train_spatial(fleet.paths, fleet.sessions[:1], config=FAST)
