"""``sensorfleet pipeline run``: materialize the Dagster asset graph in-process, with progress.

Dagster is imported inside the command only (``pipelines.runner``), so ``sensorfleet --help``
and the core's commands start without loading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import TaskID

from sensorfleet.config import Paths, resolve_roots
from sensorfleet.progress import progress_bar
from sensorfleet.staging import Stage, staged

if TYPE_CHECKING:
    from pipelines.runner import DayOutcome, ModelsOutcome, PipelineSummary

pipeline_app = typer.Typer(
    help="Run the Dagster asset graph (the same definitions the UI loads).",
    no_args_is_help=True,
    add_completion=False,
)

_REASON_LIMIT = 20


def run_with_display(
    paths: Paths,
    *,
    select: Sequence[str] | None = None,
    days: Sequence[str] | None = None,
    console: Console | None = None,
    force: bool = False,
) -> PipelineSummary:
    """Run the pipeline for ``days`` (default: every day with landing data) showing progress.

    Prints one line per day and the summary; returns the summary (see ``summary.ok``).
    """
    from pipelines.runner import run_pipeline  # Dagster loads here, not at import
    from sensorfleet.gc_tuning import tune_for_batch

    tune_for_batch()  # this process now holds the asset graph for good: a batch's collector
    refrozen = False  # once more after the first run, which imports the rest (matplotlib, DuckDB...)
    console = console or Console(soft_wrap=True)
    console.print(f"[bold]pipeline run[/]: landing {paths.landing} -> root {paths.root}")
    with progress_bar("{task.description}", console) as bar:
        tasks: dict[tuple[str, str], TaskID] = {}

        def on_progress(stage: str, day: str, done: int, total: int) -> None:
            key = (stage, day)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{day} {stage}", total=total)
            bar.update(tasks[key], completed=done, total=total)

        def on_day_start(day: str) -> None:
            tasks[("day", day)] = bar.add_task(f"{day} starting", total=None)

        def on_day_wait(day: str, lock_file: Path) -> None:
            console.print(f"  {day}: another run of this day holds {lock_file}; waiting for it", markup=False)

        def on_day_done(outcome: DayOutcome) -> None:
            nonlocal refrozen
            if outcome.run_id is not None and not refrozen:
                tune_for_batch()
                refrozen = True
            for key in [k for k in tasks if k[1] == outcome.day]:
                bar.remove_task(tasks.pop(key))
            console.print(_day_line(outcome))

        summary = run_pipeline(
            paths,
            select=select,
            days=days,
            progress=on_progress,
            on_day_start=on_day_start,
            on_day_done=on_day_done,
            on_day_wait=on_day_wait,
            force=force,
            figure_helper=True,  # a step's two figures at once, one of them drawn by a helper process
        )
    print_summary(summary, console)
    return summary


def _day_line(outcome: DayOutcome) -> str:
    if outcome.no_data:
        return f"- {outcome.day}: no sessions in the landing root or captures: nothing run, nothing written"
    if outcome.up_to_date:
        return (f"= {outcome.day}: up to date ({outcome.unchanged} unchanged, {outcome.rejected} rejected; "
                "landing and code unchanged since its last run): not run")
    if outcome.error is not None and outcome.run_id is None:
        return f"[red]x[/] {outcome.day}: FAILED: {outcome.error}"
    parts = [
        f"{outcome.ingested + outcome.rewritten} ingested",
        f"{outcome.unchanged} unchanged",
        f"{outcome.rejected} rejected",
    ]
    if outcome.characterized is not None:
        parts.append(f"{outcome.characterized} characterized ({outcome.characterized_new} new)")
    if outcome.failed_checks:
        parts.append(f"{len(outcome.failed_checks)} check(s) failed")
    if outcome.error is not None:  # the run started: say what it did before it stopped
        return f"[red]x[/] {outcome.day}: " + ", ".join(parts) + f"; FAILED: {outcome.error}"
    return f"[green]v[/] {outcome.day}: " + ", ".join(parts)


def train_and_score_with_display(paths: Paths, console: Console, spatial_epochs: int | None = None) -> ModelsOutcome:
    """Train the models (the ``retrain`` job; ``spatial_epochs`` shortens the spatial model's
    training), re-score every day with the champions, and say what was registered."""
    from pipelines.runner import train_models  # Dagster and the models load here

    console.print("[bold]models[/]: training the anomaly, yield and spatial models (retrain job), then scoring every day")
    outcome = train_models(paths, spatial_epochs=spatial_epochs)
    for asset, text in outcome.models.items():
        console.print(f"  {asset}: {text}", markup=False)
    if outcome.error:
        console.print(f"  [red]models failed[/]: {outcome.error}")
    else:
        console.print(f"  days re-scored with the champions: {outcome.rescored_days} "
                      "(tables anomaly_scores, yield_predictions, spatial_scores; `sensorfleet models list`)")
    return outcome


def study_capture_plans_with_display(paths: Paths, console: Console, modules: int) -> bool:
    """Run the capture-plan study on a sample of ``modules`` modules (the ``capture_plan_study``
    job) and say what it recommends; False when it failed."""
    from pipelines.runner import study_capture_plans  # Dagster and the study load here

    console.print(f"[bold]capture plans[/]: the shortest plan that decides the same, on {modules} modules' stored "
                  "frames (capture_plan_study job)")
    outcome = study_capture_plans(paths, modules)
    if outcome.error:
        console.print(f"  [red]capture-plan study failed[/]: {outcome.error}")
        return False
    console.print(f"  recommended: {outcome.recommended}", markup=False)
    console.print("  (table capture_plans, docs/capture-plan.md; `sensorfleet plan study` for more modules)")
    return True


def print_summary(summary: PipelineSummary, console: Console) -> None:
    """The closing summary: sessions ingested / unchanged / rejected (with reasons), modules
    outside the checks, failed days, and where the runs are recorded."""
    days = summary.days
    console.print()
    console.print(f"[bold]Summary[/] ({len(days)} capture day{'s' if len(days) != 1 else ''})")
    if not days:
        console.print("  no sessions in the landing root: nothing to do")
    ingested = summary.total("ingested")
    rewritten = summary.total("rewritten")
    console.print(f"  sessions ingested: {ingested + rewritten} ({rewritten} rewritten after a change)")
    console.print(f"  sessions skipped as unchanged: {summary.total('unchanged')}")
    console.print(f"  sessions rejected: {summary.total('rejected')}")
    reasons = [r for d in days for r in d.rejections]
    for rejection in reasons[:_REASON_LIMIT]:
        where = f" ({rejection.get('file')})" if rejection.get("file") else ""
        console.print(f"    - {rejection.get('session_id')}{where}: {rejection.get('reason')}", markup=False)
    if len(reasons) > _REASON_LIMIT:
        console.print(f"    ... and {len(reasons) - _REASON_LIMIT} more (table `rejections`)")
    if any(d.characterized is not None for d in days):
        console.print(
            f"  sessions characterized: {summary.total('characterized')} "
            f"({summary.total('characterized_new')} computed now, the rest unchanged)"
        )
    _print_not_scored(days, console)
    failures = [(d.day, f) for d in days for f in d.failed_checks]
    if failures:
        console.print("  checks failed (the modules, sessions, stations or features outside them):")
        for day, failure in failures:
            named = ", ".join(failure.modules[:_REASON_LIMIT]) or "see the UI"
            more = f" ... and {len(failure.modules) - _REASON_LIMIT} more" if len(failure.modules) > _REASON_LIMIT else ""
            console.print(
                f"    - {day} {failure.asset}.{failure.check} [{failure.severity}]: {named}{more}", markup=False
            )
    elif any(d.up_to_date for d in days):
        console.print("  checks failed: none in the days run (up-to-date days keep their last results: see the UI)")
    else:
        console.print("  checks failed: none")
    if summary.interrupted:
        rest = f": {len(summary.not_run)} day(s) not run ({summary.not_run[0]} .. {summary.not_run[-1]})" \
            if summary.not_run else ""
        console.print(f"  [red]interrupted[/] during {next(d.day for d in days if d.interrupted)}{rest}; "
                      "the labels and warehouse were not refreshed. Run the same command again to go on "
                      "(finished days are up to date and are not run again)")
    failed = [d for d in days if d.error is not None]
    if failed:
        console.print(f"  [red]failed days: {len(failed)}[/]")
        for d in failed:
            console.print(f"    - {d.day}: {d.error}", markup=False)
    fleet = summary.fleet
    if summary.fleet_up_to_date:
        console.print("  final-test labels and warehouse: up to date (no day ran, label files unchanged): not run")
    if fleet is not None:
        if fleet.error is not None:
            console.print(f"  [red]labels/warehouse run failed[/]: {fleet.error}", markup=True)
        else:
            console.print(f"  final-test rows: {fleet.label_rows} ({fleet.label_rows_rejected} rejected, table `rejections`)")
            console.print(f"  warehouse: {fleet.warehouse} (query it: sensorfleet sql \"SELECT * FROM tables\")")
    console.print(f"  runs recorded in {summary.dagster_home} (open the UI with `make dev`)")


def _print_not_scored(days: Sequence[DayOutcome], console: Console) -> None:
    """One line for the score tables no champion scored (per table: on how many days, and why on
    the first), instead of a warning per day and table."""
    unscored: dict[str, list[str]] = {}
    for day in days:
        for table, reason in day.not_scored.items():
            unscored.setdefault(table, []).append(reason)
    for table, reasons in sorted(unscored.items()):
        console.print(f"  {table}: not scored on {len(reasons)} day(s): {reasons[0]}", markup=False)


def parse_day(text: str) -> str:
    """``text`` as a capture day ``YYYY-MM-DD``, or a ``BadParameter`` saying why it is not a date."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD ({exc})", param_hint="--day") from None


@pipeline_app.command("run")
def run(
    root: Path | None = typer.Option(None, "--root", help="data root (default SENSORFLEET_ROOT or ./data)"),
    landing: Path | None = typer.Option(None, "--landing", help="landing root (default <root>/landing)"),
    select: list[str] | None = typer.Option(
        None, "--select", help="asset or group names to run (repeatable; default all): captures, characterization, module_stats, ..."
    ),
    day: list[str] | None = typer.Option(None, "--day", help="capture day YYYY-MM-DD (repeatable; default every day with landing data)"),
    force: bool = typer.Option(
        False, "--force", help="run the days even when nothing changed since their last run (landing, code versions)"
    ),
) -> None:
    """Materialize the asset graph in-process for every capture day that has landing data.

    Exits non-zero only when a run fails; rejected sessions and failed checks are reported.
    """
    # Fail before anything is created (a Dagster home, state files) or Dagster is imported; an
    # s3:// root or landing is staged locally, the outputs published when the runs end.
    roots = resolve_roots(root, landing)
    days = [parse_day(d) for d in day or []]
    if roots.landing_url is None and not roots.paths.landing.is_dir():
        _no_landing(roots.paths.landing)
    with staged(roots, Stage(pull_landing=True)) as paths:
        if not paths.landing.is_dir():
            _no_landing(roots.landing_url or paths.landing)
        try:
            summary = run_with_display(paths, select=select, days=days or None, force=force)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    if summary.interrupted:
        raise typer.Exit(130)  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    if not summary.ok:
        raise typer.Exit(1)


def _no_landing(landing: object) -> None:
    raise typer.BadParameter(
        f"landing root {landing} does not exist (or holds no session with a manifest.json); give --landing, "
        "set SENSORFLEET_LANDING, or put the session folders under <root>/landing",
        param_hint="--landing",
    )
