"""The no-change path: a second ``pipeline run`` over unchanged landing data starts no run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipelines.runner import prepare_instance, run_pipeline
from sensorfleet.config import resolve_paths


def test_an_unchanged_day_is_not_run_again_and_a_touched_one_is(tmp_path: Path, synth_landing: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(synth_landing, landing)
    paths = resolve_paths(tmp_path / "data", landing)
    first = run_pipeline(paths)
    assert first.ok and first.fleet is not None and first.fleet.error is None
    assert len(first.days) == 1
    runs = len(prepare_instance(paths).get_runs())

    second = run_pipeline(paths)
    (again,) = second.days
    assert again.up_to_date and again.run_id is None
    assert (again.unchanged, again.rejected, again.characterized) == (3, 0, 3)
    assert second.fleet is None and second.fleet_up_to_date
    assert len(prepare_instance(paths).get_runs()) == runs  # no run started

    # a touched frame changes the day's landing fingerprint: the day runs again, then the fleet
    touched = next(p for p in sorted(landing.iterdir()) if p.is_dir() and p.name != "final_test")
    frame = next(f for f in sorted(touched.iterdir()) if f.name != "manifest.json")
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))
    third = run_pipeline(paths)
    assert not third.days[0].up_to_date and third.days[0].run_id is not None
    assert third.fleet is not None
    assert run_pipeline(paths).days[0].up_to_date

    forced = run_pipeline(paths, force=True, select=["captures"])
    assert not forced.days[0].up_to_date and forced.days[0].run_id is not None
