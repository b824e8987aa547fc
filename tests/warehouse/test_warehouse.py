"""The warehouse: views over every table, read-only SQL, atomic publish under open readers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from sensorfleet.cli import app
from sensorfleet.config import Paths
from sensorfleet.registry import TABLES
from sensorfleet.tables import write_partition
from sensorfleet.warehouse import ReadOnlyQueryError, build_warehouse, run_query, warehouse_path

T0 = datetime(2026, 3, 14, 9, tzinfo=UTC)


@pytest.fixture()
def paths(tmp_path: Path, table_rows) -> Paths:  # type: ignore[no-untyped-def]
    paths = Paths(root=tmp_path / "data", landing=tmp_path / "landing")
    for day, modules in (("2026-03-14", ("M1", "M2")), ("2026-03-15", ("M3",))):
        write_partition(paths.tables, "module_stats", day, table_rows("module_stats", [
            {"session_id": f"S-{m}", "module_id": m, "lot_id": "L1", "captured_at": T0, "gain_k_dn_per_e": 0.1 * (i + 1),
             "written_at": T0} for i, m in enumerate(modules)]))
    return paths


def test_one_view_per_table_with_hive_dates_and_empty_tables_bind(paths: Paths) -> None:
    built = build_warehouse(paths)
    assert built.path == warehouse_path(paths) and set(built.views) == set(TABLES)
    assert "sessions" in built.empty_views and "module_stats" not in built.empty_views
    with duckdb.connect(str(built.path), read_only=True) as con:
        rows = con.sql("SELECT capture_date, count(*) FROM module_stats GROUP BY 1 ORDER BY 1").fetchall()
        assert [(str(d), n) for d, n in rows] == [("2026-03-14", 2), ("2026-03-15", 1)]
        assert con.sql("SELECT count(*) FROM sessions").fetchall() == [(0,)]  # no files yet: empty, typed
        assert con.sql("SELECT typeof(captured_at) FROM sessions LIMIT 1").fetchall() == []
        unit = con.sql("SELECT unit FROM tables WHERE table_name = 'module_stats' AND column_name = 'quantum_efficiency'")
        assert "fraction" in unit.fetchall()[0][0]
        # views, never copies: the file holds no table
        assert con.sql("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]


def test_new_partitions_appear_without_rebuild(paths: Paths, table_rows) -> None:  # type: ignore[no-untyped-def]
    build_warehouse(paths)
    write_partition(paths.tables, "module_stats", "2026-03-16", table_rows("module_stats", [
        {"session_id": "S-M4", "module_id": "M4", "captured_at": T0, "written_at": T0}]))
    assert run_query(paths, "SELECT count(*) AS n FROM module_stats")["n"].to_list() == [4]


@pytest.mark.parametrize("statement", [
    "CREATE TABLE x AS SELECT 1",
    "CREATE TEMP TABLE x AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "INSERT INTO module_stats SELECT * FROM module_stats",
    "DROP VIEW module_stats",
    "COPY (SELECT 1) TO '{root}/tables/out.csv'",
    "COPY module_stats TO '{root}/out.parquet'",
    "ATTACH '{root}/other.duckdb' AS o",
    "EXPORT DATABASE '{root}/export'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "SET allowed_directories = ['/']",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "SELECT 1; CREATE TABLE y AS SELECT 1",
])
def test_sql_refuses_every_write(paths: Paths, statement: str) -> None:
    before = sorted(p for p in paths.root.rglob("*"))
    with pytest.raises(ReadOnlyQueryError, match="not allowed: the warehouse is read-only"):
        run_query(paths, statement.format(root=paths.root))
    after = sorted(p for p in paths.root.rglob("*"))
    assert [p for p in after if p not in before] in ([], [warehouse_path(paths)])


def test_sql_reads_nothing_outside_the_tables(paths: Paths) -> None:
    with pytest.raises(duckdb.Error, match="Permission"):
        run_query(paths, "SELECT * FROM read_csv('/etc/hostname')")


def test_sql_cli_formats_errors_and_stdin(paths: Paths, tmp_path: Path) -> None:
    runner = CliRunner()
    root = ["--root", str(paths.root)]
    table = runner.invoke(app, ["sql", *root, "SELECT module_id, gain_k_dn_per_e FROM module_stats ORDER BY 1"])
    assert table.exit_code == 0, table.output
    assert "M1" in table.output and "gain_k_dn_per_e" in table.output and "|" in table.output
    csv = runner.invoke(app, ["sql", *root, "--format", "csv", "SELECT module_id FROM module_stats ORDER BY 1"])
    assert csv.output.splitlines() == ["module_id", "M1", "M2", "M3"]
    js = runner.invoke(app, ["sql", *root, "--format", "json"], input="SELECT module_id FROM module_stats ORDER BY 1 LIMIT 1")
    assert js.output.strip() == '{"module_id":"M1"}'
    out = tmp_path / "r.parquet"
    pq = runner.invoke(app, ["sql", *root, "--format", "parquet", "--output", str(out), "SELECT * FROM tables"])
    assert pq.exit_code == 0 and out.stat().st_size > 0
    bad = runner.invoke(app, ["sql", *root, "SELECT nope FROM module_stats"])
    assert bad.exit_code == 1 and "nope" in bad.output
    refused = runner.invoke(app, ["sql", *root, "DROP VIEW tables"])
    assert refused.exit_code == 1 and "read-only" in refused.output


def test_open_reader_never_blocks_a_build(paths: Paths) -> None:
    """An analyst holding the file open read-only in another process: builds still succeed, and
    the analyst keeps querying the old file until reconnecting."""
    build_warehouse(paths)
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(warehouse_path(paths))!r}, read_only=True)
            print(con.sql("SELECT count(*) FROM module_stats").fetchall()[0][0], flush=True)
            sys.stdin.readline()
            print(con.sql("SELECT count(*) FROM module_stats").fetchall()[0][0], flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "3"
        for _ in range(3):
            build_warehouse(paths)  # would raise "Could not set lock on file" if written in place
        assert run_query(paths, "SELECT count(*) AS n FROM module_stats")["n"].to_list() == [3]
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "3"
    finally:
        reader.kill()
        reader.wait()
