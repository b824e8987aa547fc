"""``sensorfleet demo``: a small synthetic fleet -> every asset materialized -> where to look.

What ``make demo`` runs. Generation is skipped when the landing folder already holds sessions,
and the pipeline skips unchanged sessions, so running it twice is cheap. It lives in
``pipelines`` because it runs the Dagster graph; Dagster itself loads only when the run starts.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import typer
from rich.console import Console

from pipelines.run_command import (
    run_with_display,
    study_capture_plans_with_display,
    train_and_score_with_display,
)
from sensorfleet.config import Paths, resolve_paths
from sensorfleet.manifest import MANIFEST_NAME
from sensorfleet.progress import progress_bar


def landing_session_count(landing: Path) -> int:
    """Folders directly under ``landing`` that hold a ``manifest.json``."""
    if not landing.is_dir():
        return 0
    return sum(1 for p in landing.iterdir() if (p / MANIFEST_NAME).is_file())


def generate_demo_fleet(
    paths: Paths, modules: int, seed: int, console: Console, width: int = 640, height: int = 480
) -> None:
    """Write ``modules`` synthetic sessions of ``width`` x ``height`` pixels into
    ``paths.landing`` (truth beside it)."""
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    # several lots, wafers and stations (so lot and wafer questions have answers and the models
    # can hold lots out), and an edge chart per module for the lens measurements
    config = FleetConfig(modules=modules, seed=seed, width=width, height=height, modules_per_lot=DEMO_MODULES_PER_LOT,
                         edge_charts=True)
    with progress_bar("[bold]synthetic fleet[/]", console) as bar:
        task = bar.add_task("modules", total=modules)
        summary = generate_fleet(
            config, paths.landing, paths.truth, lambda done, total: bar.update(task, completed=done, total=total)
        )
    console.print(
        f"synthetic fleet: {summary.modules} session(s) ({config.width}x{config.height} {config.cfa}, "
        f"{config.pixel_format}, seed {seed}), {summary.bytes_written / 1e6:.0f} MB in {summary.wall_s:.1f} s"
    )


BROKEN_SESSION_ID = "DEMO-broken-truncated-frame"


def add_broken_session(landing: Path, console: Console) -> Path | None:
    """Add one deliberately broken session to a demo landing folder, so the demo shows how bad
    input is handled: a copy of the first session whose last frame file is cut short by 100 bytes.

    Written under a hidden temporary name and renamed into place; the source session is only
    read. Returns the new session folder, or None when there is no session to copy.
    """
    target = landing / BROKEN_SESSION_ID
    if target.exists():
        return target
    sources = sorted(p for p in landing.iterdir() if (p / MANIFEST_NAME).is_file() and not p.name.startswith("."))
    if not sources:
        return None
    source = sources[0]
    manifest = json.loads((source / MANIFEST_NAME).read_text())
    manifest["session_id"] = BROKEN_SESSION_ID
    manifest["module_id"] = f"{manifest['module_id']}-copy"
    tmp = landing / f".{BROKEN_SESSION_ID}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for frame in manifest["frames"]:
        shutil.copyfile(source / frame["file"], tmp / frame["file"])
    last = tmp / manifest["frames"][-1]["file"]
    with open(last, "r+b") as fh:
        fh.truncate(max(0, last.stat().st_size - 100))
    (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    os.rename(tmp, target)
    console.print(
        f"added {BROKEN_SESSION_ID}: a copy of {source.name} with its last frame cut short, "
        "to show how a rejected session looks (summary, rejections table, a failed check in the UI)"
    )
    return target


def print_where(paths: Paths, console: Console) -> None:
    """Where the results are and how to look at them."""
    rows = [
        ("raw input (never modified)", paths.landing),
        ("ground truth of the synthetic fleet", paths.truth),
        ("frame stacks (zarr)", paths.captures / "<day>" / "<session>.zarr"),
        ("per-pixel maps (zarr)", paths.maps / "<day>" / "<session>.zarr"),
        ("tables (parquet, by capture_date)", paths.tables),
        ("plots of the worst module per day", paths.root / "plots"),
        ("Dagster runs", paths.dagster_home),
    ]
    console.print()
    console.print("[bold]Where things are[/]")
    width = max(len(name) for name, _ in rows)
    for name, path in rows:
        console.print(f"  {name:<{width}}  {path}", markup=False)
    console.print()
    console.print("Open the Dagster UI (asset graph, partitions, checks, plots):  make dev  ->  http://127.0.0.1:3000")
    console.print(f"Query the warehouse:  sensorfleet sql --root {paths.root} \"SELECT * FROM module_stats LIMIT 5\"",
                  markup=False)
    console.print(f"The models:  sensorfleet models list --root {paths.root}", markup=False)


DEMO_STUDY_MODULES = 12
"""Modules the demo's capture-plan study re-characterizes: enough to show the table and the plot
in the UI in a few seconds; `sensorfleet plan study` takes 50 by default."""

DEMO_SPATIAL_EPOCHS = 30
"""The demo's spatial training run: 30 epochs instead of the retrain job's 150 (210 optimizer steps
on the demo's ~54 known-good training modules), to keep the demo's added time within seconds
(docs/models-spatial.md); the weekly retrain trains the full run."""

DEMO_MODULES_PER_LOT = 10
"""The demo's lot size: 80 modules make 8 lots, enough to hold the latest lots out when training."""


def demo(
    root: Path | None = typer.Option(
        None, "--root", help="data root: outputs go under it (default SENSORFLEET_ROOT or ./data)"
    ),
    landing: Path | None = typer.Option(
        None, "--landing", help="landing root, the fleet is written there (default SENSORFLEET_LANDING or <root>/landing)"
    ),
    modules: int = typer.Option(80, "--modules", min=1, help="modules (capture sessions) of the synthetic fleet"),
    seed: int = typer.Option(0, "--seed", help="fleet seed"),
    width: int = typer.Option(320, "--width", min=128, help="sensor width of the synthetic modules (pixels)"),
    height: int = typer.Option(240, "--height", min=96, help="sensor height of the synthetic modules (pixels)"),
) -> None:
    """Generate a small synthetic fleet (unless one is there), run the pipeline, say where to look."""
    console = Console(soft_wrap=True)
    paths = resolve_paths(root, landing)
    existing = landing_session_count(paths.landing)
    if existing:
        console.print(f"landing {paths.landing} already holds {existing} session(s): not generating a fleet")
    else:
        generate_demo_fleet(paths, modules, seed, console, width, height)
        add_broken_session(paths.landing, console)
    summary = run_with_display(paths, console=console)
    if summary.interrupted:  # Ctrl-C: stop here, not train on half a fleet
        raise typer.Exit(130)
    models = train_and_score_with_display(paths, console, spatial_epochs=DEMO_SPATIAL_EPOCHS)
    # the study compares the champions' decisions: only once they exist
    studied = study_capture_plans_with_display(paths, console, DEMO_STUDY_MODULES) if models.ok else True
    print_where(paths, console)
    # Rejections are expected (the demo plants one); only a real failure fails the demo.
    if not (summary.ok and studied):
        raise typer.Exit(1)
    if not models.ok:  # a fleet too small to train on: said above, the data products stand
        console.print("  (the models need a larger fleet: `sensorfleet demo --modules 80` or more)")
