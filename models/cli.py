"""``models`` commands (a typer sub-app; the console script registers ``models_app``): train and
register both models, score days into the score tables, list and show registered versions,
promote a version by hand, print the per-lot yield forecast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from sensorfleet.config import Paths, resolve_roots
from sensorfleet.staging import Stage, staged
from sensorfleet.tables import PartitionWrite

models_app = typer.Typer(help="Models: anomaly detector and yield predictor, MLflow registry, score tables.",
                         no_args_is_help=True, add_completion=False)

RootOption = Annotated[Path | None, typer.Option(help="data root (default: SENSORFLEET_ROOT or ./data)")]
KINDS = ("anomaly", "yield")
SPATIAL = "spatial"
REGISTRY = ("mlflow",)
"""The part of a data root the registry commands read (the tracking database)."""


@contextmanager
def _root(root: Path | None, parts: tuple[str, ...] | None = None, publish: bool = True) -> Iterator[Paths]:
    """The local paths of ``root``; an ``s3://`` root is staged (``parts`` of it pulled, what
    changed published after); model artifacts go to the store through MLflow itself."""
    with staged(resolve_roots(root), Stage(root_parts=parts, publish_root=publish)) as paths:
        yield paths


def _kinds(kind: str) -> tuple[str, ...]:
    if kind == "both":
        return KINDS
    if kind not in (*KINDS, SPATIAL):
        typer.echo(f"error: unknown model {kind!r}; valid: anomaly, yield, spatial, both", err=True)
        raise typer.Exit(2)
    return (kind,)


@models_app.command("train")
def train_command(
    root: RootOption = None,
    model: Annotated[str, typer.Option(help="anomaly, yield, spatial, or both (anomaly and yield)")] = "both",
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
) -> None:
    """Train on the feature store's point-in-time training set, evaluate on held-out lots, log and
    register a new version (champion, or challenger with the reason)."""
    from models.anomaly import AnomalyConfig
    from models.train import train_anomaly, train_yield
    from models.yield_model import YieldConfig

    kinds = _kinds(model)
    with _root(root) as paths:
        for kind in kinds:
            if kind == SPATIAL:
                from models.spatial_run import train_spatial_run

                run = train_spatial_run(paths, seed=seed)
            else:
                run = train_anomaly(paths, AnomalyConfig(seed=seed)) if kind == "anomaly" else train_yield(paths, YieldConfig(seed=seed))
            assert run.registered is not None
            r = run.registered
            typer.echo(f"{r.name} v{r.version} -> {r.alias}: {r.reason} (run {r.run_id})")


@models_app.command("score")
def score_command(
    root: RootOption = None,
    day: Annotated[list[str] | None, typer.Option(help="capture day YYYY-MM-DD (repeatable; default every day "
                                                       "with module features)")] = None,
    model: Annotated[str, typer.Option(help="anomaly, yield, spatial, or both (anomaly and yield)")] = "both",
    version: Annotated[str, typer.Option(help="version number or alias")] = "champion",
) -> None:
    """Score days' modules into anomaly_scores / yield_predictions / spatial_scores with a registered version."""
    from sensorfleet.features import MODULE_FEATURES
    from sensorfleet.tables import list_partitions

    kinds = _kinds(model)
    with _root(root) as paths:
        days = day or list_partitions(paths.tables, MODULE_FEATURES)
        for kind in kinds:
            for d in days:
                result = _score_day(kind, paths, d, version)
                typer.echo(f"{kind} {d}: {result.rows} rows{'' if result.rewritten else ' (unchanged)'} -> {result.path}")


def _score_day(kind: str, paths: Paths, day: str, version: str) -> PartitionWrite:
    from models.scores import predict_yield_day, score_anomalies_day

    if kind == SPATIAL:
        from models.spatial_run import score_spatial_day

        return score_spatial_day(paths, day, version).write
    return (score_anomalies_day if kind == "anomaly" else predict_yield_day)(paths, day, version)


@models_app.command("list")
def list_command(root: RootOption = None) -> None:
    """Registered models, each version with its aliases and promotion reason."""
    from models.tracking import connect

    with _root(root, REGISTRY, publish=False) as paths:
        _list_versions(connect(paths.root))


def _list_versions(client: Any) -> None:
    from models.tracking import REASON_TAG

    for registered in client.search_registered_models():
        typer.echo(registered.name)
        aliases: dict[str, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        for v in sorted(client.search_model_versions(f"name='{registered.name}'"), key=lambda v: int(v.version)):
            tags = ",".join(aliases.get(str(v.version), [])) or "-"
            typer.echo(f"  v{v.version}  [{tags}]  {v.tags.get(REASON_TAG, '')}")


@models_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="version number or alias")] = "champion",
    root: RootOption = None,
) -> None:
    """One version: aliases, tags, and its training run's params and metrics."""
    from models.tracking import connect, resolve_version

    with _root(root, REGISTRY, publish=False) as paths:
        client = connect(paths.root)
        try:
            number = resolve_version(name, version, paths.root)
            v = client.get_model_version(name, number)
        except Exception as err:  # MlflowException: unknown model, version or alias
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        run = client.get_run(v.run_id)
    typer.echo(f"{name} v{v.version}  aliases: {', '.join(v.aliases) or '-'}  run: {v.run_id}")
    for key, value in sorted(v.tags.items()):
        typer.echo(f"  tag {key} = {value}")
    for key, value in sorted(run.data.tags.items()):
        if not key.startswith("mlflow."):
            typer.echo(f"  run tag {key} = {value}")
    for key, value in sorted(run.data.params.items()):
        typer.echo(f"  param {key} = {value}")
    for key, value in sorted(run.data.metrics.items()):
        typer.echo(f"  metric {key} = {value:.6g}")


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="version number")],
    reason: Annotated[str, typer.Option(help="recorded on the version")] = "promoted by hand",
    root: RootOption = None,
) -> None:
    """Make VERSION the champion of NAME."""
    from models.tracking import promote

    with _root(root, REGISTRY) as paths:
        try:
            promote(name, version, reason, paths.root)
        except Exception as err:  # MlflowException: unknown model or version
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"{name} v{version} -> champion")


@models_app.command("forecast")
def forecast_command(root: RootOption = None) -> None:
    """Per-lot yield forecast from yield_predictions beside the actual yield once tested."""
    import polars as pl

    from models.scores import lot_yield_forecast

    with _root(root, ("tables",), publish=False) as paths, pl.Config(tbl_rows=-1, tbl_cols=-1):
        typer.echo(lot_yield_forecast(paths))
