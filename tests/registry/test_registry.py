"""The registry is the one declaration: docs, parquet metadata and writers derive from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from sensorfleet.registry import MODULE_STATS, SESSIONS, TABLES, get_table
from sensorfleet.registry.docs import render_markdown
from sensorfleet.tables import publish_partition, read_partition

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
T0 = datetime(2026, 3, 14, 9, tzinfo=UTC)


def test_docs_tables_md_is_generated_from_the_registry() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/tables.md drifted from sensorfleet/registry: run "
        "`python -m sensorfleet.registry.docs > docs/tables.md`"
    )


def test_every_table_has_both_time_axes_and_meanings() -> None:
    for table in TABLES.values():
        names = table.column_names
        assert table.event_time in names and "written_at" in names, table.name
        for column in table.columns:
            assert column.description, (table.name, column.name)


def test_units_where_a_reader_would_guess() -> None:
    assert "fraction" in MODULE_STATS.column("quantum_efficiency").unit
    assert MODULE_STATS.column("gain_k_dn_per_e").symbol == "K"
    with pytest.raises(KeyError, match="columns: session_id"):
        MODULE_STATS.column("gain")
    with pytest.raises(KeyError, match="registered tables: sessions"):
        get_table("nope")


def _sessions(n: int, written_at: datetime, temperature: float = 25.0) -> pl.DataFrame:
    rows = []
    for i in range(n):
        row: dict[str, object] = dict.fromkeys(SESSIONS.column_names)
        row.update(session_id=f"S{i}", module_id=f"M{i}", captured_at=T0, temperature_c=temperature,
                   status="ingested", last_run="ingested", written_at=written_at)
        rows.append(row)
    return pl.DataFrame(rows, schema=SESSIONS.polars_schema())


def test_writer_enforces_the_registry_and_stores_meanings(tmp_path: Path) -> None:
    df = _sessions(2, T0)
    with pytest.raises(ValueError, match=r"undeclared columns \['surprise'\]"):
        publish_partition(tmp_path, "sessions", "2026-03-14", df.with_columns(surprise=pl.lit(1)))
    with pytest.raises(ValueError, match=r"missing columns \['written_at'\]"):
        publish_partition(tmp_path, "sessions", "2026-03-14", df.drop("written_at"))
    out = publish_partition(tmp_path, "sessions", "2026-03-14", df.select(reversed(df.columns)))
    schema = pq.read_schema(out.path)
    assert schema.names == SESSIONS.column_names  # declaration order, whatever the writer's
    meta = schema.field("temperature_c").metadata
    assert meta[b"unit"] == b"degC" and b"die temperature" in meta[b"description"]


def test_written_at_changes_only_with_content(tmp_path: Path) -> None:
    first = publish_partition(tmp_path, "sessions", "2026-03-14", _sessions(3, T0))
    assert first.rewritten
    mtime = first.path.stat().st_mtime_ns
    later = T0 + timedelta(hours=1)
    # same content, new run: nothing rewritten, the stored written_at kept
    again = publish_partition(tmp_path, "sessions", "2026-03-14", _sessions(3, later).with_columns(last_run=pl.lit("unchanged")))
    assert not again.rewritten and again.path.stat().st_mtime_ns == mtime
    # one row corrected: only it gets the new written_at; the others keep theirs
    corrected = _sessions(3, later).with_columns(
        temperature_c=pl.when(pl.col("session_id") == "S1").then(30.0).otherwise(25.0))
    assert publish_partition(tmp_path, "sessions", "2026-03-14", corrected).rewritten
    back = read_partition(tmp_path, "sessions", "2026-03-14").sort("session_id")
    assert back["written_at"].to_list() == [T0, later, T0]
    assert back["last_run"].to_list() == ["ingested"] * 3


def test_unchanged_content_in_the_same_order_is_not_rewritten(tmp_path: Path) -> None:
    """The same rows in the same order (compared row by row, NaN and null included) leave the stored
    partition alone; in another order (matched by key) it is rewritten with every stored
    ``written_at`` kept; a NaN, a null or a row more in the new rows is a change."""
    stored = _sessions(3, T0).with_columns(temperature_c=pl.Series([float("nan"), None, 25.0]))
    first = publish_partition(tmp_path, "sessions", "2026-03-14", stored)
    mtime = first.path.stat().st_mtime_ns
    later = _sessions(3, T0 + timedelta(hours=1)).with_columns(temperature_c=stored["temperature_c"])
    assert not publish_partition(tmp_path, "sessions", "2026-03-14", later).rewritten
    assert first.path.stat().st_mtime_ns == mtime
    assert publish_partition(tmp_path, "sessions", "2026-03-14", later.reverse()).rewritten
    back = read_partition(tmp_path, "sessions", "2026-03-14")
    assert back["session_id"].to_list() == ["S2", "S1", "S0"] and back["written_at"].to_list() == [T0] * 3
    for changed in (later.with_columns(temperature_c=pl.Series([25.0, None, 25.0])),
                    later.with_columns(temperature_c=pl.Series([float("nan"), 25.0, 25.0])),
                    pl.concat([later, _sessions(4, T0)[3:]])):
        assert publish_partition(tmp_path, "sessions", "2026-03-14", changed).rewritten
        publish_partition(tmp_path, "sessions", "2026-03-14", stored)  # back to the stored rows


def test_an_unchanged_partition_is_known_from_its_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition carries its content's fingerprint: a rerun with the same content (a new
    ``written_at``) is left alone without reading the stored rows; changed content, another row
    order or a file without the fingerprint are compared row by row as before."""
    import sensorfleet.tables as tables

    stored = _sessions(3, T0).with_columns(temperature_c=pl.Series([float("nan"), None, 25.0]))
    first = publish_partition(tmp_path, "sessions", "2026-03-14", stored)
    fingerprint = tables.stored_fingerprint(first.path)
    assert fingerprint is not None and fingerprint == tables.content_fingerprint(SESSIONS, SESSIONS.conform(stored))
    later = _sessions(3, T0 + timedelta(hours=1)).with_columns(temperature_c=stored["temperature_c"])
    assert tables.content_fingerprint(SESSIONS, SESSIONS.conform(later)) == fingerprint  # written_at is not content
    for changed in (later.with_columns(temperature_c=pl.Series([float("nan"), None, 26.0])), later.reverse(),
                    later.head(2)):
        assert tables.content_fingerprint(SESSIONS, SESSIONS.conform(changed)) != fingerprint
    with monkeypatch.context() as m:
        m.setattr(tables.pl, "read_parquet", lambda *a, **k: pytest.fail("the stored rows were read"))
        assert not publish_partition(tmp_path, "sessions", "2026-03-14", later).rewritten
    pq.write_table(pq.read_table(first.path).replace_schema_metadata({}), first.path)  # as an older writer left it
    assert tables.stored_fingerprint(first.path) is None
    assert not publish_partition(tmp_path, "sessions", "2026-03-14", later).rewritten  # compared row by row
    again = publish_partition(tmp_path, "sessions", "2026-03-14", later.with_columns(temperature_c=pl.lit(20.0)))
    assert again.rewritten and tables.stored_fingerprint(again.path) != fingerprint
    assert read_partition(tmp_path, "sessions", "2026-03-14")["temperature_c"].to_list() == [20.0] * 3
