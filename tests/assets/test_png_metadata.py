"""Plots saved beside the data: atomic, no temporary left, and readable by the team (the umask's
permissions, not a private temporary file's)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from assets._common import png_metadata

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_a_plot_file_gets_the_umasks_permissions_and_no_temporary_is_left(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        markdown, path_value = png_metadata(PNG, tmp_path / "day" / "worst-ptc.png", "Photon transfer")
    finally:
        os.umask(old)
    target = tmp_path / "day" / "worst-ptc.png"
    assert target.read_bytes() == PNG
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["worst-ptc.png"]
    assert "data:image/png;base64," in str(markdown.value) and path_value.value == str(target)


def test_a_failed_write_leaves_the_old_plot_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "worst-ptc.png"
    target.write_bytes(b"old")

    def fail(*_args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="no space left"):
        png_metadata(PNG, target, "Photon transfer")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["worst-ptc.png"]
