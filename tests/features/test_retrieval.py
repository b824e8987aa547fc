"""Point-in-time correctness of training sets, against hand-worked cases and a brute-force
Python reference on random data."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorfleet.features import FeatureService, FeatureView, Selection, Source, get_training_set
from sensorfleet.features.retrieval import plan
from sensorfleet.registry import MODULE_STATS
from tests.features.conftest import at, session, write_rows

TTL_H = 10
VIEW = FeatureView(
    name="dc", version=1, description="dark current alone", ttl=timedelta(hours=TTL_H),
    source=Source.table("module_stats", ("session_id", "module_id", "captured_at", "written_at",
                                         "dark_current_e_per_s"), ("session_id",)),
    features=(MODULE_STATS.column("dark_current_e_per_s"),),
)
SERVICE = FeatureService("dc_only", 1, "test", (Selection(VIEW),))
OUT = "dc__dark_current_e_per_s"


def spine(*rows: tuple[str, float]) -> pl.DataFrame:
    return pl.DataFrame({"module_id": [m for m, _ in rows], "label_time": [at(h) for _, h in rows],
                         "row": list(range(len(rows)))}).with_columns(pl.col("label_time").dt.replace_time_zone("UTC"))


def values(root: Path, frame: pl.DataFrame, as_of: object = None) -> list[float | None]:
    out = get_training_set(frame, SERVICE, as_of, root)  # type: ignore[arg-type]
    assert out.get_column("row").to_list() == frame.get_column("row").to_list()
    return out.get_column(OUT).to_list()


def test_late_arriving_value_is_invisible_before_it_was_written(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 1, dark_current_e_per_s=1.0),
                                          session("M1", 2, 8, dark_current_e_per_s=2.0)])
    s = spine(("M1", 3), ("M1", 9))
    assert values(tmp_path, s, at(5)) == [1.0, 1.0]  # the capture at 2 h was written at 8 h
    assert values(tmp_path, s, "label") == [1.0, 2.0]
    assert values(tmp_path, s, at(20)) == [2.0, 2.0]


def test_values_from_the_future_are_never_seen(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 5, 5, dark_current_e_per_s=1.0)])
    assert values(tmp_path, spine(("M1", 4.99), ("M1", 5)), at(100)) == [None, 1.0]


def test_correction_after_label_time_is_seen_only_with_a_later_as_of(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 1, sid="s1", dark_current_e_per_s=1.0)])
    s = spine(("M1", 3))
    assert values(tmp_path, s, at(3)) == [1.0]
    # corrected re-run at 6 h: the partition now holds only the new version of session s1
    write_rows(tmp_path, "module_stats", [session("M1", 0, 6, sid="s1", dark_current_e_per_s=1.5)])
    assert values(tmp_path, s, at(7)) == [1.5]
    assert values(tmp_path, s, "label") == [None]  # the value known at 3 h was replaced, not kept
    assert values(tmp_path, s, at(3)) == [None]


def test_ttl_expiry(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0, dark_current_e_per_s=1.0)])
    s = spine(("M1", TTL_H - 0.01), ("M1", TTL_H), ("M1", TTL_H + 1))
    assert values(tmp_path, s, at(50)) == [1.0, None, None]
    assert values(tmp_path, s, "label") == [1.0, None, None]


def test_repeated_modules_unknown_modules_and_order_are_kept(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0, dark_current_e_per_s=1.0),
                                          session("M1", 4, 4, dark_current_e_per_s=2.0),
                                          session("M2", 1, 1, dark_current_e_per_s=3.0)])
    s = spine(("M2", 2), ("M1", 5), ("M9", 5), ("M1", 1), ("M1", 5), ("M2", 0))
    assert values(tmp_path, s, at(50)) == [3.0, 2.0, None, 1.0, 2.0, None]


def test_equal_event_times_go_to_the_latest_created_time(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 1, 2, sid="a", dark_current_e_per_s=1.0),
                                          session("M1", 1, 3, sid="b", dark_current_e_per_s=2.0),
                                          session("M1", 1, 3, sid="c", dark_current_e_per_s=4.0)])
    assert values(tmp_path, spine(("M1", 5)), at(2.5)) == [1.0]
    assert values(tmp_path, spine(("M1", 5), ("M1", 2.5)), "label") == [4.0, 1.0]
    assert values(tmp_path, spine(("M1", 5)), at(9)) == [4.0]  # then the greatest key


def test_spine_without_zone_is_refused(tmp_path: Path) -> None:
    bad = spine(("M1", 1)).with_columns(pl.col("label_time").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="timestamp with zone"):
        get_training_set(bad, SERVICE, at(1), tmp_path)


def test_default_service_names_every_feature_view_and_feature(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0)])
    out = get_training_set(spine(("M1", 1)), None, None, tmp_path)
    assert out.height == 1 and out.columns[:3] == ["module_id", "label_time", "row"]
    assert {c.split("__")[0] for c in out.columns[3:]} == {
        "module_emva", "channel_emva", "module_defects", "capture_conditions", "cohort_7d", "module_optics"}
    assert "channel_emva__prnu_pct_R" in out.columns and out.get_column("module_defects__hot_pixels_per_mp")[0] == 1.0


def reference(rows: list[tuple[str, int, int, int, str, float]], spine_rows: list[tuple[str, int]],
              as_of: int | None) -> list[float | None]:
    """Brute force: the visible row with the greatest (event, created, key) inside the TTL."""
    out: list[float | None] = []
    for module, label in spine_rows:
        limit = label if as_of is None else as_of
        seen = [r for r in rows if r[0] == module and r[1] <= label and r[2] <= limit and r[1] > label - TTL_H]
        out.append(max(seen, key=lambda r: (r[1], r[2], r[4]))[5] if seen else None)
    return out


row_strategy = st.tuples(st.sampled_from(["M0", "M1", "M2"]), st.integers(0, 30), st.integers(0, 12),
                         st.floats(-1e3, 1e3, allow_nan=False))


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(row_strategy, max_size=25),
    spine_rows=st.lists(st.tuples(st.sampled_from(["M0", "M1", "M2", "M3"]), st.integers(0, 45)), min_size=1, max_size=20),
    as_of=st.one_of(st.none(), st.integers(0, 45)),
)
def test_matches_brute_force_reference(rows: list[tuple[str, int, int, float]], spine_rows: list[tuple[str, int]],
                                       as_of: int | None) -> None:
    full = [(m, e, e + d, 0, f"s{i:03d}", v) for i, (m, e, d, v) in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_rows(root, "module_stats", [session(m, e, w, sid=k, dark_current_e_per_s=v) for m, e, w, _, k, v in full])
        got = values(root, spine(*[(m, float(h)) for m, h in spine_rows]), "label" if as_of is None else at(as_of))
    assert got == reference(full, spine_rows, as_of)


def test_views_sharing_a_table_are_joined_once_and_keep_their_own_ttl(tmp_path: Path) -> None:
    short = FeatureView(name="dc_short", version=1, description="dark current, short TTL", ttl=timedelta(hours=2),
                        source=Source.table("module_stats", ("session_id", "module_id", "captured_at", "written_at",
                                                             "dark_current_e_per_s", "temperature_c"), ("session_id",)),
                        features=(MODULE_STATS.column("temperature_c"), MODULE_STATS.column("dark_current_e_per_s")))
    both = FeatureService("both", 1, "test", (Selection(VIEW), Selection(short)))
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0, dark_current_e_per_s=1.0, temperature_c=30.0),
                                          session("M1", 4, 6, dark_current_e_per_s=2.0, temperature_c=40.0)])
    s = spine(("M1", 1), ("M1", 3), ("M1", 5), ("M1", 7))
    for as_of in (at(5), at(50), "label"):
        out = get_training_set(s, both, as_of, tmp_path)
        alone = [get_training_set(s, FeatureService(v.name, 1, "test", (Selection(v),)), as_of, tmp_path)
                 for v in (VIEW, short)]
        assert out.equals(alone[0].join(alone[1], on=["module_id", "label_time", "row"], maintain_order="left"))
    assert get_training_set(s, both, at(50), tmp_path).get_column("dc_short__dark_current_e_per_s").to_list() == [
        1.0, None, 2.0, None]  # the capture at 4 h is past the 2 h TTL at 7 h
    assert plan("SELECT 1", both, at(50), tmp_path).sql.count("ASOF LEFT JOIN") == 1


def test_connections_share_the_database_but_not_their_views() -> None:
    from sensorfleet.features.retrieval import connect

    first, second = connect(), connect()
    try:
        first.register("__only_here", pl.DataFrame({"x": [1]}).to_arrow())
        first.sql("SET TimeZone = 'America/New_York'")  # one connection's setting stays its own
        assert first.sql("SELECT count(*) FROM __only_here").fetchall() == [(1,)]
        with pytest.raises(Exception, match="__only_here"):
            second.sql("SELECT * FROM __only_here").fetchall()
        assert second.sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
        assert connect().sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    finally:
        first.close()
        second.close()
