"""MLflow tracking and model registry: one experiment per model, every training run logged
(params, metrics, plots, the model with its signature, the threshold, the training set's manifest,
the code version), each run's model registered as a new version, and promotion by aliases:
``champion`` only if the new version is not worse than the champion beyond a tolerance on the
same held-out data, else ``challenger`` with the reason as a version tag.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sensorfleet.config import MLFLOW_ENV, environment_kept, resolve_tracking

CHAMPION = "champion"
CHALLENGER = "challenger"
REASON_TAG = "promotion_reason"
REPO = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """``git describe --always --dirty`` of the checkout, else the installed package version."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                              text=True, timeout=10)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"sensorfleet {metadata.version('sensorfleet')}"


def connect(root: str | Path | None = None) -> Any:
    """An ``MlflowClient`` on the root's tracking store (``MLFLOW_TRACKING_URI`` or
    ``<root>/mlflow/mlflow.db``); also sets the process's tracking and registry URIs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    tracking = resolve_tracking(root)
    if tracking.uri.startswith("sqlite:///"):
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # MLflow draws a progress bar for every artifact download (each champion load): noise in the
    # demo's and the CLI's output; a user's own setting wins
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # and it announces at INFO level each set-up step of a new SQLite store ("Creating initial
    # MLflow database tables...", "Updating database tables") in the middle of the demo's summary
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    with environment_kept(MLFLOW_ENV):  # set_tracking_uri also exports MLFLOW_TRACKING_URI,
        mlflow.set_tracking_uri(tracking.uri)  # which resolve_tracking would then take as the
        mlflow.set_registry_uri(tracking.uri)  # user's choice for every later root
    return MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)


def experiment(client: Any, name: str, root: str | Path | None = None) -> str:
    """Id of experiment ``name``, created with its artifacts under the root's artifact folder."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    artifacts = resolve_tracking(root).artifacts
    if artifacts is None:
        return str(client.create_experiment(name))
    if isinstance(artifacts, str):  # an object root: s3://.../mlflow/artifacts, MLflow writes there
        return str(client.create_experiment(name, artifact_location=f"{artifacts}/{name}"))
    location = artifacts / name
    location.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=location.as_uri()))


@dataclass
class Candidate:
    """What a training run logs. ``primary``: the metric promotion compares (higher is better);
    ``evaluate``: the same metric of any loaded model on this run's held-out data (used on the
    champion); ``example``: a pandas frame of model input for the signature. ``log_model``: logs
    the model in the active run and registers it, returning the new version (default: the
    scikit-learn flavour saved as skops); ``loader``: ``(name, version) -> model`` for the
    champion (default :func:`load_model`)."""

    name: str
    model: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    primary: str
    evaluate: Callable[[Any], float]
    example: Any
    output: Any
    figures: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    log_model: Callable[[Candidate], str] | None = None
    loader: Callable[[str, str], Any] | None = None


@dataclass(frozen=True)
class Registered:
    """Outcome: the run, the new version, the alias it got and why."""

    name: str
    version: str
    run_id: str
    alias: str
    reason: str
    metrics: Mapping[str, float]


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v == v and abs(float(v)) != float("inf")}


TRUSTED_MODULES = ("models.", "pyod.", "sklearn.", "numpy.", "scipy.", "builtins.")
"""Modules whose types a saved model may hold: our code and the pinned libraries."""


def trusted_types(model: Any) -> list[str]:
    """The types skops must be told to trust to load ``model`` (saved as skops, not pickle);
    refuses a model holding a type from any other module."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [t for t in found if not t.startswith(TRUSTED_MODULES)]
    if foreign:
        raise TypeError(f"model holds types outside {TRUSTED_MODULES}: {foreign}")
    return list(found)


def log_and_register(candidate: Candidate, root: str | Path | None = None, tolerance: float = 0.01) -> Registered:
    """Log ``candidate`` as a run of experiment ``candidate.name``, register its model as a new
    version of the registered model of that name, and give it an alias (see module doc)."""
    import mlflow

    client = connect(root)
    exp = experiment(client, candidate.name, root)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in candidate.params.items()})
        mlflow.log_metrics(_finite(candidate.metrics))
        mlflow.set_tags({"code_version": code_version(), **candidate.tags})
        for fname, figure in candidate.figures.items():
            mlflow.log_figure(figure, f"plots/{fname}")
        for path in candidate.artifacts:
            mlflow.log_artifact(str(path), "training_set")
        version = (candidate.log_model or log_sklearn_model)(candidate)
        alias, reason, champion_value = decide_alias(client, candidate, version, tolerance)
        if champion_value is not None:
            mlflow.log_metric(f"champion_{candidate.primary}", champion_value)
    client.set_registered_model_alias(candidate.name, alias, version)
    client.set_model_version_tag(candidate.name, version, REASON_TAG, reason)
    client.set_model_version_tag(candidate.name, version, candidate.primary, f"{candidate.metrics[candidate.primary]:.6f}")
    return Registered(candidate.name, version, run.info.run_id, alias, reason, candidate.metrics)


def log_sklearn_model(candidate: Candidate) -> str:
    """Log ``candidate.model`` (scikit-learn flavour, skops format, with its signature) in the
    active run, registered under ``candidate.name``; returns the new version."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(candidate.example, candidate.output)
    requirements = [f"{p}=={metadata.version(p)}" for p in ("scikit-learn", "pyod", "numpy")]
    info = mlflow.sklearn.log_model(candidate.model, name="model", signature=signature,
                                    registered_model_name=candidate.name, pip_requirements=requirements,
                                    serialization_format="skops", skops_trusted_types=trusted_types(candidate.model))
    return str(info.registered_model_version)


def register_folder(name: str, folder: Path, artifact_path: str = "model") -> str:
    """Log the files of ``folder`` as the active run's ``artifact_path`` and register them as a
    new version of ``name`` (created when missing): for models kept in their own file format
    (the spatial model's ``weights.pt`` + ``metadata.json``, read back by :func:`download_source`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    mlflow.log_artifacts(str(folder), artifact_path)
    try:
        client.create_registered_model(name)
    except MlflowException:  # already registered
        pass
    run = mlflow.active_run()
    assert run is not None, "register_folder runs inside a training run"
    version = client.create_model_version(name, f"{run.info.artifact_uri}/{artifact_path}", run_id=run.info.run_id)
    return str(version.version)


def version_source(name: str, version: str, root: str | Path | None = None) -> str:
    """The artifact URI registered as version ``version`` of ``name`` (names its run: unique)."""
    return str(connect(root).get_model_version(name, version).source)


def download_source(source: str, target: Path) -> Path:
    """The files at a :func:`version_source` URI (registered by :func:`register_folder`),
    downloaded into ``target``; returns the folder holding them."""
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(target)))


def held_out(candidate: Candidate) -> str:
    """What the primary metric was measured on, for a reader to weigh it: `` (held out: 24
    modules, 3 positive; chance 0.5000)`` from the run's ``test_modules``, ``positives`` (or
    ``failures``) and ``chance_<primary>`` metrics, whichever it has ('' when none): a ROC AUC
    below chance on three positives says little about the model."""
    metrics = candidate.metrics
    counts = [f"{int(metrics['test_modules'])} modules"] if "test_modules" in metrics else []
    positives = metrics.get("positives", metrics.get("failures"))
    if positives is not None:
        counts.append(f"{int(positives)} positive")
    parts = [f"held out: {', '.join(counts)}"] if counts else []
    chance = metrics.get(f"chance_{candidate.primary}")
    if chance is not None:
        parts.append(f"chance {float(chance):.4f}")
    return f" ({'; '.join(parts)})" if parts else ""


def decide_alias(client: Any, candidate: Candidate, version: str, tolerance: float) -> tuple[str, str, float | None]:
    """(alias, reason, champion's metric on the same held-out data or None): ``champion`` when
    there is none yet or ``new >= champion - tolerance``, else ``challenger``."""
    new = float(candidate.metrics[candidate.primary])
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(candidate.name, CHAMPION)
    except MlflowException:  # no champion yet (alias not found)
        return CHAMPION, f"first version with {candidate.primary}={new:.4f}{held_out(candidate)}", None
    champion_model = (candidate.loader or load_model)(candidate.name, str(current.version))
    old = float(candidate.evaluate(champion_model))
    compared = (f"{candidate.primary} {new:.4f} vs champion v{current.version}'s {old:.4f} on the same held-out data "
                f"(tolerance {tolerance}){held_out(candidate)}")
    if new >= old - tolerance:
        return CHAMPION, f"promoted: {compared}", old
    return CHALLENGER, f"not promoted: {compared}", old


def load_model(name: str, version_or_alias: str = CHAMPION, root: str | Path | None = None) -> Any:
    """The model object of ``name`` at a version number or an alias."""
    import mlflow

    if root is not None:
        connect(root)
    ref = f"models:/{name}/{version_or_alias}" if str(version_or_alias).isdigit() else f"models:/{name}@{version_or_alias}"
    return mlflow.sklearn.load_model(ref)


class NoSuchModelError(LookupError):
    """No registered version answers to the name and alias asked for (e.g. before the first
    training run: no champion yet)."""


def store_missing(root: str | Path | None = None) -> Path | None:
    """The root's SQLite tracking file when it does not exist yet (no model was ever trained
    there), else None. Answers without importing MLflow or creating its database: a day scored
    before the first training run (the demo's first pipeline run) paid ~1-2 s per day for both."""
    uri = resolve_tracking(root).uri
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return None if path.exists() else path


def no_model_yet(name: str, version_or_alias: str, why: str) -> NoSuchModelError:
    return NoSuchModelError(f"model {name!r} has no version with alias {version_or_alias!r} yet: train one first "
                            f"(the retrain job, or `sensorfleet models train`) ({why})")


def no_model_store(missing: Path) -> NoSuchModelError:
    """Why nothing can be scored before the first training: no model store at ``missing`` (what
    :func:`store_missing` found), for every model at once."""
    return NoSuchModelError(f"no model trained yet (no model store at {missing}): run the retrain job first "
                            "(or `sensorfleet models train`)")


def resolve_version(name: str, version_or_alias: str = CHAMPION, root: str | Path | None = None) -> str:
    """The version number behind a version or alias; NoSuchModelError when the model or the
    alias does not exist."""
    if str(version_or_alias).isdigit():
        return str(version_or_alias)
    if (missing := store_missing(root)) is not None:  # before the first training: no MLflow import
        raise no_model_yet(name, version_or_alias, f"no model store at {missing}")
    from mlflow.exceptions import MlflowException
    try:
        return str(connect(root).get_model_version_by_alias(name, version_or_alias).version)
    except MlflowException as exc:
        raise no_model_yet(name, version_or_alias, exc.message) from None


def registered_at(name: str, version: str, root: str | Path | None = None) -> datetime:
    """When ``version`` of ``name`` was registered (UTC)."""
    created_ms = connect(root).get_model_version(name, version).creation_timestamp
    return datetime.fromtimestamp(created_ms / 1000, UTC)


def promote(name: str, version: str, reason: str = "promoted by hand", root: str | Path | None = None) -> None:
    """Make ``version`` the champion, recording ``reason`` on it."""
    client = connect(root)
    client.get_model_version(name, version)  # raises, naming the model, when it does not exist
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, REASON_TAG, reason)
