"""Test helpers: defect matching against truth, captures groups built from numpy stacks."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl
import zarr
from zarr.codecs import BloscCodec

from sensorfleet.manifest import Manifest

LINE_CLASSES = {"bad_column", "bad_row"}


def match_defects(
    truth: Iterable[tuple[int, int, str]], found: pl.DataFrame, classes: Iterable[str]
) -> dict[str, tuple[float, float]]:
    """Per class (recall, precision) of found pixels vs truth pixels at the same (x, y).

    A pixel where a bad row crosses a bad column counts for either line class.
    """
    t: dict[tuple[int, int], set[str]] = {}
    for x, y, c in truth:
        t.setdefault((x, y), set()).add(c)
    f: dict[tuple[int, int], str] = {}
    for x, y, c in found.filter(pl.col("defect_class") != "blemish").select("x", "y", "defect_class").iter_rows():
        f[(x, y)] = c

    def same(a: set[str], b: str) -> bool:
        return b in a or (b in LINE_CLASSES and bool(a & LINE_CLASSES))

    out = {}
    for c in classes:
        tc = [k for k, v in t.items() if c in v]
        fc = [k for k, v in f.items() if v == c]
        hit = sum(1 for k in tc if k in f and same(t[k], f[k]))
        good = sum(1 for k in fc if k in t and same(t[k], c))
        out[c] = (hit / len(tc) if tc else 1.0, good / len(fc) if fc else 1.0)
    return out


def match_blemishes(truth: Iterable[tuple[float, float, float]], found: pl.DataFrame) -> tuple[float, float]:
    """(recall, precision) of blemish centres: a found centre within the true radius is a hit."""
    tb = list(truth)
    fb = found.filter(pl.col("defect_class") == "blemish").select("x", "y").rows()
    hit = sum(1 for x, y, r in tb if any(np.hypot(fx - x, fy - y) <= r for fx, fy in fb))
    good = sum(1 for fx, fy in fb if any(np.hypot(fx - x, fy - y) <= r for x, y, r in tb))
    return (hit / len(tb) if tb else 1.0, good / len(fb) if fb else 1.0)


def write_captures(path: Path, frames: np.ndarray, manifest: Manifest, chunk_rows: int = 32,
                   content_hash: str = "sha-1") -> Path:
    """A captures group as the ingest writes it: ``frames`` (n, H, W) uint16 + manifest attrs."""
    group = zarr.open_group(str(path), mode="w")
    n, h, w = frames.shape
    arr = group.create_array(
        "frames", shape=frames.shape, dtype=np.uint16, chunks=(1, min(chunk_rows, h), w),
        compressors=[BloscCodec(cname="lz4", shuffle="bitshuffle", clevel=5)],
    )
    arr[...] = frames
    group.attrs.update({
        "session_id": manifest.session_id,
        "manifest": manifest.model_dump(mode="json"),
        "content_hash": content_hash,
        "complete": True,
    })
    return path
