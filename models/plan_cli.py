"""``plan`` commands (a typer sub-app; the console script registers ``plan_app``): the
capture-plan study (``plan study``). Heavy modules load inside the command, so ``--help`` stays
fast (tests/test_lazy_cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sensorfleet.config import resolve_paths

plan_app = typer.Typer(help="Capture plans: the shortest plan whose metrics and model decisions match the full one.",
                       no_args_is_help=True, add_completion=False)



@plan_app.callback()
def _group() -> None:
    """A group even with one command (``plan study``), however it is invoked."""


DEFAULT_MODULES = 50
"""Modules studied by default, spread evenly over capture time: enough for a 95 % quantile and a
2 % decision share to mean something, a few minutes on two cores at 320 x 240."""


def _settings(tolerance: list[str], coverage: float, max_changed: float, frame_overhead_s: float, days: int | None,
              modules: int, workers: int) -> Any:
    from sensorfleet.capture_plan.study import StudySettings
    from sensorfleet.capture_plan.tolerance import (
        DEFAULT_TOLERANCES,
        parse_tolerance,
        with_overrides,
    )

    tolerances = with_overrides(DEFAULT_TOLERANCES, [parse_tolerance(t) for t in tolerance])
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: one per core), found {workers}")
    return StudySettings(tolerances=tolerances, coverage=coverage, max_changed_share=max_changed,
                         frame_overhead_s=frame_overhead_s, days=days, modules=modules, workers=workers)


def _report(plans: Any) -> list[str]:
    """The plans table and the recommendation, as lines of text."""
    lines = [f"{'plan':<22} {'frames':>6} {'time_s':>7} {'saved':>6}  {'worst metric':<24} {'dev/tol':>8} "
             f"{'changed':>8}"]
    for r in plans.iter_rows(named=True):
        ratio = r["worst_tolerance_ratio"]
        share = r["changed_decisions_share"]
        lines.append(
            f"{r['plan_id']:<22} {r['n_frames'] or 0:>6} {r['station_time_s'] or float('nan'):>7.2f} "
            f"{r['station_time_saved_pct'] or 0:>5.0f}%  {r['worst_metric'] or '-':<24} "
            f"{ratio if ratio is not None else float('nan'):>8.3g} {'-' if share is None else f'{share:.1%}':>8}"
            f"{'  <- recommended' if r['recommended'] else ''}")
    return lines


@plan_app.command("study")
def study_command(
    root: Annotated[Path | None, typer.Option(help="data root (default: SENSORFLEET_ROOT or ./data)")] = None,
    tolerance: Annotated[list[str] | None, typer.Option(
        help="METRIC=LIMIT, relative with % (gain_k_dn_per_e=2%) or absolute in the metric's unit "
             "(dark_offset_dn=0.5); repeatable, overrides that metric's default")] = None,
    coverage: Annotated[float, typer.Option(help="share of modules whose metrics must be within tolerance")] = 0.95,
    max_changed: Annotated[float, typer.Option(help="largest share of modules whose champion decisions may change")] = 0.02,
    frame_overhead_s: Annotated[float, typer.Option(help="per-frame station overhead (readout, settling), s")] = 0.05,
    days: Annotated[int | None, typer.Option(help="study the latest N capture days (default: all)")] = None,
    modules: Annotated[int, typer.Option(help="at most N modules, spread evenly over capture time")] = DEFAULT_MODULES,
    workers: Annotated[int, typer.Option(help="worker processes (0: one per core)")] = 0,
) -> None:
    """Find the shortest capture plan whose metrics and champion decisions match the full plan's,
    from the frames already stored; write the capture_plans table and print the recommendation."""
    import os

    try:
        settings = _settings(tolerance or [], coverage, max_changed, frame_overhead_s, days, modules,
                             workers or (os.cpu_count() or 1))
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    from models.plan_study import run_plan_study
    from sensorfleet.capture_plan.plots import plot_study

    paths = resolve_paths(root)
    try:
        result = run_plan_study(paths, settings)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    for line in _report(result.plans):
        typer.echo(line)
    best = result.recommended
    assert result.written is not None
    plot = paths.root / "plots" / "capture_plans" / f"{result.written.path.parent.name.split('=')[-1]}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot.write_bytes(plot_study(result.plans))
    decisions = (f"decisions changed for {best['changed_decisions_share']:.1%} of {best['decisions_checked']} modules "
                 f"({best['models']})" if best["decisions_checked"] else best["models"])
    typer.echo(f"\nrecommended: {best['plan_id']} ({best['description']}): {best['station_time_s']:.2f} s per module, "
               f"{best['station_time_saved_pct']:.0f}% less than the full plan; worst metric {best['worst_metric']} at "
               f"{best['worst_tolerance_ratio']:.2f} of its tolerance; {decisions}")
    typer.echo(f"{len(result.sessions)} modules studied; table {result.written.path}; plot {plot}")
