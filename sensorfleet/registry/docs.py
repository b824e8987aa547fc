"""Render docs/tables.md from the registry: ``python -m sensorfleet.registry.docs > docs/tables.md``
(a test fails when the file drifts from the registry)."""

from __future__ import annotations

import sys

from sensorfleet.registry import DEFECT_VALUE_UNITS, TABLES, Table

_INTRO = """\
# Tables

<!-- Generated from sensorfleet/registry by `python -m sensorfleet.registry.docs > docs/tables.md`;
edit the registry, not this file (tests/registry/test_docs.py fails when they differ). -->

Parquet, hive-partitioned by day: `<root>/tables/<table>/<partition>=<YYYY-MM-DD>/<part>.parquet`
(`sensorfleet/tables.py`). The capture tables are partitioned by `capture_date` (the UTC day of
`captured_at`, or for a session whose manifest cannot be parsed the UTC day of the manifest's /
folder's mtime), `final_test` by `test_date`. A day's file is rewritten whole and atomically (temp
file + `os.replace`), so re-running a day replaces its rows exactly; `rejections` has one file per
writer in a day (`part-0` sessions, `final_test` label rows). The partition column lives in the
path only; `read_table` / `read_partition` add it back as a `Date` column, DuckDB reads it with
`hive_partitioning = true`, and the warehouse (`sensorfleet sql`) has one view per table.

Every column is declared once in `sensorfleet/registry/`; the writers conform their rows to it
(a missing or undeclared column is an error), and each parquet field carries its meaning and unit
in its metadata (`description`, `unit`, `emva1288_symbol`).

**Two time axes.** Every row carries its event time (`captured_at`, for final tests `tested_at`)
and its created time `written_at`: when the row's *content* became known. A re-run that finds a
row unchanged (every column but `written_at` and the table's volatile columns equal, by key) keeps
the stored `written_at` and volatile values, and a partition whose content is unchanged is not
rewritten at all; a corrected row gets a new `written_at`. Timestamps are `timestamp[us, tz=UTC]`.

How the capture partitions are built (`ingest_day`): `sessions` and `captures` from the complete
zarr groups of the day (the source of truth, so sessions skipped as unchanged keep their rows),
plus `sessions` rows for sessions this run rejected; the landing part of `rejections` from this
run only, so a session that was fixed drops out of it at the next run of its day. Rejection
reasons: docs/storage.md and docs/landing-format.md.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(table: Table) -> str:
    """The markdown section of one table."""
    lines = [
        f"## `{table.name}`: {table.grain}",
        "",
        _cell(table.description),
        "",
        f"Key: {', '.join(f'`{k}`' for k in table.key)}. Event time `{table.event_time}`, created time "
        f"`{table.created_time}`. Partition `{table.partition_column}` ({table.partition_meaning})."
        + (f" Volatile (kept with an unchanged row): {', '.join(f'`{v}`' for v in table.volatile)}." if table.volatile else "")
        + (f" Written by {table.produced_by}." if table.produced_by else ""),
        "",
        "| column | type | unit | meaning | EMVA 1288 | bounds |",
        "|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        emva = " ".join(x for x in (c.symbol, c.section) if x)
        bound = c.bound.describe() if c.bound else ""
        feature = " (feature)" if c.feature else ""
        lines.append(f"| `{c.name}` | {c.dtype} | {_cell(c.unit)} | {_cell(c.description)}{feature} | {_cell(emva)} | {bound} |")
    if table.name == "pixel_defects":
        lines += ["", "Unit of `value` per `defect_class`:", "", "| class | unit of `value` |", "|---|---|"]
        lines += [f"| `{k}` | {_cell(v)} |" for k, v in DEFECT_VALUE_UNITS.items()]
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """docs/tables.md: the intro, then one section per registered table (the derived tables of
    the feature store included)."""
    import sensorfleet.features.daily  # noqa: F401  (registers module_features)

    return _INTRO + "".join("\n" + render_table(t) for t in TABLES.values())


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
