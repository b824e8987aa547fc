"""Landing scan: days, errors, skipped folders, the manifest cache."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sensorfleet.ingest import scan as scan_mod
from sensorfleet.ingest import scan_landing, sessions_for_day


def test_scan_days_errors_and_skips(tmp_path: Path, make_session: Callable[..., Path],
                                    fingerprint: Callable[[Path], dict[str, Any]]) -> None:
    landing = tmp_path / "landing"
    make_session(landing, "a", captured_at="2026-03-14T23:30:00-02:00")  # 2026-03-15 in UTC
    make_session(landing, "b")
    broken = make_session(landing, "c")
    (broken / "manifest.json").write_text("[]")
    os.utime(broken / "manifest.json", (1_780_000_000, 1_780_000_000))  # 2026-05-28 UTC
    (landing / "d").mkdir()
    os.utime(landing / "d", (1_780_050_000, 1_780_050_000))  # 2026-05-29 UTC
    (landing / "final_test").mkdir()
    (landing / "final_test" / "results.csv").write_text("module_id,passed\n")
    (landing / ".hidden").mkdir()
    (landing / "stray.txt").write_text("not a session")
    before = fingerprint(landing)
    found = scan_landing(landing, cache_dir=tmp_path / "state")
    assert fingerprint(landing) == before
    assert [(s.session_dir.name, s.session_id, s.capture_date) for s in found] == [
        ("a", "a", "2026-03-15"), ("b", "b", "2026-03-14"), ("c", None, "2026-05-28"), ("d", None, "2026-05-29"),
    ]
    assert found[0].error is None and len(found[0].manifest_sha256 or "") == 64
    assert "schema" in (found[2].error or "")
    assert "missing" in (found[3].error or "")
    assert [s.session_id for s in sessions_for_day(landing, "2026-03-15")] == ["a"]
    assert scan_landing(tmp_path / "nowhere") == []


def test_cache_avoids_reparsing_and_notices_changes(tmp_path: Path, make_session: Callable[..., Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    landing, cache = tmp_path / "landing", tmp_path / "state"
    for i in range(5):
        make_session(landing, f"s{i}")
    first = scan_landing(landing, cache_dir=cache)
    calls = {"n": 0}
    real = scan_mod.parse_manifest

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_mod, "parse_manifest", counting)
    assert scan_landing(landing, cache_dir=cache) == first
    assert calls["n"] == 0
    m = json.loads((landing / "s3" / "manifest.json").read_text())
    m["captured_at"] = "2026-04-01T10:00:00+00:00"
    (landing / "s3" / "manifest.json").write_text(json.dumps(m))
    third = scan_landing(landing, cache_dir=cache)
    assert calls["n"] == 1
    assert third[3].capture_date == "2026-04-01" and third[3].manifest_sha256 != first[3].manifest_sha256
    assert [p.name for p in cache.iterdir()] == [scan_mod.CACHE_NAME]
