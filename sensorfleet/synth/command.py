"""``sensorfleet synth``: write a synthetic camera-module fleet into a landing folder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from sensorfleet.config import local_path, resolve_roots
from sensorfleet.manifest import CFA_PATTERNS, PIXEL_FORMATS
from sensorfleet.progress import progress_bar
from sensorfleet.staging import Stage, staged


def synth(
    modules: int = typer.Option(..., "--modules", "-n", min=1, help="number of modules (capture sessions)"),
    out: Path = typer.Option(..., "--out", "-o", help="landing folder to write the sessions into"),
    seed: int = typer.Option(0, "--seed", help="fleet seed: same seed, same bytes"),
    width: int = typer.Option(640, "--width", min=2, help="active pixels per row"),
    height: int = typer.Option(480, "--height", min=2, help="active rows"),
    pixel_format: str = typer.Option("raw12_mipi", "--format", help=f"frame file format: {', '.join(PIXEL_FORMATS)}"),
    bit_depth: int | None = typer.Option(None, "--bit-depth", help="ADC bits (default: 8/10/12/14 by format, else 12)"),
    cfa: str = typer.Option("RGGB", "--cfa", help=f"colour filter array: {', '.join(CFA_PATTERNS)}"),
    frames_per_point: int = typer.Option(2, "--frames-per-point", min=2, help="frames per operating point"),
    ptc_levels: int = typer.Option(13, "--ptc-levels", min=12, help="photon-transfer illumination levels"),
    averaging_frames: int = typer.Option(16, "--averaging-frames", min=2, help="frames of each averaging series"),
    fault_fraction: float = typer.Option(0.05, "--fault-fraction", min=0.0, max=1.0, help="share of faulty modules"),
    target_yield: float = typer.Option(0.90, "--yield", min=0.01, max=1.0, help="final-test yield to aim for"),
    start: datetime | None = typer.Option(None, "--start", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
                                          help="first capture time, UTC (default 2026-03-02T06:00:00)"),
    span_days: float = typer.Option(21.0, "--span-days", min=0.0, help="captures spread over this many days"),
    truth: Path | None = typer.Option(None, "--truth", help="ground-truth folder (default: OUT/../truth)"),
    edge_charts: bool = typer.Option(False, "--edge-charts/--no-edge-charts",
                                     help="add an edge-chart capture per module through its lens (SFR truth, lens faults)"),
    station_event: list[str] | None = typer.Option(
        None, "--station-event", help="STATION:KIND:YYYY-MM-DD:MAGNITUDE, repeatable: from that UTC day the station's "
        "light source delivers 1-MAGNITUDE of the nominal photons (light_dimming) or its die runs MAGNITUDE degC above "
        "the recorded temperature (temperature_excess); truth in TRUTH/station_events.parquet"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="worker processes (default: one per CPU)"),
) -> None:
    """Write N capture sessions (landing contract), final-test results and the ground truth."""
    # Imported here, not at the top: `synth --help` starts without the camera model.
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.stations import parse_station_event
    from sensorfleet.synth.writer import generate_fleet

    console = Console(stderr=True)
    try:
        config = FleetConfig(modules=modules, seed=seed, width=width, height=height, pixel_format=pixel_format,
                             bit_depth=bit_depth, cfa=cfa, frames_per_point=frames_per_point,
                             ptc_levels=ptc_levels, averaging_frames=averaging_frames,
                             fault_fraction=fault_fraction, target_yield=target_yield, span_days=span_days,
                             edge_charts=edge_charts, workers=workers,
                             station_events=tuple(parse_station_event(text) for text in station_event or ()))
        if start is not None:
            config = replace(config, start=start.replace(tzinfo=UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    roots = resolve_roots(landing=out)  # an s3:// OUT: written to its staging folder, then published
    if roots.landing_url is not None and truth is not None:
        raise typer.BadParameter("with an s3:// --out the truth goes beside it (<out>/../truth); drop --truth",
                                 param_hint="--truth")
    landing = roots.paths.landing
    truth_dir = local_path(truth, "--truth").expanduser().resolve() if truth is not None else roots.paths.truth
    with staged(roots, Stage(pull_landing=True, publish_root=False, publish_landing=True)), \
            progress_bar("[bold]synth[/]", console, transient=False, eta=True) as bar:
        task = bar.add_task("modules", total=modules)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            summary = generate_fleet(config, landing, truth_dir, progress)
        except FileExistsError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    faults = ", ".join(f"{k} {v}" for k, v in sorted(summary.fault_counts.items())) or "none"
    console.print(
        f"wrote {summary.modules} sessions, {summary.frames} frames, {summary.bytes_written / 1e6:.1f} MB "
        f"to {roots.landing_url or landing} in {summary.wall_s:.1f} s\n"
        f"final test: yield {summary.yield_fraction:.1%} -> {summary.final_test}\n"
        f"faults: {faults}\ntruth: {truth_dir}"
    )
