"""The pipeline on a real PostgreSQL server as the Dagster instance storage (dagster-postgres,
the storage section of deploy/dagster.yaml): two capture days materialized by two runs at once,
then the runs, the materializations of each partition and each partition's check results read
back through the instance API, and the rows seen in Postgres itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from postgres_server import PostgresServer, postgres_bin_dir, postgres_server  # noqa: E402
from tiny_landing import make_session  # noqa: E402  (the tiny-session helper of tests/assets)

from sensorfleet.synth.fleet import FleetConfig  # noqa: E402
from sensorfleet.synth.writer import generate_fleet  # noqa: E402

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
DAYS = ("2026-03-02", "2026-03-03")
"""The capture days of the synthetic fleet below (1 and 3 sessions), in order."""
DB_NAME = "dagster"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("Debian's postgresql is not installed (`make test` installs it: `make postgresql`)")
    import psycopg2

    with postgres_server(bin_dir) as pg:
        connection = psycopg2.connect(pg.dsn())
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DB_NAME}")
        connection.close()
        yield pg


def instance_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the repository's local one with the production
    storage section (deploy/dagster.yaml: Postgres, every setting from DAGSTER_PG_*)."""
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    local["storage"] = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())["storage"]
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(local))
    return home


def test_two_days_by_two_concurrent_runs_are_recorded_in_postgres(
    server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    for name, value in {"DAGSTER_PG_HOST": server.host, "DAGSTER_PG_PORT": str(server.port),
                        "DAGSTER_PG_DB": DB_NAME, "DAGSTER_PG_USERNAME": server.user,
                        "DAGSTER_PG_PASSWORD": ""}.items():
        monkeypatch.setenv(name, value)
    home = instance_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    landing, root, barrier = tmp_path / "landing", tmp_path / "data", tmp_path / "barrier"
    barrier.mkdir()
    generate_fleet(FleetConfig(modules=4, seed=5, width=64, height=48, span_days=1.0, workers=1,
                               start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC)), landing, tmp_path / "truth")
    make_session(landing, "day1-broken", f"{DAYS[0]}T11:00:00+00:00", seed=2, drop_file=True)  # rejected
    DagsterInstance.from_config(str(home)).dispose()  # the schema, once, before two writers share it

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("pg_day_run.py")), str(home), str(root),
                              str(landing), day, str(barrier), str(len(DAYS))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for day in DAYS]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]
    outcomes = {o["day"]: o for o in (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)}
    assert {d: (o["ingested"], o["rejected"]) for d, o in outcomes.items()} == {DAYS[0]: (1, 1), DAYS[1]: (3, 0)}

    instance = DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        records = instance.get_run_records(RunsFilter(job_name="daily_pipeline"))
        assert {r.dagster_run.tags["dagster/partition"]: r.dagster_run.run_id for r in records} == {
            d: outcomes[d]["run_id"] for d in DAYS}
        assert {r.dagster_run.status for r in records} == {DagsterRunStatus.SUCCESS}
        # the two runs overlapped in time: each started before the other ended
        assert max(r.start_time for r in records) < min(r.end_time for r in records)

        for asset in ("captures", "rejections", "module_stats", "pixel_defects"):
            assert instance.get_materialized_partitions(AssetKey(asset)) == set(DAYS), asset
        assert sorted(instance.get_dynamic_partitions("capture_days")) == list(DAYS)

        def latest(asset: str, check: str) -> dict[str, AssetCheckExecutionRecordStatus]:
            key = AssetCheckKey(AssetKey(asset), check)
            return {info.partition_key: info.latest_execution_status
                    for info in instance.event_log_storage.get_asset_check_partition_info([key])}

        ok, failed = AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED
        assert latest("captures", "no_rejected_sessions") == {DAYS[0]: failed, DAYS[1]: ok}
        assert latest("captures", "operating_points_complete") == {DAYS[0]: ok, DAYS[1]: ok}
        assert latest("module_stats", "metrics_within_physical_bounds") == {DAYS[0]: ok, DAYS[1]: ok}
    finally:
        instance.dispose()

    import psycopg2

    with psycopg2.connect(server.dsn(DB_NAME)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE pipeline_name = 'daily_pipeline'")
        assert cursor.fetchone() == (2,)
        cursor.execute("SELECT DISTINCT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert {row[0] for row in cursor.fetchall()} == set(DAYS)
    assert not list(home.rglob("*.db")), "no SQLite storage beside the Postgres one"


def test_the_server_binaries_are_found_off_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian installs initdb/pg_ctl under /usr/lib/postgresql/<version>/bin, not on PATH."""
    import glob

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("Debian's postgresql is not installed (`make test` installs it: `make postgresql`)")
    monkeypatch.setenv("PATH", "/nonexistent")
    found = postgres_bin_dir()
    assert found is not None and found.parts[:4] == ("/", "usr", "lib", "postgresql")
    assert (found / "pg_ctl").is_file()


def test_the_server_is_stopped_and_removed_when_the_test_fails() -> None:
    import socket

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("Debian's postgresql is not installed (`make test` installs it: `make postgresql`)")
    with pytest.raises(RuntimeError, match="a failing test"), postgres_server(bin_dir) as pg:
        folder, port = pg.folder, pg.port
        assert (folder / "data" / "postmaster.pid").is_file()
        raise RuntimeError("a failing test")
    assert not folder.exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more
