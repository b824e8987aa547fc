"""Feature values of sessions computed straight from their characterization rows, without the
parquet tables: the session views' own SQL (:data:`~sensorfleet.features.catalog.SESSION_VIEWS`)
run by DuckDB over in-memory rows. What a model would see for a session characterized another
way, e.g. on a shorter capture plan (``models/plan_study.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import polars as pl

from sensorfleet.features.catalog import SESSION_VIEWS
from sensorfleet.features.model import FeatureView


def session_features(tables: Mapping[str, pl.DataFrame],
                     views: Sequence[FeatureView] = SESSION_VIEWS) -> pl.DataFrame:
    """One row per ``session_id`` of ``tables["module_stats"]`` with every feature of ``views`` as
    ``<view>__<feature>`` (the column names of ``module_features`` and of training sets).

    ``tables`` holds the registry tables the views read, by name, as the characterization writes
    their rows (``session_id`` unique per session in ``module_stats``); a missing ``written_at``
    is taken as ``captured_at`` (it orders nothing here). The error names a table a view needs.
    """
    needed = sorted({t for v in views for t in v.source.tables})
    missing = [t for t in needed if t not in tables]
    if missing:
        raise ValueError(f"session features: views {[v.name for v in views]} need tables {needed}; missing {missing}")
    con = duckdb.connect()
    try:
        for name in needed:
            frame = tables[name]
            if "written_at" not in frame.columns:
                frame = frame.with_columns(pl.col("captured_at").alias("written_at"))
            con.register(f"__{name}", frame.to_arrow())
        out = tables["module_stats"].select("session_id").unique(maintain_order=True)
        for view in views:
            rows = con.sql(view.source.render({t: f"__{t}" for t in view.source.tables})).pl()
            out = out.join(rows.select("session_id", *[pl.col(f.name).alias(f"{view.name}__{f.name}")
                                                       for f in view.features]), on="session_id", how="left")
        return out
    finally:
        con.close()
