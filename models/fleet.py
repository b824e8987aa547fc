"""A synthetic fleet taken through the core steps (synth -> ingest -> characterize -> final test
-> module features), for tests, benchmarks and examples: the data the models train on, with the
truth beside it (``<landing>/../truth``) for evaluation only.
"""

from __future__ import annotations

from pathlib import Path

from sensorfleet.config import Paths
from sensorfleet.emva import characterize_day
from sensorfleet.features import materialize_module_features
from sensorfleet.ingest import ingest_day
from sensorfleet.labels import ingest_final_test
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet

READY = ".fleet-ready"


def landing_days(paths: Paths) -> list[str]:
    """Capture days (``YYYY-MM-DD``) of the landing's session folders, from their names
    (``CM-<seed>-<index>-<YYYYmmddTHHMMSS>``)."""
    compact = {p.name.rsplit("-", 1)[-1][:8] for p in paths.landing.glob("CM-*") if p.is_dir()}
    return sorted(f"{c[:4]}-{c[4:6]}-{c[6:]}" for c in compact)


def build_fleet(base: Path, config: FleetConfig, workers: int = 1) -> Paths:
    """Generate ``config``'s fleet under ``base`` (landing, truth, data) and run the core steps
    for every day; reuse ``base`` when a previous call finished there (marker file)."""
    paths = Paths(root=(base / "data").resolve(), landing=(base / "landing").resolve())
    if (base / READY).is_file():
        return paths
    if not paths.landing.is_dir():
        generate_fleet(config, paths.landing, paths.truth)
    days = landing_days(paths)
    for day in days:
        ingest_day(paths, day, workers=workers)
        characterize_day(paths, day, workers=workers)
    ingest_final_test(paths)
    for day in days:
        materialize_module_features(paths, day)
    (base / READY).write_text(f"{config}\n")
    return paths
