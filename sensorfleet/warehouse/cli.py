"""``sensorfleet sql``: read-only SQL over the warehouse, printed for a person or a program."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    """How ``sql`` prints its result."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def sql_command(
    query: Annotated[str | None, typer.Argument(help="SQL (SELECT / EXPLAIN); '-' or nothing reads it from stdin")] = None,
    root: Annotated[Path | None, typer.Option(help="data root (default: $SENSORFLEET_ROOT or ./data)")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table (aligned), csv, json (one object per row) or parquet")] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option(help="write to this file instead of stdout (required for parquet)")] = None,
    max_rows: Annotated[int, typer.Option(help="rows shown by --format table (the others write every row)")] = 200,
) -> None:
    """Read-only SQL over the warehouse (<root>/warehouse.duckdb): one view per table, and `tables`
    describing every column.

    Statements that would change a table or write a file are refused."""
    import duckdb

    from sensorfleet.config import local_path, resolve_roots
    from sensorfleet.staging import Stage, staged
    from sensorfleet.warehouse.build import WAREHOUSE_FILE
    from sensorfleet.warehouse.query import ReadOnlyQueryError, run_query

    if query is None or query == "-":
        query = sys.stdin.read()
    if output_format is OutputFormat.parquet and output is None:
        raise typer.BadParameter("--format parquet needs --output FILE", param_hint="--output")
    output = None if output is None else local_path(output, "--output")
    roots = resolve_roots(root)  # an s3:// root: its warehouse.duckdb is fetched, its views read the store
    try:
        with staged(roots, Stage(root_parts=(WAREHOUSE_FILE,), publish_root=False)) as paths:
            frame = run_query(paths, query)
    except (ReadOnlyQueryError, duckdb.Error, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if output_format is OutputFormat.parquet:
        assert output is not None
        frame.write_parquet(output)
        typer.echo(f"{frame.height} rows -> {output}", err=True)
        return
    if output_format is OutputFormat.csv:
        text = frame.write_csv()
    elif output_format is OutputFormat.json:
        text = frame.write_ndjson()
    else:
        import polars as pl

        with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=400,
                       tbl_hide_column_data_types=False, tbl_formatting="ASCII_MARKDOWN"):
            text = str(frame) + "\n"
        if frame.height > max_rows:
            text += f"({frame.height} rows, {max_rows} shown: --max-rows N or --format csv for all)\n"
    if output is not None:
        output.write_text(text)
    else:
        sys.stdout.write(text)
