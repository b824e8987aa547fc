"""Bounded reads and strict JSON for files that arrive from outside (the landing manifests).

Python's ``json`` reader is lenient where a contract must not be: it takes ``NaN`` and
``Infinity``, lets a duplicate key silently win, decodes UTF-16/32 bytes, recurses until
``RecursionError`` on deep nesting, and converts any number of digits. ``loads_strict`` refuses
each of these with a reason a person can act on; ``read_bounded`` reads a regular file only,
without blocking (a FIFO in place of a file would hang a reader forever) and within a size limit
checked before reading (``/dev/zero`` behind a symlink would be read until memory runs out).
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

MANIFEST_MAX_BYTES = 4 << 20
"""Largest manifest read: ~25,000 frame entries; real sessions hold tens to hundreds."""
MAX_DEPTH = 16
"""Deepest nesting of objects and lists (a manifest nests 3 deep)."""
MAX_STRING_CHARS = 4096
"""Longest string (frame paths are the longest legitimate strings; ids are bounded lower)."""
MAX_ITEMS = 100_000
"""Most members of one object or list."""
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_INT_DIGITS = 20  # int64's longest literal with its sign


class StrictJsonError(ValueError):
    """Input refused by :func:`loads_strict` or :func:`read_bounded`; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``max_bytes``.

    Opened with ``O_NONBLOCK`` so a FIFO never blocks the open, then refused unless ``fstat``
    says regular file; the size is checked before reading, and the read stops one byte past the
    limit (a file growing meanwhile is refused too). ``OSError`` (missing, unreadable) passes
    through; the refusals raise :class:`StrictJsonError`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StrictJsonError(f"not a regular file ({_file_type(st.st_mode)}); expected a JSON file")
        if st.st_size > max_bytes:
            raise StrictJsonError(f"{st.st_size} bytes; expected at most {max_bytes} bytes")
        chunks = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise StrictJsonError(f"grew past {max_bytes} bytes while being read; expected at most {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_ITEMS:
        raise StrictJsonError(f"an object with {len(pairs)} members; expected at most {MAX_ITEMS}")
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key {key[:80]!r}; expected each key once per object")
        out[key] = value
    return out


def _int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise StrictJsonError(f"integer of {len(text)} digits ({text[:24]}...); expected one that fits int64")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise StrictJsonError(f"integer {text} does not fit int64 ({INT64_MIN}..{INT64_MAX})")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError(f"number {text[:40]} overflows a 64-bit float; expected a finite number")
    return value


def _constant(name: str) -> float:
    raise StrictJsonError(f"{name} is not JSON; expected a finite number")


def _check_shape(value: Any) -> None:
    """Depth, string lengths and list lengths, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise StrictJsonError(f"a string of {len(item)} characters ({item[:24]!r}...); expected at most {MAX_STRING_CHARS}")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJsonError(f"string {item[:40]!r} holds an unpaired surrogate escape; expected valid Unicode") from None
            continue
        children: list[Any]
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            if len(item) > MAX_ITEMS:
                raise StrictJsonError(f"a list of {len(item)} items; expected at most {MAX_ITEMS}")
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels; expected a flat manifest (3 levels)")
        stack.extend((child, depth + 1) for child in children)


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON text strictly: UTF-8 (no byte-order mark), no duplicate keys, no ``NaN``/
    ``Infinity``, numbers that fit int64 or a finite float64, at most ``MAX_DEPTH`` levels,
    strings of at most ``MAX_STRING_CHARS``, objects and lists of at most ``MAX_ITEMS``.
    Raises :class:`StrictJsonError` with the reason."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            hint = " (it looks like UTF-16/32)" if b"\x00" in bytes(data[:4]) else ""
            raise StrictJsonError(f"not UTF-8{hint}: invalid byte at offset {exc.start}; expected UTF-8 JSON") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise StrictJsonError("starts with a byte-order mark; expected UTF-8 JSON without one")
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                           parse_constant=_constant)
    except StrictJsonError:
        raise
    except RecursionError:
        raise StrictJsonError(f"nested too deeply to parse; expected at most {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not valid JSON ({exc})") from None
    except ValueError as exc:  # e.g. a float literal Python cannot convert
        raise StrictJsonError(f"not valid JSON ({exc})") from None
    _check_shape(value)
    return value
