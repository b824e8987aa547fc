"""The collector settings of a batch process (sensorfleet/gc_tuning.py)."""

from __future__ import annotations

import gc

from sensorfleet.gc_tuning import THRESHOLDS, tune_for_batch


def test_tune_for_batch_freezes_what_is_alive_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    keep = [object() for _ in range(100)] + [[] for _ in range(100)]  # tracked: lists
    try:
        assert tune_for_batch() == before
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() >= frozen_before + 100  # the lists above among them
        cycle: list[object] = []
        cycle.append(cycle)  # garbage made afterwards is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert keep
