"""Reproducible training sets: the parquet file and, beside it, a JSON manifest (spine hash,
service and view definitions with versions, source files with checksums, the SQL, ``as_of``)
from which :func:`rebuild` writes the same bytes.

A rebuild runs the recorded SQL, not today's view definitions, over the recorded files, after
checking that the spine and every source file still have their recorded SHA-256; it refuses
otherwise, since a partition rewritten since (a corrected re-run) would change the answer.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sensorfleet.features.model import FeatureService
from sensorfleet.features.retrieval import AsOf, check_spine, connect, plan, run, spine_sql_for_file
from sensorfleet.features.sources import SourceFile, sha256_file, verify

FORMAT = 1
ROW_GROUP_ROWS = 128 * 1024


class SourceChangedError(RuntimeError):
    """A file a manifest recorded is missing or no longer has its recorded checksum."""


def manifest_path(out: Path) -> Path:
    """The manifest beside ``out``: ``<out>.manifest.json``."""
    return out.with_name(out.name + ".manifest.json")


def write_parquet(table: pa.Table, out: Path) -> str:
    """Write ``table`` deterministically (fixed codec and row groups), atomically; return its SHA-256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256_file(out)


def build_training_set(spine: str | Path, out: str | Path, service: str | FeatureService | None = None,
                       as_of: AsOf = None, root: str | Path | None = None) -> Path:
    """Write the training set of the spine file to ``out`` and its manifest beside it; return the
    manifest path. ``as_of`` None records the build time, so a rebuild ignores later corrections."""
    spine_path, out_path = Path(spine).resolve(), Path(out).resolve()
    built_at = datetime.now(UTC)
    spine_sql = spine_sql_for_file(spine_path)
    the_plan = plan(spine_sql, service, as_of, root, now=built_at)
    files = [SourceFile(t, p, p.stat().st_size, sha256_file(p)) for t, ps in the_plan.files.items() for p in ps]
    spine_hash = sha256_file(spine_path)
    con = connect()
    try:
        check_spine(con, spine_sql, the_plan.service)
        table = run(con, the_plan.sql)
    finally:
        con.close()
    problems = verify(files)  # a partition replaced while the query ran would not match its hash
    if problems or sha256_file(spine_path) != spine_hash:
        raise SourceChangedError("inputs changed while the training set was built; build again:\n" + "\n".join(problems))
    out_hash = write_parquet(table, out_path)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "built_at": built_at.isoformat(),
        "as_of_mode": the_plan.as_of_mode,
        "as_of": the_plan.as_of.isoformat() if the_plan.as_of else None,
        "service": the_plan.service.definition(),
        "spine": {"path": str(spine_path), "sha256": spine_hash},
        "sources": [{"table": f.table, "path": str(f.path), "size_bytes": f.size_bytes, "sha256": f.sha256}
                    for f in files],
        "sql": the_plan.sql,
        "output": {"path": str(out_path), "sha256": out_hash, "rows": table.num_rows,
                   "columns": table.column_names},
        "versions": {"duckdb": duckdb.__version__, "pyarrow": pa.__version__},
    }
    path = manifest_path(out_path)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def rebuild(manifest: str | Path, out: str | Path | None = None) -> Path:
    """Write the training set a manifest describes again (to ``out``, default its recorded
    output path) and return the path. Raises :class:`SourceChangedError` naming every file whose
    checksum changed or that is missing."""
    recorded = json.loads(Path(manifest).read_text())
    if recorded.get("format") != FORMAT:
        raise ValueError(f"{manifest}: manifest format {recorded.get('format')!r}, this code reads {FORMAT}")
    files = [SourceFile(s["table"], Path(s["path"]), s["size_bytes"], s["sha256"]) for s in recorded["sources"]]
    spine = recorded["spine"]
    problems = verify(files + [SourceFile("spine", Path(spine["path"]), Path(spine["path"]).stat().st_size
                                          if Path(spine["path"]).is_file() else -1, spine["sha256"])])
    if problems:
        raise SourceChangedError(
            f"cannot rebuild {manifest}: its inputs changed, so the same bytes cannot come back:\n  "
            + "\n  ".join(problems))
    target = Path(out).resolve() if out is not None else Path(recorded["output"]["path"])
    con = connect()
    try:
        table = run(con, recorded["sql"])
    finally:
        con.close()
    write_parquet(table, target)
    return target
