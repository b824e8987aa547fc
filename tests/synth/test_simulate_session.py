"""One session in memory: the same frames and truth as the frame-by-frame simulator, a valid
manifest, and the fleet writer's manifest layout."""

from __future__ import annotations

import numpy as np
import pytest

from sensorfleet.synth.params import DefectCounts, ModuleParams
from sensorfleet.synth.physics import build_maps, module_rng, simulate_module
from sensorfleet.synth.plan import CapturePlan, PlannedFrame, build_plan
from sensorfleet.synth.session import SessionIdentity, simulate_session


def test_simulate_session_is_simulate_module_in_memory() -> None:
    params = ModuleParams.clean(48, 32, defects=DefectCounts(hot=2, dead=2, bad_columns=1))
    plan = build_plan(averaging_frames=2)
    frames, manifest, truth = simulate_session(params, plan, (7, 3), "S-7")
    assert frames.shape == (len(plan), 32, 48) and frames.dtype == np.uint16
    for i, (_frame, img) in enumerate(simulate_module(params, plan, (7, 3))):
        np.testing.assert_array_equal(frames[i], img)
    expected = build_maps(params, module_rng((7, 3))[0], plan.ptc_exposure_s)
    assert truth.defects == expected.defects and truth.summary == expected.summary
    assert manifest.session_id == "S-7" and manifest.module_id == "M-S-7" and manifest.pixel_format == "npy"
    assert [(f.kind, f.exposure_s, f.photons_per_pixel) for f in manifest.frames] == \
        [(f.kind, f.exposure_s, f.photons_per_pixel) for f in plan.frames]
    assert manifest.sensor.width == 48 and manifest.temperature_c == params.temperature_c


def test_identity_must_name_the_session() -> None:
    params = ModuleParams.clean(8, 8)
    with pytest.raises(ValueError, match="differs from session_id"):
        simulate_session(params, build_plan(averaging_frames=2), 1, "S-1", SessionIdentity("S-2", "M-2"))


def test_custom_plans_are_validated() -> None:
    dark = PlannedFrame("dark", 0.01, 0.0, "dark_series")
    flats = [(PlannedFrame("flat", 0.01, ph, "ptc"), 2) for ph in (100.0, 200.0)]
    plan = CapturePlan.from_blocks([(dark, 2), *flats], ptc_exposure_s=0.01)  # one dark exposure is allowed
    assert len(plan) == 6
    with pytest.raises(ValueError, match=">= 2 frames"):
        CapturePlan.from_blocks([(dark, 1), *flats], ptc_exposure_s=0.01)
    with pytest.raises(ValueError, match=r"missing exposure_s \[0.02\]"):
        CapturePlan.from_blocks([(dark, 2), *flats, (PlannedFrame("flat", 0.02, 5.0, "ptc"), 2)], ptc_exposure_s=0.01)
    with pytest.raises(ValueError, match=">= 2 flat levels"):
        CapturePlan.from_blocks([(dark, 2), flats[0]], ptc_exposure_s=0.01)
