"""Capture-plan study: how much of a station's capture plan is needed for the same metrics.

Dagster-free and model-free. :mod:`~sensorfleet.capture_plan.plans`: candidate plans as
reductions of the stored plan, the frames each keeps and its station time;
:mod:`~sensorfleet.capture_plan.tolerance`: per-metric tolerances and deviations;
:mod:`~sensorfleet.capture_plan.study`: the modules studied, their re-characterization on every
candidate, the summary table ``capture_plans`` and the recommended plan. The decisions part (the
champion models' predictions and alarms) lives in ``models/plan_study.py``. Method: docs/capture-plan.md.
"""
