"""The map loader: shapes, physical units against the truth, band independence, streaming."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from models.spatial import maps as maps_module
from models.spatial.artifact import Normalization
from models.spatial.maps import (
    CHANNELS,
    GRID,
    ModuleMapDataset,
    block_size_px,
    fit_shading,
    iter_module_maps,
    load_module_maps,
    stack,
)
from tests.models.spatial.conftest import Fleet, maps_group


def test_block_size_keeps_pixels_square_and_fits_the_grid() -> None:
    assert block_size_px(480, 640) == 10 and block_size_px(96, 128) == 2 and block_size_px(64, 96) == 2
    assert block_size_px(3000, 4000) == 63  # 64 x 48 blocks of 63 px: 4032 x 3024 covers the sensor


def test_shapes_units_and_padding(fleet: Fleet) -> None:
    session = fleet.sessions[0]
    m = load_module_maps(maps_group(fleet.paths, session))
    assert m.maps.shape == (len(CHANNELS), GRID, GRID) and m.maps.dtype == np.float32
    assert m.block_px == 2 and m.valid[:32, :48].all() and m.valid.sum() == 32 * 48
    assert not m.maps[:, ~m.valid].any()  # padding is zero
    truth = fleet.truth_modules.filter(pl.col("session_id") == session).row(0, named=True)
    dark_dn_per_s = truth["dark_current_e_per_s"] * truth["system_gain_dn_per_e"]
    assert np.median(m.maps[0][m.valid]) == pytest.approx(dark_dn_per_s, rel=0.15)
    assert np.median(m.maps[2][m.valid]) == pytest.approx(1.0, abs=0.02)  # shading about the median
    assert abs(np.median(m.maps[1][m.valid])) < 0.005  # corrected flat residual centred on 0
    assert set(np.unique(m.maps[3])) <= {0.0, 1.0}


def test_defect_presence_marks_the_truths_defects(fleet: Fleet) -> None:
    for session in fleet.sessions[:4]:
        m = load_module_maps(maps_group(fleet.paths, session))
        points = fleet.truth_defects.filter((pl.col("session_id") == session)
                                            & pl.col("class").is_in(["hot", "dead", "stuck"]))
        for x, y in points.select("x", "y").rows():
            assert m.maps[3, y // m.block_px, x // m.block_px] == 1.0


def test_band_height_does_not_change_the_result(fleet: Fleet) -> None:
    group = maps_group(fleet.paths, fleet.sessions[1])
    whole, banded = load_module_maps(group, band_rows=1024), load_module_maps(group, band_rows=6)
    np.testing.assert_allclose(whole.maps, banded.maps, rtol=1e-6, atol=1e-7)


class _CountingArray:
    def __init__(self, array: Any, log: list[int]) -> None:
        self.array, self.log, self.shape = array, log, array.shape

    def __getitem__(self, key: slice) -> Any:
        self.log.append(len(range(*key.indices(self.shape[0]))))
        return self.array[key]


class _CountingGroup:
    def __init__(self, group: Any, log: list[int]) -> None:
        self.group, self.log, self.attrs = group, log, group.attrs

    def __contains__(self, name: str) -> bool:
        return name in self.group

    def __getitem__(self, name: str) -> _CountingArray:
        return _CountingArray(self.group[name], self.log)


def test_loader_streams_one_module_and_one_band_at_a_time(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    rows_read: list[int] = []
    real_open = maps_module.zarr.open_group

    def counting_open(path: str, mode: str = "r") -> _CountingGroup:
        opened.append(path)
        return _CountingGroup(real_open(path, mode=mode), rows_read)

    monkeypatch.setattr(maps_module.zarr, "open_group", counting_open)
    modules = iter_module_maps(fleet.paths, fleet.sessions[:3], band_rows=8)
    assert opened == []  # nothing read before the consumer asks
    next(modules)
    assert len(opened) == 1 and max(rows_read) == 8 and len(rows_read) == 3 * 64 // 8
    next(modules)
    assert len(opened) == 2


def test_dataset_yields_modules_and_splits_across_workers(fleet: Fleet) -> None:
    data = ModuleMapDataset(fleet.paths, fleet.sessions[:4])
    ids = [m.session_id for m in data]
    assert ids == fleet.sessions[:4]
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=0)
    assert [m.session_id for m in loader] == ids


def test_shading_fit_recovers_an_off_centre_cos4_surface() -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    r2 = ((xx - 40.0) / 32) ** 2 + ((yy - 20.0) / 32) ** 2
    surface = 1 / (1 + r2 / 8) ** 2  # darkest corner 0.61, beyond the tilt fault's 0.65
    flat = surface.copy()
    flat[10:14, 10:14] *= 0.7  # a blemish the robust refit must ignore
    fit = fit_shading(flat, np.ones_like(flat, dtype=bool))
    outside = np.ones_like(flat, dtype=bool)
    outside[8:16, 8:16] = False
    assert np.abs(fit / surface - 1)[outside].max() < 0.002


def test_normalization_is_median_and_mad_per_channel(fleet: Fleet) -> None:
    maps, valid = stack([load_module_maps(maps_group(fleet.paths, s)) for s in fleet.sessions[:3]])
    norm = Normalization.fit(maps, valid)
    x = norm.apply(maps, valid)
    for c in range(3):
        values = x[:, c][valid]
        assert abs(float(values.median())) < 1e-3
        assert float((values - values.median()).abs().median()) * 1.4826 == pytest.approx(1.0, rel=1e-2)
    assert norm.centre[3] == 0.0 and norm.scale[3] == 1.0  # presence kept as 0/1
    assert not x[:, :, ~valid[0]].any() and float(x.abs().max()) <= norm.clip
