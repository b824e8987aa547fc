"""Materialize the asset graph in-process, one capture day at a time (what the CLI runs).

The runs use the same asset definitions as ``pipelines.definitions.defs`` and are recorded in the
Dagster instance under ``<root>/dagster_home`` (the repo's dagster.yaml copied in), so they show
up in the UI (``make dev``) afterwards.

The jobs execute in this process (``execute_in_process`` of ``daily_pipeline`` and
``refresh_warehouse``, so the UI lists the runs under those names): the instance's run queue (and the one-run-per-day
limit of dagster.yaml) never sees these runs. Two CLI runs of the same day serialize on a lock
file instead (:func:`sensorfleet.locks.day_run_lock_file`); the second waits for the first.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    Definitions,
    EventLogRecord,
    ExecuteInProcessResult,
    JobDefinition,
    in_process_executor,
)
from dagster._core.errors import DagsterExecutionInterruptedError

from assets._common import (
    FAILING_KEYS,
    NOT_SCORED_REASON,
    PARTITION_TAG,
    SCORED,
    ProgressHook,
    metadata_values,
    progress_hook,
)
from assets.capture_plans import CAPTURE_PLANS_ASSET
from assets.captures import CAPTURES, CHECK_NO_REJECTIONS, REJECTION_ROWS, SessionCounts
from assets.characterization import MODULE_STATS, SESSIONS, SESSIONS_CHARACTERIZED
from assets.labels import FINAL_TEST_ASSET, final_test_files_state
from assets.landing_state import day_fingerprints
from assets.models import SPATIAL_MODEL_ASSET
from assets.stations import STATION_SPC
from assets.stations import STEP as STATIONS_STEP
from assets.table_metadata import ROW_COUNT
from assets.warehouse import WAREHOUSE
from pipelines.definitions import fleet_assets, pipeline_assets
from pipelines.instance_config import install_instance_config
from pipelines.jobs import (
    CAPTURE_PLAN_STUDY,
    DAILY_PIPELINE,
    JOBS,
    REFRESH_WAREHOUSE,
    RETRAIN,
    SCORES,
)
from pipelines.partitions import CAPTURE_DAYS, capture_day_problem
from pipelines.resources import run_resources
from pipelines.up_to_date import (
    fleet_up_to_date,
    latest_materialization,
    metadata_value,
    up_to_date_days,
)
from sensorfleet.config import Paths, environment_kept
from sensorfleet.ingest.scan import scan_landing
from sensorfleet.locks import day_run_lock_file, file_lock
from sensorfleet.plotting import start_helper, stop_helper


@dataclass
class CheckFailure:
    """A failed asset check of one day: which check, its severity and the modules it names."""

    asset: str
    check: str
    severity: str
    modules: list[str]


@dataclass
class DayOutcome:
    """What one day's run did. ``error`` is set only when the run itself failed."""

    day: str
    run_id: str | None = None
    error: str | None = None
    ingested: int = 0
    rewritten: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)
    characterized: int | None = None
    characterized_new: int = 0
    failed_checks: list[CheckFailure] = field(default_factory=list)
    not_scored: dict[str, str] = field(default_factory=dict)
    """Score tables no champion scored this day (before the first training): table -> why."""
    up_to_date: bool = False
    """Nothing changed since the day's last run (landing fingerprint, code versions): not run;
    the counts are those its last run recorded (pipelines/up_to_date.py)."""
    no_data: bool = False
    """The day has no landing session and no ingested capture: it was not run (no empty
    partitions are written)."""
    interrupted: bool = False
    """The run was interrupted (Ctrl-C, SIGINT): the days after it were not run."""

    @property
    def runs(self) -> bool:
        """Whether the day is to be run: it has data, is not up to date, and is a usable day
        (before its run; set by :func:`_planned_day`)."""
        return self.run_id is None and not (self.no_data or self.up_to_date or self.error)

    def count_sessions(self, counts: SessionCounts) -> None:
        """Take the ingest's sessions by outcome (from its materialization or its failure)."""
        self.ingested, self.rewritten = counts.ingested, counts.rewritten
        self.unchanged, self.rejected = counts.unchanged, counts.rejected


@dataclass
class PipelineSummary:
    """All days of one ``pipeline run``."""

    days: list[DayOutcome]
    dagster_home: Path
    fleet: FleetOutcome | None = None
    fleet_up_to_date: bool = False
    """The labels and the warehouse needed no run (no day ran, label files unchanged)."""
    not_run: list[str] = field(default_factory=list)
    """Days left after an interrupted one (``interrupted``): not run."""

    @property
    def interrupted(self) -> bool:
        """A day's run was interrupted (Ctrl-C): the rest of the command was not run."""
        return any(d.interrupted for d in self.days)

    @property
    def ok(self) -> bool:
        """True unless a run failed (rejections and failed checks are not failures)."""
        return all(d.error is None for d in self.days) and (self.fleet is None or self.fleet.error is None)

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name) or 0) for d in self.days)


@dataclass
class FleetOutcome:
    """What the run of the fleet-wide assets (final-test labels, warehouse) did."""

    run_id: str | None = None
    error: str | None = None
    label_rows: int = 0
    label_rows_rejected: int = 0
    warehouse: str | None = None


def prepare_instance(paths: Paths) -> DagsterInstance:
    """The persistent Dagster instance under ``<root>/dagster_home`` (dagster.yaml copied in)."""
    home = paths.dagster_home
    install_instance_config(home)
    # dagster.yaml resolves its storage folder from DAGSTER_HOME while the instance is created.
    with environment_kept("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(home)
        return DagsterInstance.from_config(str(home))


def _recorded_outcome(outcome: DayOutcome, instance: DagsterInstance, captured: EventLogRecord) -> None:
    """Fill ``outcome`` of an up-to-date day from its last run's records: every session it
    accepted is unchanged, its rejections stand."""
    outcome.up_to_date = True
    counts = SessionCounts.from_metadata({k: metadata_value(captured, k) for k in SessionCounts.metadata_keys()})
    outcome.unchanged = counts.total - counts.rejected
    outcome.rejected = counts.rejected
    stats = latest_materialization(instance, AssetKey(MODULE_STATS), outcome.day)
    if stats is not None:
        outcome.characterized = int(str(metadata_value(stats, SESSIONS) or 0))


def _has_captures(paths: Paths, day: str) -> bool:
    """True when ``day`` has ingested capture groups (a re-run of its characterization needs no
    landing data)."""
    folder = paths.captures / day
    return folder.is_dir() and any(p.name.endswith(".zarr") for p in folder.iterdir())


def resolve_selection(names: Sequence[str] | None, assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """The asset steps of ``assets`` to run for ``names`` (asset names or group names; none = all).

    A step that produces several assets (e.g. ``captures`` + ``rejections``) runs whole.
    """
    if not names:
        return list(assets)
    chosen: list[AssetsDefinition] = []
    known: set[str] = set()
    for node in assets:
        node_names = {key.to_user_string() for key in node.keys}
        groups = set(node.group_names_by_key.values())
        known |= node_names | groups
        if node_names & set(names) or groups & set(names):
            chosen.append(node)
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"--select {', '.join(unknown)}: unknown asset or group; valid choices: {', '.join(sorted(known))}")
    return chosen


def run_pipeline(
    paths: Paths,
    *,
    select: Sequence[str] | None = None,
    days: Sequence[str] | None = None,
    progress: ProgressHook | None = None,
    on_day_start: Callable[[str], None] | None = None,
    on_day_done: Callable[[DayOutcome], None] | None = None,
    on_day_wait: Callable[[str, Path], None] | None = None,
    force: bool = False,
    instance: DagsterInstance | None = None,
    figure_helper: bool = False,
) -> PipelineSummary:
    """Materialize the selected assets for each day (default: every day with landing data).

    ``figure_helper``: when more than one day runs, a helper process draws one of each step's
    two figures while this process draws the other (:func:`sensorfleet.plotting.start_helper`;
    its start costs more than it saves on one day).

    The runs are recorded in ``instance`` (default: the embedded one under
    ``<root>/dagster_home``, :func:`prepare_instance`; a production instance is Postgres,
    deploy/dagster.yaml).

    Each day is one in-process run tagged ``dagster/partition=<day>``, under the day's run lock
    (``on_day_wait(day, lock_file)`` is called when another run holds it and this one waits);
    a failed day is recorded in its :class:`DayOutcome` and the other days go on. Days (and
    the fleet-wide assets) that nothing changed since their last run are not run unless
    ``force`` (:mod:`pipelines.up_to_date`).
    """
    assets = pipeline_assets()
    fleet = fleet_assets()
    steps = resolve_selection(select, [*assets, *fleet])
    fleet_steps = [node for node in steps if node in fleet]
    steps = [node for node in steps if node not in fleet]
    instance = instance if instance is not None else prepare_instance(paths)
    jobs = Definitions(
        assets=[*assets, *fleet], jobs=JOBS, resources=run_resources(paths), executor=in_process_executor
    )
    fingerprints = day_fingerprints(scan_landing(paths.landing, paths.state))
    with_landing = sorted(fingerprints)
    todo = sorted(set(days)) if days else with_landing
    selection = [key for node in steps for key in node.keys]
    code_versions = {key: node.code_versions_by_key.get(key) for node in [*assets, *fleet] for key in node.keys}
    fresh = {} if force else up_to_date_days(
        instance, {d: fingerprints[d] for d in todo if d in fingerprints}, selection, code_versions
    )
    planned = [_planned_day(paths, day, with_landing, fresh, instance) for day in todo]
    runnable = [o.day for o in planned if o.runs]
    # the last day to run draws the station charts (each day's is the trailing window up to it)
    chart_day = runnable[-1] if runnable else None
    if figure_helper and len(runnable) > 1:
        start_helper()
    try:
        outcomes = _run_days(paths, planned, instance, jobs.resolve_job_def(DAILY_PIPELINE), selection, progress,
                             chart_day, on_day_start, on_day_done, on_day_wait)
    finally:
        stop_helper()
    summary = PipelineSummary(days=outcomes, dagster_home=paths.dagster_home,
                              not_run=todo[len(outcomes):])
    if summary.interrupted:
        return summary
    fleet_selection = [k for node in fleet_steps for k in node.keys]
    ran = any(o.run_id is not None for o in outcomes)
    if fleet_steps and (any(not o.no_data for o in outcomes) or not days):
        if not force and not ran and fleet_up_to_date(
            instance, final_test_files_state(paths.landing), fleet_selection,
            [k for node in assets for k in node.keys], code_versions,
        ):
            summary.fleet_up_to_date = True
        else:
            summary.fleet = run_fleet(instance, jobs.resolve_job_def(REFRESH_WAREHOUSE), fleet_selection)
    return summary


def _planned_day(paths: Paths, day: str, with_landing: list[str], fresh: dict[str, EventLogRecord],
                 instance: DagsterInstance) -> DayOutcome:
    """``day``'s outcome as far as it is known before any run: no data, up to date (its last run's
    counts) or an unusable day (``error``); otherwise :attr:`DayOutcome.runs`."""
    outcome = DayOutcome(day=day)
    if day not in with_landing and not _has_captures(paths, day):
        outcome.no_data = True
    elif day in fresh:
        _recorded_outcome(outcome, instance, fresh[day])
    else:
        outcome.error = capture_day_problem(day)
    return outcome


def _run_days(paths: Paths, planned: list[DayOutcome], instance: DagsterInstance, job: JobDefinition,
              selection: list[AssetKey], progress: ProgressHook | None, chart_day: str | None,
              on_day_start: Callable[[str], None] | None, on_day_done: Callable[[DayOutcome], None] | None,
              on_day_wait: Callable[[str, Path], None] | None) -> list[DayOutcome]:
    """:func:`run_pipeline`'s days, one after the other, each run unless ``planned`` says why not
    (see there); stops after an interrupted day."""
    outcomes: list[DayOutcome] = []
    for outcome in planned:
        day = outcome.day
        if on_day_start is not None:
            on_day_start(day)
        if outcome.runs:
            if not instance.has_dynamic_partition(CAPTURE_DAYS, day):  # the UI lists days with data
                instance.add_dynamic_partitions(CAPTURE_DAYS, [day])
            with day_run_lock(paths, day, on_day_wait):
                _run_day(outcome, instance, job, selection, progress, station_chart=chart_day in (None, day))
        outcomes.append(outcome)
        if on_day_done is not None:
            on_day_done(outcome)
        if outcome.interrupted:  # Ctrl-C: the person wants the command to stop, not the day to fail
            break
    return outcomes


@dataclass
class ModelsOutcome:
    """What a run of the ``retrain`` job did: each model's registered version and alias (or why
    it could not be trained), and whether the days were re-scored with the champions."""

    run_id: str | None = None
    error: str | None = None
    models: dict[str, str] = field(default_factory=dict)  # asset -> "version N (alias): reason"
    rescored_days: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def _fleet_level_definitions(paths: Paths) -> Definitions:
    """Every asset and job of the location, with a CLI run's resources (the fleet-level jobs:
    retrain, capture-plan study)."""
    from assets import build_model_assets, build_plan_assets

    return Definitions(assets=[*pipeline_assets(), *fleet_assets(), *build_model_assets(), *build_plan_assets()],
                       jobs=JOBS, resources=run_resources(paths), executor=in_process_executor)


def train_models(paths: Paths, rescore: bool = True, spatial_epochs: int | None = None) -> ModelsOutcome:
    """Run the ``retrain`` job (the models and the drift report) in process, recorded in the
    instance, then (``rescore``) score every day with the new champions. ``spatial_epochs``:
    the spatial model's training epochs instead of the asset's default (the demo's short run)."""
    outcome = ModelsOutcome()
    instance = prepare_instance(paths)
    defs = _fleet_level_definitions(paths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = defs.resolve_job_def(RETRAIN).execute_in_process(  # errors come back in the outcome
            instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                        **({"ops": {SPATIAL_MODEL_ASSET: {"config": {"epochs": spatial_epochs}}}} if spatial_epochs else {})})
    outcome.run_id = result.run_id
    outcome.error = failure_message(result)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        meta = metadata_values(materialization.metadata)
        if "model_version" in meta:
            outcome.models[materialization.asset_key.to_user_string()] = (
                f"version {meta['model_version']} ({meta.get('alias')}): {meta.get('promotion')}")
    if rescore and outcome.ok:
        scored = run_pipeline(paths, select=list(SCORES), force=True)
        outcome.rescored_days = sum(d.run_id is not None for d in scored.days)
        errors = [f"{d.day}: {d.error}" for d in scored.days if d.error]
        if errors:
            outcome.error = "scoring failed: " + "; ".join(errors)
        # the score tables may have had no file when the warehouse was last built (an empty
        # view then): rebuild it so their views read the new files
        refreshed = run_fleet(instance, defs.resolve_job_def(REFRESH_WAREHOUSE), [AssetKey(WAREHOUSE)])
        if refreshed.error and outcome.error is None:
            outcome.error = f"warehouse refresh failed: {refreshed.error}"
    return outcome


@dataclass
class StudyOutcome:
    """What a run of the ``capture_plan_study`` job did: the recommended plan in words, or why not."""

    run_id: str | None = None
    error: str | None = None
    recommended: str | None = None


def study_capture_plans(paths: Paths, modules: int) -> StudyOutcome:
    """Run the ``capture_plan_study`` job in process over at most ``modules`` modules, recorded in
    the instance (the demo shows the study with a small sample; the weekly run takes the asset's
    default)."""
    instance = prepare_instance(paths)
    job = _fleet_level_definitions(paths).resolve_job_def(CAPTURE_PLAN_STUDY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config={
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
            "ops": {CAPTURE_PLANS_ASSET: {"config": {"modules": modules}}}})
    outcome = StudyOutcome(result.run_id, failure_message(result))
    for event in result.get_asset_materialization_events():
        meta = metadata_values(event.step_materialization_data.materialization.metadata)
        if "recommended_plan" in meta:
            outcome.recommended = (f"{meta['recommended_plan']} ({meta['recommended_description']}): "
                                   f"{meta['recommended_station_time_s']:.2f} s per module, "
                                   f"{meta['station_time_saved_pct']:.0f}% less than the full plan "
                                   f"({meta['modules_studied']} modules; {meta['models']})")
    return outcome


def run_fleet(instance: DagsterInstance, job: JobDefinition, selection: list[AssetKey]) -> FleetOutcome:
    """One in-process run of ``selection`` among the fleet-wide assets (labels, then the
    warehouse) by ``job`` (``refresh_warehouse``), recorded in the instance under its name."""
    outcome = FleetOutcome()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = job.execute_in_process(
                instance=instance, asset_selection=selection, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
        except Exception as exc:  # a definition or instance problem: report it
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
    outcome.run_id = result.run_id
    outcome.error = failure_message(result)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        meta = metadata_values(materialization.metadata)
        name = materialization.asset_key.to_user_string()
        if name == FINAL_TEST_ASSET:
            outcome.label_rows = int(meta.get(ROW_COUNT, 0))
            outcome.label_rows_rejected = int(meta.get("rows_rejected", 0))
        elif name == WAREHOUSE:
            outcome.warehouse = str(meta.get("path"))
    return outcome


@contextmanager
def day_run_lock(paths: Paths, day: str, on_wait: Callable[[str, Path], None] | None = None) -> Iterator[None]:
    """Hold the run lock of ``day`` for the block, waiting (after ``on_wait``) while another
    process holds it."""
    path = day_run_lock_file(paths, day)
    with file_lock(path, blocking=False) as held:
        if held:
            yield
            return
    if on_wait is not None:
        on_wait(day, path)
    with file_lock(path):
        yield


def _run_day(
    outcome: DayOutcome,
    instance: DagsterInstance,
    job: JobDefinition,
    selection: list[AssetKey],
    progress: ProgressHook | None,
    station_chart: bool = True,
) -> None:
    """One in-process run of ``selection`` for ``outcome.day`` by ``job`` (``daily_pipeline``):
    the run is listed under the job's name, not as an ephemeral job. ``station_chart`` False:
    the station charts figure is not drawn (a run over several days draws it for its last day
    only; each day's is the trailing window up to it, contained in the last day's)."""
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if not station_chart and AssetKey(STATION_SPC) in selection:
        run_config["ops"] = {STATIONS_STEP: {"config": {"chart": False}}}
    with progress_hook(progress), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = job.execute_in_process(
                instance=instance,
                partition_key=outcome.day,
                asset_selection=selection,
                tags={PARTITION_TAG: outcome.day},
                raise_on_error=False,
                run_config=run_config,
            )
        except Exception as exc:  # a definition or instance problem: report it, go on with other days
            outcome.error = f"{type(exc).__name__}: {exc}"
            return
    outcome.run_id = result.run_id
    outcome.error = failure_message(result)
    outcome.interrupted = any(event.step_failure_data.error is not None
                              and event.step_failure_data.error.cls_name == DagsterExecutionInterruptedError.__name__
                              for event in result.get_step_failure_events())
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        name = materialization.asset_key.to_user_string()
        meta = metadata_values(materialization.metadata)
        if name == CAPTURES:
            counts = SessionCounts.from_metadata(meta)
            outcome.count_sessions(counts)
        elif name == MODULE_STATS:
            outcome.characterized = int(meta.get(SESSIONS, 0))
            outcome.characterized_new = int(meta.get(SESSIONS_CHARACTERIZED, 0))
        elif meta.get(SCORED) is False:
            outcome.not_scored[name] = str(meta.get(NOT_SCORED_REASON) or "")
    _counts_of_a_failed_ingest(outcome, result)
    for evaluation in result.get_asset_check_evaluations():
        meta = metadata_values(evaluation.metadata)
        if evaluation.check_name == CHECK_NO_REJECTIONS:
            outcome.rejections = list(meta.get(REJECTION_ROWS) or [])
        if not evaluation.passed:
            outcome.failed_checks.append(
                CheckFailure(
                    asset=evaluation.asset_key.to_user_string(),
                    check=evaluation.check_name,
                    severity=evaluation.severity.value,
                    modules=[str(m) for m in next((meta[k] for k in FAILING_KEYS if meta.get(k)), [])],
                )
            )


def _counts_of_a_failed_ingest(outcome: DayOutcome, result: ExecuteInProcessResult) -> None:
    """A failed ingest publishes what it could and says so in its failure's metadata
    (assets/captures.py): count those sessions instead of reporting 0."""
    keys = set(SessionCounts.metadata_keys())
    for event in result.get_step_failure_events():
        data = event.step_failure_data.user_failure_data
        if data is None or not keys & set(data.metadata):
            continue
        outcome.count_sessions(SessionCounts.from_metadata(metadata_values(data.metadata)))


def failure_message(result: ExecuteInProcessResult) -> str | None:
    """None for a successful run, else its steps' failure messages on one line."""
    if result.success:
        return None
    return "; ".join(
        _strip_class_path(event.step_failure_data.error.message.strip())
        for event in result.get_step_failure_events() if event.step_failure_data.error is not None
    ) or "run failed"


def _strip_class_path(message: str) -> str:
    """``dagster._core...Failure: text`` -> ``text`` (the exception's module path helps nobody),
    on one line."""
    head, sep, rest = message.partition(": ")
    text = rest if sep and "." in head and " " not in head else message
    return " ".join(text.split())
