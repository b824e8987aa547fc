"""Object-store roots against a real S3-compatible server (moto's, on a free loopback port):
commit markers last, a killed writer leaves nothing a reader takes for whole, and synth ->
pipeline -> warehouse -> training set on ``s3://`` roots equals the same run on local disk."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import zarr
from typer.testing import CliRunner

from assets.resources import StorageResource
from pipelines.cli import app
from sensorfleet import objstore
from sensorfleet.config import object_store_options, resolve_paths, resolve_roots
from sensorfleet.objstore import ObjectUrl
from sensorfleet.registry import TABLES
from sensorfleet.staging import Stage, staged
from sensorfleet.warehouse.build import WAREHOUSE_FILE
from sensorfleet.warehouse.query import run_query

pytestmark = pytest.mark.objstore
BUCKET = "fleet"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, stopped at teardown whatever the tests did."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on port {port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def s3(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """The standard AWS variables pointing at the server, a fresh bucket, staging under tmp_path;
    returns the s3fs filesystem."""
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "eu-west-1", "SENSORFLEET_STAGING": str(tmp_path / "staging")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the root's own tracking database
    fs = objstore.filesystem(object_store_options())
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    return fs


def _write_group(folder: Path, value: int) -> Path:
    group_path = folder / "captures" / "2026-03-02" / "S1.zarr"
    group = zarr.open_group(group_path, mode="w")
    frames = group.create_array("frames", shape=(4, 8, 8), chunks=(1, 8, 8), dtype="uint16")
    frames[:] = np.full((4, 8, 8), value, dtype=np.uint16)
    group.attrs["complete"] = True
    return group_path


def _open_remote(endpoint: str, url: str) -> zarr.Group:
    return zarr.open_group(url, mode="r", storage_options={"endpoint_url": endpoint, "key": "test", "secret": "test"})


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from sensorfleet import objstore
    from sensorfleet.config import object_store_options

    def die(step):
        if step == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)  # killed between two object puts

    objstore.publish(objstore.filesystem(object_store_options()), Path(sys.argv[1]),
                     objstore.ObjectUrl("fleet", sys.argv[2]), before_step=die)
""")


def _killed_publish(folder: Path, prefix: str, step: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), prefix, step],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr


def test_a_killed_writer_leaves_no_group_a_reader_takes_for_whole(s3: object, s3_endpoint: str, tmp_path: Path) -> None:
    fs, url = s3, ObjectUrl(BUCKET, "root")
    writer = tmp_path / "writer"
    group = _write_group(writer, 1)
    (writer / "tables" / "t" / "capture_date=2026-03-02").mkdir(parents=True)
    (writer / "tables" / "t" / "capture_date=2026-03-02" / "part-0.parquet").write_bytes(b"PAR1")

    _killed_publish(writer, "root", "markers")  # chunks put, the group's zarr.json not yet
    listing = objstore.remote_listing(fs, url)
    assert "captures/2026-03-02/S1.zarr/frames/c/0/0/0" in listing and "captures/2026-03-02/S1.zarr/zarr.json" not in listing
    assert not any(r.startswith("captures/") for r in objstore.committed(listing))
    reader = tmp_path / "reader"
    objstore.pull(fs, url, reader)
    assert not (reader / "captures").exists() and (reader / "tables" / "t").is_dir()
    with pytest.raises(FileNotFoundError):
        _open_remote(s3_endpoint, f"s3://{BUCKET}/root/captures/2026-03-02/S1.zarr")

    objstore.publish(fs, writer, url)  # the next publish completes it
    objstore.pull(fs, url, reader)
    assert np.array_equal(zarr.open_group(reader / "captures/2026-03-02/S1.zarr", mode="r")["frames"][:], np.ones((4, 8, 8)))

    _write_group(writer, 2)  # a rewrite, killed after the old marker is withdrawn and new chunks are put
    _killed_publish(writer, "root", "markers")
    assert "captures/2026-03-02/S1.zarr/zarr.json" not in objstore.remote_listing(fs, url)
    objstore.pull(fs, url, reader)
    assert not (reader / "captures").exists()  # never a mix of old and new chunks
    objstore.publish(fs, writer, url)
    remote = _open_remote(s3_endpoint, f"s3://{BUCKET}/root/captures/2026-03-02/S1.zarr")
    assert np.array_equal(remote["frames"][:], np.full((4, 8, 8), 2)) and remote.attrs["complete"] is True
    assert group.is_dir()


def test_publish_puts_only_what_changed_and_removes_what_is_gone(s3: object, tmp_path: Path) -> None:
    fs, url = s3, ObjectUrl(BUCKET, "r")
    folder = tmp_path / "w"
    _write_group(folder, 1)
    (folder / ".hidden.0123.tmp").write_text("a temporary of a local atomic write")
    (folder / WAREHOUSE_FILE).write_bytes(b"db")
    first = objstore.publish(fs, folder, url, last=(WAREHOUSE_FILE,))
    assert first.last == (WAREHOUSE_FILE,) and first.markers == ("captures/2026-03-02/S1.zarr/zarr.json",)
    assert ".hidden.0123.tmp" not in objstore.remote_listing(fs, url)
    again = objstore.publish(fs, folder, url, last=(WAREHOUSE_FILE,))
    assert again.put == again.markers == again.last == again.delete == ()
    import shutil

    shutil.rmtree(folder / "captures")
    gone = objstore.publish(fs, folder, url)
    assert gone.withdraw == ("captures/2026-03-02/S1.zarr/zarr.json",) and gone.delete
    assert list(objstore.remote_listing(fs, url)) == [WAREHOUSE_FILE]


def test_a_landing_session_is_taken_only_with_its_manifest(s3: object, tmp_path: Path) -> None:
    fs = s3
    fs.pipe({f"{BUCKET}/landing/S1/dark_000.raw": b"x", f"{BUCKET}/landing/S1/manifest.json": b"{}",
             f"{BUCKET}/landing/S2/dark_000.raw": b"y", f"{BUCKET}/landing/final_test/ft.csv": b"z"})
    folder = tmp_path / "landing"
    objstore.pull(fs, ObjectUrl(BUCKET, "landing"), folder, session_markers=True)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and not p.name.startswith(".")) == ["S1/dark_000.raw", "S1/manifest.json", "final_test/ft.csv"]
    (folder / "S3").mkdir()
    (folder / "S3" / "manifest.json").write_text("{}")
    objstore.publish(fs, folder, ObjectUrl(BUCKET, "landing"), sessions=True, delete=False)
    # a landing publish (synth) never deletes: S2, still being uploaded, stays
    assert set(fs.find(f"{BUCKET}/landing")) >= {f"{BUCKET}/landing/S2/dark_000.raw", f"{BUCKET}/landing/S3/manifest.json"}


# Columns that describe the run (when, which folder) rather than the data: the rest must agree.
RUN_COLUMNS = {"written_at", "ingested_at", "rejected_at", "scored_at", "predicted_at", "last_run",
               "source_dir", "session_dir"}


def _table(paths_root: str | Path, table: str, root_text: str) -> pl.DataFrame:
    if str(paths_root).startswith("s3://"):
        roots = resolve_roots(str(paths_root))
        with staged(roots, Stage(root_parts=(WAREHOUSE_FILE,), publish_root=False)) as paths:
            frame = run_query(paths, f"SELECT * FROM {table}")
    else:
        frame = run_query(resolve_paths(paths_root), f"SELECT * FROM {table}")
    spec = TABLES[table]
    frame = frame.drop([c for c in frame.columns if c in RUN_COLUMNS or c in spec.volatile])
    if "zarr_path" in frame.columns:
        frame = frame.with_columns(pl.col("zarr_path").str.replace(root_text, "<root>", literal=True))
    return frame.sort(frame.columns)


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_synth_pipeline_warehouse_training_set_on_s3_equal_local(s3: object, s3_endpoint: str,
                                                                  tmp_path: Path) -> None:
    fleet = ["-n", "3", "--width", "128", "--height", "96", "--span-days", "0.2", "--workers", "1", "--seed", "1"]
    local = tmp_path / "local"
    _run(["synth", *fleet, "--out", str(local / "landing")])
    _run(["synth", *fleet, "--out", f"s3://{BUCKET}/landing"])
    _run(["pipeline", "run", "--root", str(local / "data"), "--landing", str(local / "landing")])
    _run(["pipeline", "run", "--root", f"s3://{BUCKET}/data", "--landing", f"s3://{BUCKET}/landing"])

    # every table, read by a fresh reader through the published warehouse (DuckDB over s3://)
    (tmp_path / "staging").rename(tmp_path / "staging-of-the-runs")
    compared = 0
    for table in TABLES:
        remote = _table(f"s3://{BUCKET}/data", table, f"s3://{BUCKET}/data")
        here = _table(local / "data", table, str(local / "data"))
        assert remote.equals(here), table
        compared += remote.height
    assert compared > 0 and _table(f"s3://{BUCKET}/data", "module_stats", "").height == 3
    with staged(resolve_roots(f"s3://{BUCKET}/data"), Stage(root_parts=(WAREHOUSE_FILE,), publish_root=False)) as paths:
        with pytest.raises(duckdb.Error, match="disabled by configuration"):  # the read-only guards hold on s3://
            run_query(paths, f"SELECT * FROM read_parquet('s3://{BUCKET}/landing/final_test/*.parquet')")

    # the frames through zarr's fsspec store equal the local group's
    sessions = _table(local / "data", "sessions", str(local / "data"))
    first = sessions["zarr_path"][0].replace("<root>", "")
    remote_frames = _open_remote(s3_endpoint, f"s3://{BUCKET}/data{first}")["frames"]
    assert np.array_equal(remote_frames[:], zarr.open_group(f"{local / 'data'}{first}", mode="r")["frames"][:])

    # the point-in-time training set of the final-test spine, from the store's tables
    spine = tmp_path / "spine.parquet"
    labels = _table(local / "data", "final_test", str(local / "data"))
    labels.select("module_id", pl.col("tested_at").alias("label_time")).write_parquet(spine)
    _run(["features", "build-training-set", "--spine", str(spine), "--out", str(tmp_path / "s3.parquet"),
          "--root", f"s3://{BUCKET}/data"])
    _run(["features", "build-training-set", "--spine", str(spine), "--out", str(tmp_path / "local.parquet"),
          "--root", str(local / "data")])
    remote_set, local_set = pl.read_parquet(tmp_path / "s3.parquet"), pl.read_parquet(tmp_path / "local.parquet")
    assert remote_set.height == 3 and remote_set.equals(local_set)


def test_model_artifacts_go_to_the_store_and_survive_a_publish(s3: object, tmp_path: Path) -> None:
    import mlflow

    from models.tracking import connect, experiment

    fs, url = s3, ObjectUrl(BUCKET, "data")
    roots = resolve_roots(f"s3://{BUCKET}/data")
    with staged(roots, Stage()) as paths:
        client = connect(paths.root)
        exp = experiment(client, "anomaly", paths.root)
        assert client.get_experiment(exp).artifact_location == f"s3://{BUCKET}/data/mlflow/artifacts/anomaly"
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_text("threshold 0.5", "threshold.txt")
    listing = objstore.remote_listing(fs, url)
    assert any(k.startswith("mlflow/artifacts/anomaly/") and k.endswith("threshold.txt") for k in listing)
    assert "mlflow/mlflow.db" in listing  # the tracking database is published with the root, and that
    # publish (at the end of `staged`, after the artifact was logged) left the artifacts alone
    assert not (paths.root / "mlflow" / "artifacts").exists()
    listed = CliRunner().invoke(app, ["models", "list", "--root", f"s3://{BUCKET}/data"])
    assert listed.exit_code == 0, listed.output
    assert "anomaly" not in listed.output  # experiments, not registered models: an empty registry


def test_a_missing_bucket_is_a_usage_error_before_anything_is_created(s3: object, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--root", "s3://no-such-bucket/data",
                                      "--landing", f"s3://{BUCKET}/landing"])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "bucket 'no-such-bucket' does not exist" in said, result.output
    assert not (tmp_path / "staging").exists()


def _dagster_day(storage: object) -> list[str]:
    """The location's ``daily_pipeline`` for capture day 2026-03-02, then ``refresh_warehouse``,
    each a run of its own, as the daemon or a run pod executes them; returns the materialized
    asset names."""
    from dagster import DagsterInstance, Definitions, in_process_executor

    from pipelines.definitions import fleet_assets, pipeline_assets
    from pipelines.jobs import DAILY_PIPELINE, JOBS, REFRESH_WAREHOUSE
    from pipelines.partitions import CAPTURE_DAYS

    assets, fleet = pipeline_assets(), fleet_assets()
    defs = Definitions(assets=[*assets, *fleet], jobs=JOBS, resources={"storage": storage}, executor=in_process_executor)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(CAPTURE_DAYS, ["2026-03-02"])
        day = defs.resolve_job_def(DAILY_PIPELINE).execute_in_process(
            instance=instance, partition_key="2026-03-02", run_config=quiet)
        fleet_run = defs.resolve_job_def(REFRESH_WAREHOUSE).execute_in_process(instance=instance, run_config=quiet)
    return sorted(e.asset_key.to_user_string() for r in (day, fleet_run) for e in r.get_asset_materialization_events())


def test_dagster_runs_on_s3_roots_stage_and_publish_like_local(s3: object, synth_landing: Path, tmp_path: Path) -> None:
    """The deployment's resource given s3:// roots (what a run pod or the daemon gets from
    SENSORFLEET_ROOT): each run pulls, runs on local staging folders and publishes; a fresh
    reader of the store sees the tables and warehouse of the same runs on local disk."""

    fs = s3
    fs.put(str(synth_landing), f"{BUCKET}/landing", recursive=True)
    remote = _dagster_day(StorageResource(root=f"s3://{BUCKET}/data", landing=f"s3://{BUCKET}/landing"))
    local = _dagster_day(StorageResource(root=str(tmp_path / "local"), landing=str(synth_landing)))
    assert remote == local and {"module_stats", "warehouse"} <= set(remote)
    listing = objstore.remote_listing(fs, ObjectUrl(BUCKET, "data"))
    assert WAREHOUSE_FILE in listing and not any(k.startswith(("dagster_home/", "state/locks/")) for k in listing)
    assert any(k.startswith("captures/2026-03-02/") and k.endswith(".zarr/zarr.json") for k in listing)

    (tmp_path / "staging").rename(tmp_path / "staging-of-the-runs")  # the reader shares nothing with the runs
    compared = 0
    for table in TABLES:
        here = _table(tmp_path / "local", table, str(tmp_path / "local"))
        assert _table(f"s3://{BUCKET}/data", table, f"s3://{BUCKET}/data").equals(here), table
        compared += here.height
    assert compared > 0 and _table(f"s3://{BUCKET}/data", "module_stats", "").height == 3


def test_a_dagster_resource_stages_only_url_roots_and_not_a_cli_runs_folders(tmp_path: Path) -> None:
    """Local roots and a CLI run's staging folders (root_url given) pass through untouched, and
    outside a run (a sensor) a URL root is not taken for a folder."""
    from dagster import build_init_resource_context


    local = StorageResource(root=str(tmp_path / "data"))
    cli = StorageResource.for_paths(resolve_roots(f"s3://{BUCKET}/data").paths)
    for resource in (local, cli):
        with resource.yield_for_execution(build_init_resource_context()) as given:
            assert given is resource
    with pytest.raises(objstore.LocationError, match="object-store URL"):
        StorageResource(root=f"s3://{BUCKET}/data").paths()
    assert not (tmp_path / "data").exists()


def test_a_failed_dagster_run_on_s3_publishes_what_finished(s3: object) -> None:
    """The step fails after writing one partition: the teardown still publishes it, as a failed
    run on a local root leaves it."""
    from dagster import asset, materialize

    @asset
    def half_done(storage: StorageResource) -> None:
        paths = storage.paths()
        assert paths.root_url == f"s3://{BUCKET}/data" and not str(paths.root).startswith("s3:")
        (paths.tables / "t" / "capture_date=2026-03-02").mkdir(parents=True)
        (paths.tables / "t" / "capture_date=2026-03-02" / "part-0.parquet").write_bytes(b"PAR1")
        raise RuntimeError("the second partition failed")

    result = materialize([half_done], resources={"storage": StorageResource(root=f"s3://{BUCKET}/data")},
                         raise_on_error=False)
    assert not result.success
    assert list(objstore.remote_listing(s3, ObjectUrl(BUCKET, "data"))) == ["tables/t/capture_date=2026-03-02/part-0.parquet"]


def test_the_landing_sensors_watch_an_s3_landing_through_listings(s3: object, synth_landing: Path) -> None:
    """On an s3:// landing the sensors scan a view of manifests, final-test files and object
    listings (no frame is fetched): a run for the day, none on the next tick, one again when a
    frame object changes; the final-test sensor requests the refresh once."""
    from dagster import DagsterInstance, build_sensor_context

    from pipelines.partitions import capture_days
    from pipelines.sensors import build_final_test_sensor, build_landing_sensor

    fs = s3
    fs.put(str(synth_landing), f"{BUCKET}/landing", recursive=True)
    storage = StorageResource(root=f"s3://{BUCKET}/data", landing=f"s3://{BUCKET}/landing")
    landing_sensor, final_test_sensor = build_landing_sensor("daily_pipeline", capture_days), build_final_test_sensor("x")

    def tick(sensor: object, cursor: str | None) -> tuple[list[str | None], str | None]:
        with DagsterInstance.ephemeral() as instance, build_sensor_context(
                instance=instance, cursor=cursor, resources={"storage": storage}) as context:
            result = sensor.evaluate_tick(context)  # type: ignore[attr-defined]
        return [r.partition_key for r in result.run_requests], result.cursor

    days, cursor = tick(landing_sensor, None)
    assert days == ["2026-03-02"]
    assert tick(landing_sensor, cursor)[0] == []
    view = storage.watched_landing()[0]
    fetched = {p.name for p in view.glob("CM-*/*")}
    assert fetched == {"manifest.json", ".objects"} and len(list(view.glob("*/manifest.json"))) == 3
    frame = next(k for k in fs.find(f"{BUCKET}/landing") if "/frame_" in k)
    fs.pipe(frame, fs.cat(frame)[::-1])  # a station re-uploads a frame: same size, other content
    assert tick(landing_sensor, cursor)[0] == ["2026-03-02"]
    requested, labels = tick(final_test_sensor, None)
    assert len(requested) == 1 and tick(final_test_sensor, labels)[0] == []


def test_shared_runs_never_undo_what_another_published(s3: object, tmp_path: Path) -> None:
    """Two runs on two machines (staging folders a and b) of the same root, as Dagster spreads
    days over run pods: each publishes only what it changed, so neither deletes nor overwrites
    the other's objects, and a shared pull keeps what a run wrote but has not published yet."""
    fs, url = s3, ObjectUrl(BUCKET, "data")
    fs.pipe({f"{BUCKET}/data/tables/t/capture_date=2026-03-01/part-0.parquet": b"old",
             f"{BUCKET}/data/tables/fleet/part-0.parquet": b"fleet v1"})
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        objstore.pull(fs, url, folder, shared=True)
    (b / "tables/fleet/part-0.parquet").write_bytes(b"fleet v2 by b")
    (b / "tables/t/capture_date=2026-03-03").mkdir(parents=True)
    (b / "tables/t/capture_date=2026-03-03/part-0.parquet").write_bytes(b"day 3 by b")
    objstore.publish(fs, b, url, shared=True)
    (a / "tables/t/capture_date=2026-03-02").mkdir(parents=True)
    (a / "tables/t/capture_date=2026-03-02/part-0.parquet").write_bytes(b"day 2 by a")
    (a / "tables/t/capture_date=2026-03-01/part-0.parquet").unlink()  # a run removing a partition
    objstore.publish(fs, a, url, shared=True)
    stored = {k: fs.cat(f"{BUCKET}/data/{k}") for k in objstore.remote_listing(fs, url)}
    assert stored == {"tables/fleet/part-0.parquet": b"fleet v2 by b",
                      "tables/t/capture_date=2026-03-02/part-0.parquet": b"day 2 by a",
                      "tables/t/capture_date=2026-03-03/part-0.parquet": b"day 3 by b"}
    # a's next pull fetches b's objects and keeps a file a wrote since (not published yet)
    (a / "tables/t/capture_date=2026-03-04").mkdir(parents=True)
    (a / "tables/t/capture_date=2026-03-04/part-0.parquet").write_bytes(b"day 4 by a, unpublished")
    objstore.pull(fs, url, a, shared=True)
    assert (a / "tables/fleet/part-0.parquet").read_bytes() == b"fleet v2 by b"
    assert (a / "tables/t/capture_date=2026-03-03/part-0.parquet").read_bytes() == b"day 3 by b"
    assert (a / "tables/t/capture_date=2026-03-04/part-0.parquet").read_bytes() == b"day 4 by a, unpublished"
    # an unshared publish makes the store hold exactly the folder (what a CLI command's end does)
    objstore.publish(fs, b, url)
    assert "tables/t/capture_date=2026-03-02/part-0.parquet" not in objstore.remote_listing(fs, url)
