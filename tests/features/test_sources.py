"""features.sources.table_relation: DuckDB lines up the columns of files written under different
registry versions (union_by_name), and is spared that schema pass when the files agree."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from sensorfleet.features.sources import table_relation


def _write(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def test_files_of_one_schema_are_read_without_the_union_pass(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"module_stats/capture_date=2026-03-0{d}/part-0.parquet",
                    pl.DataFrame({"module_id": [f"m{d}"], "gain_k_dn_per_e": [0.1 * d]})) for d in (1, 2)]
    relation = table_relation("module_stats", files)
    assert "union_by_name" not in relation
    rows = duckdb.sql(f"SELECT module_id, gain_k_dn_per_e FROM {relation} ORDER BY module_id").fetchall()
    assert rows == [("m1", 0.1), ("m2", 0.2)]


def test_files_of_an_evolved_table_are_lined_up_by_column_name(tmp_path: Path) -> None:
    old = _write(tmp_path / "module_stats/capture_date=2026-03-01/part-0.parquet",
                 pl.DataFrame({"module_id": ["m1"], "gain_k_dn_per_e": [0.1]}))
    new = _write(tmp_path / "module_stats/capture_date=2026-03-02/part-0.parquet",  # a column added, order changed
                 pl.DataFrame({"read_noise_e": [2.5], "module_id": ["m2"], "gain_k_dn_per_e": [0.2]}))
    relation = table_relation("module_stats", [old, new])
    assert "union_by_name = true" in relation
    rows = duckdb.sql(f"SELECT module_id, gain_k_dn_per_e, read_noise_e FROM {relation} ORDER BY module_id").fetchall()
    assert rows == [("m1", 0.1, None), ("m2", 0.2, 2.5)]


def test_a_rewritten_file_is_looked_at_again(tmp_path: Path) -> None:
    first = _write(tmp_path / "module_stats/capture_date=2026-03-01/part-0.parquet",
                   pl.DataFrame({"module_id": ["m1"], "gain_k_dn_per_e": [0.1]}))
    second = _write(tmp_path / "module_stats/capture_date=2026-03-02/part-0.parquet",
                    pl.DataFrame({"module_id": ["m2"], "gain_k_dn_per_e": [0.2]}))
    assert "union_by_name" not in table_relation("module_stats", [first, second])
    _write(second, pl.DataFrame({"module_id": ["m2"], "gain_k_dn_per_e": [0.2], "read_noise_e": [2.5]}))
    assert "union_by_name = true" in table_relation("module_stats", [first, second])
