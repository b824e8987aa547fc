"""The Dagster instance's configuration: the repository's dagster.yaml copied into a
``DAGSTER_HOME`` (what ``pipeline run`` and ``make dev`` both do). Imports no Dagster."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def install_instance_config(home: Path) -> Path:
    """Create ``home`` and copy dagster.yaml into it (atomically, only when it differs).

    Returns ``home/dagster.yaml``. Raises ``FileNotFoundError`` when neither the repository's
    file nor an existing one in ``home`` is there.
    """
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if REPO_DAGSTER_YAML.is_file():
        if not target.is_file() or target.read_bytes() != REPO_DAGSTER_YAML.read_bytes():
            tmp = home / ".dagster.yaml.tmp"
            shutil.copyfile(REPO_DAGSTER_YAML, tmp)
            os.replace(tmp, target)
    elif not target.is_file():
        raise FileNotFoundError(f"{REPO_DAGSTER_YAML}: the instance configuration is missing and {target} does not exist")
    return target
