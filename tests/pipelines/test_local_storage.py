"""The local instance's SQLite storage (pipelines/local_storage.py): the same files as Dagster's
own ``storage: sqlite:``, readable by it in both directions, commits seen by other processes at
once, and no disk flush per event."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize
from dagster._core.storage.event_log.base import EventLogCursor

from pipelines.instance_config import install_instance_config
from pipelines.local_storage import (
    OPEN_SHARDS,
    LocalSqliteEventLogStorage,
    LocalSqliteRunStorage,
    LocalSqliteStorage,
)

SQLITE_YAML = "storage:\n  sqlite:\n    base_dir: {home}\n"


@asset
def probe() -> int:
    return 1


def _materialize_n(instance: DagsterInstance, n: int) -> list[str]:
    return [materialize([probe], instance=instance).run_id for _ in range(n)]


def _instance(home: Path, yaml_text: str | None = None) -> DagsterInstance:
    if yaml_text is None:
        install_instance_config(home)  # the repository's dagster.yaml: the local storage
    else:
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(yaml_text)
    return DagsterInstance.from_config(str(home))


def test_repository_yaml_uses_the_local_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _instance(tmp_path) as instance:
        assert isinstance(instance.get_ref().storage_data.rehydrate(as_type=LocalSqliteStorage), LocalSqliteStorage)
        run_ids = _materialize_n(instance, 2)
        assert instance.get_run_by_id(run_ids[-1]).is_success
    assert (tmp_path / "history" / "runs" / f"{run_ids[0]}.db").is_file()  # Dagster's own layout


def test_same_files_as_dagsters_sqlite_storage_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _instance(tmp_path, SQLITE_YAML.format(home=tmp_path)) as plain:
        before = _materialize_n(plain, 1)
    with _instance(tmp_path) as local:  # reads what Dagster's storage wrote, and adds to it
        assert local.get_latest_materialization_event(AssetKey("probe")).run_id == before[0]
        after = _materialize_n(local, 1)
    with _instance(tmp_path, SQLITE_YAML.format(home=tmp_path)) as plain:
        assert plain.get_latest_materialization_event(AssetKey("probe")).run_id == after[0]
        assert len(plain.fetch_materializations(AssetKey("probe"), limit=10).records) == 2


def test_commits_are_seen_by_another_process_while_the_writer_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    events_dir = tmp_path / "history" / "runs"
    with _instance(tmp_path) as instance:  # its connections stay open: commits sit in the -wal
        run_id = _materialize_n(instance, 1)[0]
        count = len(instance.all_logs(run_id))
        assert count > 0 and (events_dir / f"{run_id}.db-wal").is_file()
        code = textwrap.dedent(f"""
            from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
            storage = SqliteEventLogStorage({str(events_dir)!r})
            print(len(storage.get_records_for_run({run_id!r}).records))
        """)
        seen = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        assert int(seen.stdout.strip().splitlines()[-1]) == count


def test_connections_are_pooled_bounded_and_unflushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _instance(tmp_path) as instance:
        storage = instance.event_log_storage
        inner = getattr(storage, "_storage", storage)  # Dagster wraps a custom storage's parts
        events = inner.event_log_storage if isinstance(inner, LocalSqliteStorage) else inner
        assert isinstance(events, LocalSqliteEventLogStorage)
        _materialize_n(instance, OPEN_SHARDS + 3)
        assert len(events._engines) <= OPEN_SHARDS  # noqa: SLF001 - the bound is the behaviour
        with events.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # disposed: every connection closed, so the write-ahead logs were checkpointed away
    assert not list((tmp_path / "history" / "runs").glob("*.db-wal"))
    with sqlite3.connect(tmp_path / "history" / "runs" / "index.db") as db:
        assert db.execute("SELECT count(*) FROM event_logs").fetchone()[0] > 0


def test_a_run_watcher_is_woken_by_commits_before_a_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The webserver's live run view: another process's storage watching the run's files."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    seen: list[str] = []
    with _instance(tmp_path) as instance:
        run = instance.get_run_by_id(_materialize_n(instance, 1)[0])
        assert run is not None
        watcher = LocalSqliteEventLogStorage(str(tmp_path / "history" / "runs"))
        cursor = str(EventLogCursor.from_storage_id(max(r.storage_id for r in instance.get_records_for_run(run.run_id).records)))
        watcher.watch(run.run_id, cursor, lambda entry, _cursor: seen.append(entry.message))
        try:
            instance.report_engine_event("written after the watch began", run)
            deadline = time.monotonic() + 10
            while "written after the watch began" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            watcher.dispose()
    assert "written after the watch began" in seen


def test_wipe_closes_the_open_databases_before_deleting_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _instance(tmp_path) as instance:
        _materialize_n(instance, 2)
        instance.wipe()
        assert instance.get_latest_materialization_event(AssetKey("probe")) is None
        run_id = _materialize_n(instance, 1)[0]  # written to a new file, not to a deleted one
        assert instance.get_latest_materialization_event(AssetKey("probe")).run_id == run_id
    assert (tmp_path / "history" / "runs" / f"{run_id}.db").is_file()


def _schema(db: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, ...]], str]:
    con = sqlite3.connect(db)
    try:
        objects = sorted(con.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str)
        return (objects, con.execute("SELECT version_num FROM alembic_version").fetchall(),
                con.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        con.close()


def test_a_new_run_database_has_dagsters_schema_and_revision(tmp_path: Path) -> None:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    theirs, ours = SqliteEventLogStorage(str(tmp_path / "theirs")), LocalSqliteEventLogStorage(str(tmp_path / "ours"))
    with theirs.run_connection("r1"), ours.run_connection("r1"):
        pass
    ours.dispose()
    mine = _schema(tmp_path / "ours" / "r1.db")
    assert mine == _schema(tmp_path / "theirs" / "r1.db")
    assert mine[1] and mine[1][0][0]  # stamped with the head revision, as Dagster's own
    assert mine[2] == "wal"
    reopened = LocalSqliteEventLogStorage(str(tmp_path / "ours"))
    with reopened.run_connection("r1"):  # an existing database is left as it is
        pass
    reopened.dispose()
    assert _schema(tmp_path / "ours" / "r1.db") == mine


def test_has_table_remembers_a_yes_until_the_wipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    storage = LocalSqliteEventLogStorage(str(tmp_path))
    asked: list[str] = []
    dagsters = SqliteEventLogStorage.has_table

    def counting(self: SqliteEventLogStorage, name: str) -> bool:
        asked.append(name)
        return dagsters(self, name)

    monkeypatch.setattr(SqliteEventLogStorage, "has_table", counting)
    assert storage.has_table("asset_check_executions") and storage.has_table("asset_check_executions")
    assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
    assert asked == ["asset_check_executions", "no_such_table", "no_such_table"]  # a no is asked again
    storage.wipe()
    assert storage.has_table("asset_check_executions")
    assert asked[-1] == "asset_check_executions"  # asked afresh after the wipe
    storage.dispose()


def test_the_run_storage_is_pooled_unflushed_and_seen_by_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _instance(tmp_path) as instance:
        inner = getattr(instance.run_storage, "_storage", instance.run_storage)
        runs = inner.run_storage if isinstance(inner, LocalSqliteStorage) else inner
        assert isinstance(runs, LocalSqliteRunStorage)
        run_ids = _materialize_n(instance, 3)
        with runs.connect() as a, runs.connect() as b:  # one kept connection, plus overflow
            assert a.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert b.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        code = textwrap.dedent(f"""
            from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
            storage = SqliteRunStorage.from_local({str(tmp_path / "history")!r})
            print(sorted(r.run_id for r in storage.get_runs() if r.is_success))
        """)
        seen = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        assert seen.stdout.strip().splitlines()[-1] == str(sorted(run_ids))  # while this one is open


def test_the_run_storage_remembers_schema_answers_until_the_wipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

    asked: list[str] = []
    dagsters = SqlRunStorage.has_run_stats_index_cols

    def counting(self: SqlRunStorage) -> bool:
        asked.append("run_stats")
        return dagsters(self)

    monkeypatch.setattr(SqlRunStorage, "has_run_stats_index_cols", counting)
    storage = LocalSqliteRunStorage.from_local(str(tmp_path))  # its set-up may ask once
    assert storage.has_run_stats_index_cols() and storage.has_run_stats_index_cols()
    assert asked == ["run_stats"]
    assert storage.has_backfill_id_column() and storage.has_backfill_id_column()
    storage.wipe()
    assert storage.has_run_stats_index_cols()
    assert asked == ["run_stats", "run_stats"]  # asked afresh after the wipe
    storage.dispose()
