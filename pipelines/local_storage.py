"""The local Dagster instance's SQLite storage, without a disk flush per event.

Dagster's own SQLite event log opens a new engine and connection for every event it stores
(``NullPool``), commits it with ``synchronous=FULL`` and closes the connection, which, being the
last one, checkpoints the write-ahead log into the database file: two or three ``fsync`` calls
per event, ~100 events per capture-day run. On this project's 2-core machine that was 40-60 % of
a demo day's wall time, and far more while other work used the disk (docs/architecture.md,
"The local instance's storage").

:class:`LocalSqliteStorage` keeps Dagster's layout and schema (``storage: sqlite:`` and this class
read and write the same files, in either direction) and changes only how the event log connects:

- one pooled connection per database file (run shard or index), kept open while the process
  writes to it and closed when :data:`OPEN_SHARDS` newer ones are in use or the storage is
  disposed, so the write-ahead log is checkpointed by SQLite's automatic checkpoint (every
  1,000 pages) instead of after every event;
- ``PRAGMA synchronous=NORMAL``, the setting SQLite recommends with a write-ahead log: a commit
  is not flushed to disk by itself; the database stays consistent through a crash of the process
  or of the machine; a power cut may lose the last commits (the runs of that moment), never
  corrupt older ones.

The run storage (:class:`LocalSqliteRunStorage`) connects the same way: Dagster's opens a new
engine and connection for every query and commit (run creation, each run event, each status),
and asks SQLite for the runs table's columns (an inspector query) before it writes a run event.
The schedule storage is Dagster's own. Readers in other processes (the webserver, the
daemon) see every commit at once: a write-ahead log is read by every connection. The webserver's
live view of a run watches its database file for changes; it also watches the ``-wal`` file here,
where commits land before a checkpoint.

A production instance is Postgres (deploy/dagster.yaml); this class is for the instance under
``<root>/dagster_home`` that ``make dev`` and the command line use.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.event_api import EventHandlerFn
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import _alembic_lock, create_engine, get_alembic_config, safe_commit
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import QueuePool
from watchdog.events import FileSystemEvent
from watchdog.observers import Observer

OPEN_SHARDS = 8
"""Databases kept open at once by one process (the run being written, the index, recent runs)."""

_BUSY_TIMEOUT_S = 30.0  # as Dagster's own SQLite storage: wait this long for another writer's lock


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection: commits are not flushed one by one (write-ahead log)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _Yes:
    """Schema questions answered yes (does this table or column exist, is this index built),
    remembered: what is there stays until a wipe or a migration, which :meth:`forget`. A no is
    asked again each time (a migration may be under way)."""

    def __init__(self) -> None:
        self._questions: set[str] = set()

    def ask(self, question: str, answer: Callable[[], bool]) -> bool:
        if question in self._questions:
            return True
        found = bool(answer())
        if found:
            self._questions.add(question)
        return found

    def forget(self) -> None:
        self._questions.clear()


@functools.cache
def _event_log_migrations() -> ScriptDirectory:
    """Dagster's event-log migration scripts, read once per process (Dagster reads them twice per
    new run database: ~60 ms)."""
    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's run-log watcher, also woken by the run database's ``-wal`` file, where this
    storage's commits land before a checkpoint."""

    def __init__(self, storage: SqliteEventLogStorage, run_id: str, callback: EventHandlerFn,
                 cursor: str | None) -> None:
        super().__init__(storage, run_id, callback, cursor)
        self._paths = {self._log_path, f"{self._log_path}-wal"}
        self._patterns = list(self._paths)  # watchdog matches these exact paths

    def on_modified(self, event: FileSystemEvent) -> None:
        if os.fsdecode(event.src_path) in self._paths:
            self._process_log()


class LocalSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (same files, same schema) with pooled connections and
    ``synchronous=NORMAL``: see the module's docstring."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables = _Yes()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has ``table_name``. Dagster asks before storing each asset
        and check event, and answers with a new engine and connection each time; a table, once
        there, stays until :meth:`wipe`, so a yes is remembered."""
        return self._tables.ask(table_name, lambda: super(LocalSqliteEventLogStorage, self).has_table(table_name))

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's schema set-up, with the migration scripts read once per process for a new
        run database and its write-ahead log switched on before its tables are made: the same
        tables, journal mode and stamped revision as Dagster's own, which sets up the index and
        takes over whenever anything is unexpected (a concurrent set-up)."""
        if for_index_shard:
            super()._initdb(engine, for_index_shard=True)
            return
        try:
            with _alembic_lock, engine.connect() as connection:
                migrations = MigrationContext.configure(connection)
                if migrations.get_current_revision() is not None:
                    return
                # the write-ahead log first (Dagster sets it after the tables): each CREATE then
                # commits into the log without a flush, instead of a rollback journal's fsyncs
                connection.execute(text("PRAGMA journal_mode=WAL;"))
                SqlEventLogStorageMetadata.create_all(engine)
                migrations.stamp(_event_log_migrations(), "head")
                safe_commit(connection)
        except (DatabaseError, sqlite3.DatabaseError):
            super()._initdb(engine)

    def _engine(self, shard: str) -> Engine:
        """The open engine of ``shard``'s database (created, and its schema made, on first use);
        the least recently used one is closed past :data:`OPEN_SHARDS`. Called under the lock."""
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = _pooled_engine(self.conn_string_for_shard(shard))
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_SHARDS:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        observer: Any = self._obs  # Dagster's attribute, declared as None
        if observer is None:
            observer = Observer()
            observer.start()
            self._obs = observer
        watchdog = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, observer.schedule(watchdog, self._base_dir, recursive=True))

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                _, engine = self._engines.popitem(last=False)
                engine.dispose()

    def wipe(self) -> None:
        self._close_all()  # the files are deleted: no connection may go on writing to them
        self._tables.forget()
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()


def _pooled_engine(conn_string: str) -> Engine:
    """One SQLite database's engine for a storage that keeps it open: one pooled connection (two
    more while Dagster's schema set-up, which opens a second one, or another thread needs them),
    usable from any thread (one at a time: the pool hands a connection to one thread),
    ``synchronous=NORMAL``."""
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=2,
        connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _pragmas)
    return engine


class LocalSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (same file, same schema) with one pooled connection and
    ``synchronous=NORMAL`` instead of a new engine per query and a flushed commit per run event;
    the schema questions Dagster asks before each write (does the runs table have the run-stats
    columns, is the partitions index built...) are answered from memory once the answer is yes,
    until :meth:`wipe` or a migration."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engine: Engine | None = None
        self._yes = _Yes()
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if self._engine is None:
            self._engine = _pooled_engine(self._conn_string)
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn

    def has_run_stats_index_cols(self) -> bool:
        return self._yes.ask("has_run_stats_index_cols", super().has_run_stats_index_cols)

    def has_bulk_actions_selector_cols(self) -> bool:
        return self._yes.ask("has_bulk_actions_selector_cols", super().has_bulk_actions_selector_cols)

    def has_backfill_id_column(self) -> bool:
        return self._yes.ask("has_backfill_id_column", super().has_backfill_id_column)

    def has_bulk_action_job_name_column(self) -> bool:
        return self._yes.ask("has_bulk_action_job_name_column", super().has_bulk_action_job_name_column)

    def has_backfill_tags_table(self) -> bool:
        return self._yes.ask("has_backfill_tags_table", super().has_backfill_tags_table)

    def has_built_index(self, migration_name: str) -> bool:
        return self._yes.ask(f"has_built_index:{migration_name}", lambda: super(LocalSqliteRunStorage, self)
                                .has_built_index(migration_name))

    def _forget(self) -> None:
        self._yes.forget()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def upgrade(self) -> None:
        self._forget()
        super().upgrade()
        self._forget()

    def migrate(self, print_fn: Any = None, force_rebuild_all: bool = False) -> None:
        self._forget()
        super().migrate(print_fn, force_rebuild_all)

    def wipe(self) -> None:
        super().wipe()
        self._forget()

    def dispose(self) -> None:
        self._forget()
        super().dispose()


class LocalSqliteStorage(DagsterSqliteStorage):
    """``storage: sqlite:``'s layout under ``base_dir`` (runs, event logs, schedules), with the
    event log of :class:`LocalSqliteEventLogStorage` and the run storage of
    :class:`LocalSqliteRunStorage`. Configured in dagster.yaml as
    ``storage: custom: {module: pipelines.local_storage, class: LocalSqliteStorage}``."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # DagsterSqliteStorage.__init__'s three storages, the run and event-log ones replaced (made
        # here rather than after it: each set-up opens and inspects its database)
        self.base_dir = base_dir
        self._run_storage = LocalSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = LocalSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data, **dict(config_value))
