"""Characterizing a subset of a session's frames through a view: every frame selected gives the
session's own rows bit for bit (from a captures group and from memory), a true subset gives the
rows of that subset copied out, and a bad selection is refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from emva_helpers import linear_camera, render_session, write_captures

from sensorfleet.emva import characterize_frames
from sensorfleet.emva.rows import SessionCharacterization
from sensorfleet.emva.session import characterize_subset, open_captures
from sensorfleet.emva.subset import SelectedFrames, select_frames, select_manifest


def _identical(a: SessionCharacterization, b: SessionCharacterization) -> None:
    """Every row value equal bit for bit (NaN where the other is NaN), defects and PTC too."""
    for x, y in [(a.module_stats, b.module_stats), *zip(a.channel_stats, b.channel_stats, strict=True)]:
        assert x.keys() == y.keys()
        for key, v in x.items():
            w = y[key]
            if isinstance(v, float) and math.isnan(v):
                assert isinstance(w, float) and math.isnan(w), key
            else:
                assert w == v and type(w) is type(v), (key, v, w)
    assert a.defects.equals(b.defects)
    assert a.ptc.equals(b.ptc)


@pytest.fixture(scope="module")
def session() -> tuple[np.ndarray, object]:
    frames, manifest, _ = render_session(linear_camera(48, 40, cfa_pattern="RGGB"), seed=3, ptc_levels=8,
                                         spatial_frames=8)
    return frames, manifest


def test_every_frame_selected_is_the_session_bit_for_bit(session: tuple, tmp_path: Path) -> None:
    frames, manifest = session
    everything = range(len(manifest.frames))
    _identical(characterize_subset(frames, manifest, everything), characterize_frames(frames, manifest, None))
    # from a captures group (the study's case: FrameReader blocks, chunk-aligned bands)
    reader, stored, _ = open_captures(write_captures(tmp_path / "s.zarr", frames, manifest, chunk_rows=8))
    view, selected = select_frames(reader, stored, everything)
    assert view.chunks == reader.chunks and selected == stored
    _identical(characterize_subset(reader, stored, everything), characterize_frames(reader, stored, None))


def test_a_subset_equals_the_same_frames_copied_out(session: tuple, tmp_path: Path) -> None:
    frames, manifest = session
    points = manifest.operating_points()
    # drop the two longest dark exposures and half of each 8-frame series
    darks = sorted({f.exposure_s for f in manifest.frames if f.kind == "dark"})
    keep = [i for key, idx in points.items() for i in (idx[:4] if len(idx) > 2 else idx)
            if not (key[0] == "dark" and key[1] in darks[-2:])]
    keep.sort()
    sub = characterize_subset(frames, manifest, keep)
    copied = characterize_frames(np.ascontiguousarray(frames[keep]), select_manifest(manifest, keep), None)
    _identical(sub, copied)
    assert sub.module_stats["n_frames"] == len(keep) < len(manifest.frames)
    assert sub.module_stats["dark_spatial_frames"] == 4
    reader, stored, _ = open_captures(write_captures(tmp_path / "s.zarr", frames, manifest, chunk_rows=8))
    _identical(characterize_subset(reader, stored, keep), sub)


def test_reads_of_the_view_go_to_the_selected_frames(session: tuple) -> None:
    frames, _ = session
    view = SelectedFrames(frames, [1, 2, 3, 7, 9])
    out = np.empty((4, 5, frames.shape[2]), np.uint16)
    view.read_into(out, slice(1, 5), slice(2, 7))
    np.testing.assert_array_equal(out, frames[[2, 3, 7, 9], 2:7])
    np.testing.assert_array_equal(view[3], frames[7])
    np.testing.assert_array_equal(view[0:2, 1:3, :], frames[1:3, 1:3, :])
    assert view.shape == (5, *frames.shape[1:]) and len(view) == 5


@pytest.mark.parametrize("indices", [[], [3, 2], [1, 1], [-1, 2], [0, 10_000]])
def test_a_bad_selection_is_refused(session: tuple, indices: list[int]) -> None:
    frames, manifest = session
    with pytest.raises(ValueError, match="frame selection"):
        select_frames(frames, manifest, indices)
