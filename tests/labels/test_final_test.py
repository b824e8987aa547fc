"""Final-test labels: every retest kept, bad rows rejected with file and row, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sensorfleet.config import Paths
from sensorfleet.labels import ingest_final_test
from sensorfleet.tables import read_table, write_partition

T0 = datetime(2026, 3, 14, 9, tzinfo=UTC)
GOOD = """module_id,tested_at,passed,fail_bin,station_id
M1,2026-03-16T10:00:00+00:00,false,dark_current,FT-1
M1,2026-03-17T08:00:00Z,true,,FT-2
M2,2026-03-16T11:30:00+01:00,TRUE,,FT-1
M9,2026-03-16T12:00:00+00:00,true,,FT-1
M2,2026-03-13T12:00:00+00:00,true,,FT-1
M1,2026-03-16T13:00:00+00:00,maybe,,FT-1
M1,2026-03-16 13:00:00,true,,FT-1
"""


@pytest.fixture()
def paths(tmp_path: Path, table_rows) -> Paths:  # type: ignore[no-untyped-def]
    paths = Paths(root=tmp_path / "data", landing=tmp_path / "landing")
    write_partition(paths.tables, "sessions", "2026-03-14", table_rows("sessions", [
        {"session_id": f"S-{m}", "module_id": m, "captured_at": T0, "status": "ingested", "written_at": T0}
        for m in ("M1", "M2")]))
    folder = paths.landing / "final_test"
    folder.mkdir(parents=True)
    (folder / "a_station.csv").write_text(GOOD)
    pl.DataFrame({"module_id": ["M1"], "tested_at": [datetime(2026, 3, 16, 10, tzinfo=UTC)], "passed": [True]}).write_parquet(
        folder / "b_resend.parquet")  # a duplicate of a_station.csv row 1
    return paths


def _landing_state(paths: Paths) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(paths.landing.rglob("*")) if p.is_file()}


def test_rows_retests_and_rejections(paths: Paths) -> None:
    landing = _landing_state(paths)
    report = ingest_final_test(paths)
    assert report.files_read == ("a_station.csv", "b_resend.parquet") and report.rows == 3 and report.rejected == 5
    table = read_table(paths.tables, "final_test").sort("module_id", "tested_at")
    assert table["module_id"].to_list() == ["M1", "M1", "M2"]
    assert table["attempt"].to_list() == [1, 2, 1]  # the retest is kept, with its time
    assert table["passed"].to_list() == [False, True, True]
    assert table["fail_bin"].to_list() == ["dark_current", None, None]
    assert table["tested_at"][2] == datetime(2026, 3, 16, 10, 30, tzinfo=UTC)  # zone honoured
    assert [str(d) for d in table["test_date"].unique().sort()] == ["2026-03-16", "2026-03-17"]
    rejections = read_table(paths.tables, "rejections").sort("file", "row_number")
    got = [(r["file"], r["row_number"], r["reason"].split(":")[0]) for r in rejections.iter_rows(named=True)]
    assert got == [
        ("a_station.csv", 4, "module_id"),  # unknown module
        ("a_station.csv", 5, "tested_at"),  # before the module's first capture
        ("a_station.csv", 6, "passed"),  # wrong type
        ("a_station.csv", 7, "tested_at"),  # no zone
        ("b_resend.parquet", 1, "duplicate"),
    ]
    assert "unknown module M9" in rejections["reason"][0]
    assert "a_station.csv row 1" in rejections["reason"][4]
    assert set(rejections["source"]) == {"final_test"}
    assert _landing_state(paths) == landing  # nothing in the landing modified


def test_idempotent_and_incremental(paths: Paths) -> None:
    ingest_final_test(paths)
    files = {p: p.stat().st_mtime_ns for p in paths.tables.rglob("*.parquet")}
    again = ingest_final_test(paths)
    assert again.files_read == () and again.files_reused == ("a_station.csv", "b_resend.parquet")
    assert again.days_written == ()
    assert {p: p.stat().st_mtime_ns for p in paths.tables.rglob("*.parquet")} == files
    # a new file is read; the others are not
    (paths.landing / "final_test" / "c_new.csv").write_text("module_id,tested_at,passed,fail_bin\nM2,2026-03-18T09:00:00Z,false,prnu\n")
    third = ingest_final_test(paths)
    assert third.files_read == ("c_new.csv",) and third.days_written == ("2026-03-18",)
    assert read_table(paths.tables, "final_test").filter(pl.col("module_id") == "M2")["attempt"].sort().to_list() == [1, 2]
    # a removed file's rows leave the table
    (paths.landing / "final_test" / "c_new.csv").unlink()
    ingest_final_test(paths)
    assert read_table(paths.tables, "final_test").height == 3


def test_unreadable_file_is_one_rejection_and_the_rest_goes_on(paths: Paths) -> None:
    (paths.landing / "final_test" / "broken.csv").write_text("module,when\nM1,yesterday\n")
    report = ingest_final_test(paths)
    assert report.rows == 3
    reasons = read_table(paths.tables, "rejections").filter(pl.col("file") == "broken.csv")["reason"].to_list()
    assert len(reasons) == 1 and "broken.csv" in reasons[0] and "missing required column" in reasons[0]
