"""Fixtures of the asset tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensorfleet.config import Paths, resolve_paths


@pytest.fixture
def tiny_paths(tmp_path: Path) -> Paths:
    """Roots under ``tmp_path`` with an empty landing folder."""
    paths = resolve_paths(tmp_path / "data", tmp_path / "data" / "landing")
    paths.landing.mkdir(parents=True)
    return paths
