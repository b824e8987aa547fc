from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from sensorfleet.tables import (
    list_partitions,
    partition_path,
    read_partition,
    read_table,
    write_partition,
)


def test_write_read_partition_round_trip(tmp_path: Path) -> None:
    df = pl.DataFrame({"session_id": ["a", "b"], "mean_dn": [1.5, 2.5]})
    path = write_partition(tmp_path, "toy", "2026-03-14", df)
    assert path == tmp_path / "toy" / "capture_date=2026-03-14" / "part-0.parquet"
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]  # no temp file left
    back = read_partition(tmp_path, "toy", "2026-03-14")
    assert back.columns == ["session_id", "mean_dn", "capture_date"]
    assert back["capture_date"].to_list() == [date(2026, 3, 14)] * 2
    assert back.drop("capture_date").equals(df)


def test_rewrite_replaces_the_partition_and_keeps_others(tmp_path: Path) -> None:
    write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [1, 2, 3]}))
    write_partition(tmp_path, "t", "2026-03-15", pl.DataFrame({"x": [10]}))
    write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [4]}))
    table = read_table(tmp_path, "t").sort("x")
    assert table["x"].to_list() == [4, 10]
    assert table["capture_date"].to_list() == [date(2026, 3, 14), date(2026, 3, 15)]
    assert list_partitions(tmp_path, "t") == ["2026-03-14", "2026-03-15"]


def test_empty_frame_writes_a_file_with_its_schema(tmp_path: Path) -> None:
    write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [1]}))
    path = write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame(schema={"x": pl.Int64, "y": pl.String}))
    assert path.exists()
    back = read_partition(tmp_path, "t", "2026-03-14")
    assert back.height == 0
    assert back.schema["y"] == pl.String


def test_read_table_unions_columns_and_handles_missing_table(tmp_path: Path) -> None:
    assert read_table(tmp_path, "nothing").height == 0
    assert read_partition(tmp_path, "nothing", "2026-01-01").height == 0
    write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [1]}))
    write_partition(tmp_path, "t", "2026-03-15", pl.DataFrame({"x": [2], "y": ["new"]}))
    table = read_table(tmp_path, "t").sort("x")
    assert table["y"].to_list() == [None, "new"]


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        partition_path(tmp_path, "t", "14-03-2026")
    with pytest.raises(ValueError, match="lower_snake_case"):
        partition_path(tmp_path, "../x", "2026-03-14")
    with pytest.raises(ValueError, match="partition key"):
        write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"capture_date": ["x"]}))


def test_failed_write_leaves_old_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [1]}))

    def boom(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        target = args[0]
        if hasattr(target, "write"):  # the writer may hand a buffer, not a path
            target.write(b"half a parquet file")  # type: ignore[union-attr]
        else:
            Path(str(target)).write_bytes(b"half a parquet file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        write_partition(tmp_path, "t", "2026-03-14", pl.DataFrame({"x": [2]}))
    monkeypatch.undo()
    assert read_partition(tmp_path, "t", "2026-03-14")["x"].to_list() == [1]
    assert len(list((tmp_path / "t" / "capture_date=2026-03-14").iterdir())) == 1


def test_sweep_removes_only_stale_temporaries_of_killed_writers(tmp_path: Path) -> None:
    import os
    import time

    from sensorfleet.tables import sweep_stale_temporaries

    hex32 = "0123456789abcdef" * 2
    stale_dir = tmp_path / f".S1.zarr.{hex32}.tmp"
    stale_old = tmp_path / f".S2.zarr.{hex32}.old"
    stale_file = tmp_path / f".part-0.parquet.{hex32}.tmp"
    fresh_dir = tmp_path / f".S3.zarr.{'f' * 32}.tmp"  # a writer still at work
    published = tmp_path / "S1.zarr"
    other_hidden = tmp_path / ".keep.tmp"  # not our naming: never touched
    for d in (stale_dir, stale_old, fresh_dir, published):
        d.mkdir()
        (d / "zarr.json").write_text("{}")
    stale_file.write_bytes(b"half")
    other_hidden.write_bytes(b"x")
    old = time.time() - 2 * 3600
    for p in (stale_dir, stale_old, stale_file, other_hidden, published):
        os.utime(p, (old, old))

    removed = sweep_stale_temporaries(tmp_path)

    assert sorted(p.name for p in removed) == sorted([stale_dir.name, stale_old.name, stale_file.name])
    assert not stale_dir.exists() and not stale_old.exists() and not stale_file.exists()
    assert fresh_dir.exists() and published.exists() and other_hidden.exists()
    assert sweep_stale_temporaries(tmp_path / "missing") == []


def test_write_partition_sweeps_stale_temporaries_beside_it(tmp_path: Path) -> None:
    import os
    import time

    first = write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [1]}))
    leftover = first.parent / f".part-0.parquet.{'a' * 32}.tmp"
    leftover.write_bytes(b"half-written by a killed run")
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [2]}))
    assert not leftover.exists()
    assert read_partition(tmp_path, "t", "2026-03-01")["a"].to_list() == [2]


def test_characterize_day_sweeps_maps_a_killed_run_left(tmp_path: Path) -> None:
    import os
    import time

    from sensorfleet.config import resolve_paths
    from sensorfleet.emva import characterize_day

    paths = resolve_paths(tmp_path / "data")
    leftover = paths.maps / "2026-03-01" / f".S1.zarr.{'b' * 32}.tmp"
    leftover.mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    characterize_day(paths, "2026-03-01", workers=1)
    assert not leftover.exists()


def test_an_unreadable_stored_partition_is_named_and_left_alone(tmp_path: Path) -> None:
    from sensorfleet.registry import get_table
    from sensorfleet.tables import (
        UnreadablePartition,
        partition_path,
        publish_partition,
        read_partition,
    )

    target = partition_path(tmp_path, "module_optics", "2026-03-02", "part-0")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(UnreadablePartition, match=f"{target}: cannot read this stored partition"):
        publish_partition(tmp_path, "module_optics", "2026-03-02", get_table("module_optics").empty())
    with pytest.raises(UnreadablePartition, match="move it aside"):
        read_partition(tmp_path, "module_optics", "2026-03-02")
    assert target.read_bytes() == b"PAR1 not a parquet file"  # nothing rewritten or removed
