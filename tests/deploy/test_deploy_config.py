"""The production configuration in deploy/ loads with Dagster's own validation: the instance
schema, each configurable class's own config schema (the class imported from its library), the
workspace schema, and the container recipe names the code location the rest of the repo does."""

from __future__ import annotations

import importlib
import re
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import process_workspace_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTANCE_FILES = ("dagster.yaml", "dagster-celery-k8s.yaml")
CLASS_SECTIONS = ("compute_logs", "run_coordinator", "run_launcher", "run_storage", "event_log_storage",
                  "schedule_storage", "scheduler", "local_artifact_storage")


def load_instance_config(name: str, tmp_path: Path) -> Mapping[str, Any]:
    """``deploy/<name>`` through ``dagster_instance_config`` (raises on a schema error)."""
    shutil.copyfile(DEPLOY / name, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return config


def class_config_errors(section: Mapping[str, Any]) -> list[str]:
    """The errors of ``{module, class, config}`` against the class's own ``config_type``."""
    cls = getattr(importlib.import_module(section["module"]), section["class"])
    result = validate_config(cls.config_type(), section.get("config") or {})
    return [error.message for error in result.errors or []]


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_instance_config_and_every_class_validate(name: str, tmp_path: Path) -> None:
    config = load_instance_config(name, tmp_path)
    sections = {key: config[key] for key in CLASS_SECTIONS if key in config}
    assert {"compute_logs", "run_coordinator", "run_launcher"} <= set(sections)
    for key, section in sections.items():
        assert class_config_errors(section) == [], f"{name}: {key} ({section['class']})"
    # Postgres storage: the section the instance maps to dagster_postgres' storage class
    from dagster_postgres import DagsterPostgresStorage

    postgres = config["storage"]["postgres"]
    assert validate_config(DagsterPostgresStorage.config_type(), postgres).success
    assert all(isinstance(v, dict) and "env" in v for k, v in postgres["postgres_db"].items() if k not in ("params", "scheme"))


def test_production_instance_has_the_promised_policies(tmp_path: Path) -> None:
    config = load_instance_config("dagster.yaml", tmp_path)
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    limits = {limit["key"]: limit for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert limits["dagster/partition"]["limit"] == 1
    assert limits["sensorfleet/station"]["value"] == {"applyLimitPerUniqueValue": True}
    assert config["concurrency"]["pools"]["default_limit"] == 1  # warehouse_writer: one at a time
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}


def test_a_wrong_field_is_refused(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt launcher field and a misspelt top-level key."""
    text = (DEPLOY / "dagster.yaml").read_text()
    config = yaml.safe_load(text)
    config["run_launcher"]["config"]["job_namespce"] = "x"
    assert class_config_errors(config["run_launcher"]) != []
    (tmp_path / "dagster.yaml").write_text(text.replace("run_retries:", "run_retry:"))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_the_warehouse_pool_is_the_one_the_code_uses() -> None:
    from assets.warehouse import WAREHOUSE_POOL

    assert WAREHOUSE_POOL in (DEPLOY / "dagster.yaml").read_text()


def test_workspace_and_container_name_the_code_location() -> None:
    dg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert process_workspace_config(workspace).success
    server = workspace["load_from"][0]["grpc_server"]
    assert server["location_name"] == dg["code_location_name"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile, re.M | re.S)
    assert cmd is not None
    args = yaml.safe_load(cmd.group(1).replace("\\\n", ""))
    assert args[args.index("-m") + 1] == dg["code_location_target_module"]
    assert args[args.index("--location-name") + 1] == server["location_name"]
    assert args[args.index("-p") + 1] == str(server["port"])
    installed = re.search(r"pip install '\.\[(\w+)\]'", dockerfile)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert installed is not None and installed.group(1) in extras
