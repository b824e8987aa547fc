"""``features`` commands (a typer sub-app; the console script registers ``features_app``):
build a training set with its manifest, rebuild one from a manifest, list and show the views
and services."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sensorfleet.features.model import FeatureView

# The feature store is imported inside each command: `features --help` lists them without it.

features_app = typer.Typer(help="Feature store: point-in-time training sets, views and services.",
                           no_args_is_help=True, add_completion=False)


def _ttl(view: FeatureView) -> str:
    seconds = view.ttl.total_seconds()
    return f"{seconds / 86400:g} d" if seconds % 86400 == 0 else f"{seconds:g} s"


@features_app.command("build-training-set")
def build_command(
    spine: Annotated[Path, typer.Option(help="parquet file with module_id, label_time (with zone), any other columns")],
    out: Annotated[Path, typer.Option(help="training set parquet to write; the manifest goes beside it")],
    service: Annotated[str, typer.Option(help="feature service")] = "default",
    as_of: Annotated[str | None, typer.Option(help="created-time cut: ISO time with zone, or 'label'; default now")] = None,
    root: Annotated[Path | None, typer.Option(help="data root (default: SENSORFLEET_ROOT or ./data)")] = None,
) -> None:
    """Write the point-in-time training set of SPINE to OUT, with OUT.manifest.json beside it."""
    from sensorfleet.config import local_path, resolve_roots
    from sensorfleet.features.manifest import SourceChangedError, build_training_set
    from sensorfleet.staging import Stage, staged

    spine, out = local_path(spine, "--spine"), local_path(out, "--out")
    roots = resolve_roots(root)  # an s3:// root: its tables are fetched into the staging folder
    try:
        with staged(roots, Stage(root_parts=("tables",), publish_root=False)) as paths:
            manifest = build_training_set(spine, out, service, as_of, paths.root)
    except (KeyError, ValueError, SourceChangedError) as err:
        typer.echo(f"error: {err.args[0] if err.args else err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out} and {manifest}")


@features_app.command("rebuild")
def rebuild_command(
    manifest: Annotated[Path, typer.Argument(help="a training set's manifest.json")],
    out: Annotated[Path | None, typer.Option(help="where to write (default: the recorded output)")] = None,
) -> None:
    """Write a training set again from its manifest: the same bytes, or a refusal naming what changed."""
    from sensorfleet.config import local_path
    from sensorfleet.features.manifest import SourceChangedError, rebuild

    manifest = local_path(manifest, "manifest")
    out = None if out is None else local_path(out, "--out")
    try:
        path = rebuild(manifest, out)
    except (SourceChangedError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path}")


@features_app.command("list")
def list_command() -> None:
    """Feature views and services, one line each."""
    from sensorfleet.features.catalog import SERVICES, VIEWS

    typer.echo("views:")
    for v in VIEWS.values():
        typer.echo(f"  {v.name} v{v.version}  {len(v.features)} features  ttl {_ttl(v)}  {v.description}")
    typer.echo("services:")
    for s in SERVICES.values():
        typer.echo(f"  {s.name} v{s.version}  {len(s.output_columns())} features  {s.description}")


def _show_view(view: FeatureView, selected: tuple[str, ...] = ()) -> None:
    typer.echo(f"view {view.name} v{view.version}: {view.description}")
    typer.echo(f"  entity {view.entity}; join keys {', '.join(view.join_keys)}; event time {view.event_time}; "
               f"created time {view.created_time}; ttl {_ttl(view)}; source {', '.join(view.source.tables)}")
    for f in view.features:
        if not selected or f.name in selected:
            typer.echo(f"  {f.name:<48} {f.dtype:<4} [{f.unit or '-'}] {f.description}")


@features_app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="a view or service name")]) -> None:
    """A view's or service's features with types, units and TTLs."""
    from sensorfleet.features.catalog import SERVICES, VIEWS

    if name in VIEWS:
        _show_view(VIEWS[name])
    elif name in SERVICES:
        svc = SERVICES[name]
        typer.echo(f"service {svc.name} v{svc.version}: {svc.description}")
        for sel in svc.selections:
            _show_view(sel.view, sel.features)
    else:
        typer.echo(f"error: no view or service {name!r}; views: {', '.join(VIEWS)}; "
                   f"services: {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
