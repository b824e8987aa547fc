"""The maps group of a characterized session (``maps/<day>/<session>.zarr``): built under a
temporary name, published atomically, read back.

The maps group is the source of truth of a characterized session: besides the float32 maps it
holds the session's table rows (``attrs['module_stats']``, ``attrs['channel_stats']``,
``rows/defects.parquet``, ``rows/ptc.parquet``), so an unchanged session is skipped without losing
its rows when a day is re-run.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr

from sensorfleet.emva.config import DEFECT_CODES, CharacterizationConfig
from sensorfleet.emva.rows import DEFECT_SCHEMA, NULL_WITHOUT_DATA, SessionCharacterization
from sensorfleet.ingest.store import read_group_attrs
from sensorfleet.manifest import Manifest

MAPS_FORMAT_VERSION = 4
"""4: the metric rows carry each metric's standard uncertainty ``<metric>_u``; 3: ``module_stats.n_operating_points`` counts distinct (kind, exposure_s, photons_per_pixel), as
``sessions`` does (2: the analysis' contiguous runs); 2: the table rows as parquet files in the
group folder (1: zarr column arrays). A group of an older version is recomputed."""
ROWS_GROUP = "rows"  # subgroup of the maps group whose folder holds the session's table rows:
DEFECTS_FILE = "defects.parquet"  # its pixel_defects rows
PTC_FILE = "ptc.parquet"  # its photon-transfer points


def jsonable(value: object) -> object:
    """``value`` as a JSON attribute: non-finite floats as null, datetimes as ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


def maps_group_attrs(manifest: Manifest, config: CharacterizationConfig, rows: SessionCharacterization,
                     source_attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The attributes of a session's maps group (``complete`` excepted): identity, config, the
    table rows and ``source_*`` copies of ``source_attrs`` (e.g. the captures' ``content_hash``)."""
    attrs: dict[str, Any] = {
        "maps_format_version": MAPS_FORMAT_VERSION,
        "session_id": manifest.session_id,
        "module_id": manifest.module_id,
        "capture_date": manifest.capture_date,
        "captured_at": manifest.captured_at.astimezone(UTC).isoformat(),
        "written_at": datetime.now(UTC).isoformat(),
        "config": asdict(config),
        "defect_codes": DEFECT_CODES,
        "module_stats": {k: jsonable(v) for k, v in rows.module_stats.items()},
        "channel_stats": [{k: jsonable(v) for k, v in r.items()} for r in rows.channel_stats],
    }
    if source_attrs:
        attrs.update({f"source_{k}": v for k, v in source_attrs.items()})
    return attrs


class TemporaryMapsGroup:
    """A maps group being written under a temporary name beside ``maps_out``: renamed to
    ``maps_out`` by :meth:`publish`, deleted by :meth:`discard` otherwise."""

    def __init__(self, maps_out: Path) -> None:
        self.maps_out = Path(maps_out)
        self.maps_out.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.maps_out.parent / f".{self.maps_out.name}.{uuid.uuid4().hex}.tmp"
        self.group: Any = zarr.open_group(str(self.path), mode="w")

    def publish(self, attrs: dict[str, Any], defects: pl.DataFrame, ptc: pl.DataFrame) -> None:
        """Add the table rows and ``attrs`` (``complete`` last), rename the group to ``maps_out``
        (an existing group there is replaced)."""
        # one parquet file per table in the folder of an empty subgroup: listing the group's members
        # (arrays(), load_maps) does not look inside it; a recursive walk (members(max_depth=None))
        # warns that the files are not zarr. A zarr array per column cost ~70 array creations,
        # ~0.14 s, per session
        self.group.create_group(ROWS_GROUP)
        defects.drop("session_id", "module_id", "captured_at").write_parquet(self.path / ROWS_GROUP / DEFECTS_FILE)
        ptc.drop("session_id").write_parquet(self.path / ROWS_GROUP / PTC_FILE)
        meta: dict[str, Any] = {k: jsonable(v) for k, v in attrs.items()}
        self.group.update_attributes(meta | {"complete": True})  # one write (attrs.update: one per key)
        old = None
        if self.maps_out.exists():
            old = self.maps_out.parent / f".{self.maps_out.name}.{uuid.uuid4().hex}.old"
            os.replace(self.maps_out, old)
        os.replace(self.path, self.maps_out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Delete the temporary group unless it was published."""
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def is_current(maps_group: Path, source_content_hash: str | None) -> bool:
    """Whether ``maps_group`` is complete, in the current layout, and made from captures with
    ``source_content_hash`` (an older layout is recomputed)."""
    have = read_group_attrs(maps_group) if maps_group.exists() else None
    return bool(
        have and have.get("complete") is True and source_content_hash is not None
        and have.get("source_content_hash") == source_content_hash
        and have.get("maps_format_version") == MAPS_FORMAT_VERSION
    )


def _restore(value: object, key: str) -> object:
    if value is None:  # JSON holds NaN as null: restore it, except where null is the value
        # (an identity, an uncertainty, a metric the data cannot give)
        keep_null = key in ("station_id", "lot_id", "wafer_id", *NULL_WITHOUT_DATA) or key.endswith("_u")
        return None if keep_null else math.nan
    if key == "captured_at" and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def load_session_rows(maps_group: Path) -> SessionCharacterization:
    """The table rows stored in a maps group (used when a day is re-run and a session is skipped)."""
    attrs = read_group_attrs(Path(maps_group)) or {}
    module = {k: _restore(v, k) for k, v in attrs["module_stats"].items()}
    channels = [{k: _restore(v, k) for k, v in r.items()} for r in attrs["channel_stats"]]
    ident = {
        "session_id": pl.lit(attrs["session_id"]),
        "module_id": pl.lit(attrs["module_id"]),
        "captured_at": pl.lit(datetime.fromisoformat(attrs["captured_at"])).dt.convert_time_zone("UTC"),
    }
    folder = Path(maps_group) / ROWS_GROUP
    defects = pl.read_parquet(folder / DEFECTS_FILE).with_columns(**ident).select(list(DEFECT_SCHEMA)).cast(DEFECT_SCHEMA)  # type: ignore[arg-type]
    ptc = pl.read_parquet(folder / PTC_FILE).with_columns(session_id=pl.lit(attrs["session_id"]))
    return SessionCharacterization(module, channels, defects, ptc, float(module["ptc_fit_r2"]))  # type: ignore[arg-type]


def load_maps(maps_group: Path) -> dict[str, np.ndarray]:
    """All (H, W) arrays of a maps group, by name."""
    group = zarr.open_group(str(maps_group), mode="r")
    return {name: np.asarray(arr[...]) for name, arr in group.arrays()}
