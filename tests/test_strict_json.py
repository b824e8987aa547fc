"""Strict JSON and bounded reads: each refusal with a reason a person can act on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensorfleet.strict_json import MAX_DEPTH, StrictJsonError, loads_strict, read_bounded


@pytest.mark.parametrize("text,reason", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("[NaN]", "NaN is not JSON"),
    ("[-Infinity]", "-Infinity is not JSON"),
    ("[1e400]", "overflows a 64-bit float"),
    ("[9223372036854775808]", "does not fit int64"),
    ("[" + "1" * 5000 + "]", "integer of 5000 digits"),  # would hit Python's int-digits limit (ValueError)
    ("[" * 50_000 + "]" * 50_000, "nested too deeply to parse"),  # RecursionError inside json
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    ('"\\udc00"', "unpaired surrogate"),
    ("\ufeff{}", "byte-order mark"),
    ("{", "not valid JSON"),
])
def test_refusals(text: str, reason: str) -> None:
    with pytest.raises(StrictJsonError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        loads_strict(text)


def test_accepts_plain_json_and_keeps_types() -> None:
    assert loads_strict(b'{"a": [1, -2, 2.5, "x", true, null]}') == {"a": [1, -2, 2.5, "x", True, None]}
    assert loads_strict('{"a": -9223372036854775808}') == {"a": -(1 << 63)}


def test_utf16_and_latin1_are_refused() -> None:
    with pytest.raises(StrictJsonError, match="UTF-16/32"):
        loads_strict('{"a": 1}'.encode("utf-16"))
    with pytest.raises(StrictJsonError, match="not UTF-8: invalid byte at offset 7"):
        loads_strict('{"a": "\xe9"}'.encode("latin-1"))


def test_read_bounded_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would hang here
    with pytest.raises(StrictJsonError, match=r"not a regular file \(a FIFO\)"):
        read_bounded(tmp_path / "fifo", 100)
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(StrictJsonError, match="a character device"):
        read_bounded(tmp_path / "zero", 100)
    with pytest.raises(StrictJsonError, match="a folder"):
        read_bounded(tmp_path, 100)
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(StrictJsonError, match="101 bytes; expected at most 100"):
        read_bounded(tmp_path / "big", 100)
    (tmp_path / "ok").write_bytes(b"x" * 100)
    assert read_bounded(tmp_path / "ok", 100) == b"x" * 100
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing", 100)
