"""Candidate plans as reductions of the station plan: which frames each keeps, its station time,
the reductions tried, and the tolerances (parsing, deviations, bad input)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorfleet.capture_plan.plans import (
    FULL,
    PlanChoice,
    reductions,
    select_indices,
    station_time_s,
)
from sensorfleet.capture_plan.tolerance import (
    DEFAULT_TOLERANCES,
    Tolerance,
    parse_tolerance,
    with_overrides,
)
from sensorfleet.manifest import Manifest
from sensorfleet.synth.params import ModuleParams
from sensorfleet.synth.plan import build_plan
from sensorfleet.synth.session import simulate_session

DARKS = (0.01, 0.1, 0.3, 1.0)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    """The station plan (13 levels, 2 frames per point, 16 averaging frames, 2 chart frames)."""
    plan = build_plan(dark_exposures_s=DARKS, chart_frames=2)
    return simulate_session(ModuleParams.clean(16, 16), plan, 1, "plan-1")[1]


def _kept(manifest: Manifest, choice: PlanChoice) -> list[tuple[str, float, float]]:
    return [manifest.frames[i].operating_point for i in select_indices(manifest, choice)]


def test_the_full_plan_keeps_every_frame_and_its_station_time_is_exposures_plus_overhead(manifest: Manifest) -> None:
    every = select_indices(manifest, FULL)
    assert every == tuple(range(len(manifest.frames)))
    exposures = sum(f.exposure_s for f in manifest.frames)
    assert station_time_s(manifest, every, 0.05) == pytest.approx(exposures + 0.05 * len(manifest.frames))
    assert station_time_s(manifest, every, 0.0) == pytest.approx(2 * sum(DARKS) + (26 + 32 + 2) * 0.01)


def test_frames_per_point_caps_each_run(manifest: Manifest) -> None:
    kept = _kept(manifest, PlanChoice(frames_per_point=4))
    # the 16-frame averaging runs keep 4 each; every other point keeps its 2; charts stay
    assert len(kept) == len(manifest.frames) - 2 * 12
    assert kept.count(("dark", 0.01, 0.0)) == 2 + 4
    assert sum(1 for k in kept if k[0] == "edge_chart") == 2


def test_levels_keep_the_ends_and_the_spatial_series(manifest: Manifest) -> None:
    flats = sorted({k[2] for k in _kept(manifest, FULL) if k[0] == "flat"})
    spatial = max(set(flats), key=lambda p: sum(1 for f in manifest.frames if f.photons_per_pixel == p))
    for n in (9, 7, 5):
        kept = sorted({k[2] for k in _kept(manifest, PlanChoice(ptc_levels=n)) if k[0] == "flat"})
        assert len(kept) == n and kept[0] == flats[0] and kept[-1] == flats[-1] and spatial in kept


def test_dark_exposures_keep_the_flat_exposure(manifest: Manifest) -> None:
    kept = _kept(manifest, PlanChoice(dark_exposures_s=(1.0,)))
    assert sorted({k[1] for k in kept if k[0] == "dark"}) == [0.01, 1.0]  # the flats are at 0.01 s
    darks = reductions(manifest).darks
    assert all(0.01 in c.dark_exposures_s and len(c.dark_exposures_s) >= 2 for c in darks if c.dark_exposures_s)
    assert len(darks) == 6  # subsets of (0.1, 0.3, 1.0) of size 1 and 2


def test_reductions_and_their_combinations(manifest: Manifest) -> None:
    axes = reductions(manifest)
    assert [c.frames_per_point for c in axes.frames] == [8, 4, 2]
    assert [c.ptc_levels for c in axes.levels] == [9, 7, 5]
    combos = axes.combinations({axes.frames[0], axes.levels[0]})
    assert [c.plan_id for c in combos] == ["f8-l9"]
    assert PlanChoice(frames_per_point=8).combine(PlanChoice(ptc_levels=9)).describe() == \
        "at most 8 frames per operating point; 9 photon-transfer levels"
    assert FULL.plan_id == "full" and PlanChoice(dark_exposures_s=(1.0, 0.01)).plan_id == "d0.01+1"


@pytest.mark.parametrize("bad", [dict(frames_per_point=3), dict(frames_per_point=0), dict(ptc_levels=1),
                                 dict(dark_exposures_s=())])
def test_bad_choices_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be|expected"):
        PlanChoice(**bad)  # type: ignore[arg-type]


def test_tolerances_parse_and_measure() -> None:
    rel = parse_tolerance("gain_k_dn_per_e=2%")
    assert rel == Tolerance("gain_k_dn_per_e", 0.02, True) and rel.text() == "2%" and rel.unit == "relative"
    absolute = parse_tolerance(" dark_offset_dn = 0.5 ")
    assert not absolute.relative and absolute.text() == "0.5 DN"
    full = np.array([2.0, 0.0, 0.0, np.nan, np.nan, 4.0])
    reduced = np.array([2.1, 0.0, 1.0, np.nan, 3.0, np.nan])
    np.testing.assert_allclose(rel.deviation(full, reduced), [0.05, 0.0, math.inf, 0.0, math.inf, math.inf])
    np.testing.assert_allclose(absolute.deviation(full, reduced), [0.1, 0.0, 1.0, 0.0, math.inf, math.inf])
    merged = with_overrides(DEFAULT_TOLERANCES, [parse_tolerance("gain_k_dn_per_e=1%"), parse_tolerance("bad_rows=1")])
    assert merged[0].limit == 0.01 and merged[-1].metric == "bad_rows" and len(merged) == len(DEFAULT_TOLERANCES) + 1


@pytest.mark.parametrize(("text", "message"), [
    ("gain_k_dn_per_e", "expected METRIC=LIMIT"), ("=2%", "expected METRIC=LIMIT"),
    ("gain_k_dn_per_e=two", "not a number"), ("no_such_metric=1", "unknown metric 'no_such_metric'; valid: "),
    ("temperature_c=1", "unknown metric"), ("dsnu_e=-1%", "positive finite"), ("dsnu_e=nan", "positive finite"),
])
def test_bad_tolerances_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tolerance(text)
