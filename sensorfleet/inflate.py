"""zlib streams (PNG image data) inflated by libdeflate with the GIL released.

The ``deflate`` package's ``zlib_decompress`` holds the GIL while it inflates, so two threads
decoding PNG frames ran no faster than one (EMVA set 003: 0.40 s for 302 frames on one thread or
two). The same libdeflate is linked into that package's extension module, which exports its C
functions; called through ``ctypes`` (which releases the GIL for the call) the ingest's frame
threads inflate in parallel, into a reused per-thread output buffer (no fresh allocation and its
page faults per frame). Without the exported symbols :func:`zlib_decompress_into` falls back to
``deflate.zlib_decompress`` or, without that package, to :mod:`zlib` (same bytes, slower).
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
import weakref
import zlib
from typing import Any

import numpy as np

_SUCCESS, _BAD_DATA, _SHORT_OUTPUT, _INSUFFICIENT_SPACE = 0, 1, 2, 3
_REASONS = {_BAD_DATA: "bad or truncated data", _SHORT_OUTPUT: "short output",
            _INSUFFICIENT_SPACE: "more data than expected"}


class InflateError(ValueError):
    """The data do not inflate into the space given; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_lib: list[Any] = []  # [ctypes library or None], loaded once


def _library() -> Any:
    """The ctypes handle of libdeflate inside the ``deflate`` extension module (None when it is
    not installed or does not export the functions)."""
    if not _lib:
        handle = None
        try:
            spec = importlib.util.find_spec("deflate._deflate")
            if spec is not None and spec.origin:
                handle = ctypes.CDLL(spec.origin)
                handle.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
                handle.libdeflate_alloc_decompressor.argtypes = []
                handle.libdeflate_free_decompressor.restype = None
                handle.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
                handle.libdeflate_zlib_decompress.restype = ctypes.c_int
                handle.libdeflate_zlib_decompress.argtypes = [
                    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                    ctypes.POINTER(ctypes.c_size_t)]
        except (ImportError, OSError, AttributeError):
            handle = None
        _lib.append(handle)
    return _lib[0]


class _ThreadState(threading.local):
    """One libdeflate decompressor (not thread-safe) and one output buffer per thread."""

    def __init__(self) -> None:
        self.decompressor: int | None = None
        self.buffer = np.empty(0, np.uint8)


_state = _ThreadState()


def _decompressor(lib: Any) -> int:
    if _state.decompressor is None:
        handle = lib.libdeflate_alloc_decompressor()
        if not handle:
            raise MemoryError("libdeflate_alloc_decompressor returned NULL")
        _state.decompressor = handle
        weakref.finalize(threading.current_thread(), lib.libdeflate_free_decompressor, handle)
    return _state.decompressor


def scratch(size: int) -> np.ndarray:
    """This thread's reused ``(size,) uint8`` output buffer (valid until its next use here)."""
    if _state.buffer.size < size:
        _state.buffer = np.empty(size, np.uint8)
    return _state.buffer[:size]


def zlib_decompress_into(data: bytes | bytearray | memoryview, size: int) -> np.ndarray:
    """Inflate the zlib stream ``data`` into this thread's scratch buffer; returns the
    ``(size,) uint8`` result (a view valid until this thread's next call). Raises
    :class:`InflateError` when the stream is damaged or does not inflate to exactly ``size``
    bytes."""
    lib = _library()
    if lib is None:
        return _fallback(data, size)
    src = np.frombuffer(data, np.uint8)
    out = scratch(size)
    actual = ctypes.c_size_t(0)
    code = lib.libdeflate_zlib_decompress(_decompressor(lib), src.ctypes.data, src.size, out.ctypes.data, size,
                                          ctypes.byref(actual))
    if code != _SUCCESS:
        raise InflateError(f"{_REASONS.get(code, f'libdeflate error {code}')}; expected {size} bytes")
    if actual.value != size:
        raise InflateError(f"inflates to {actual.value} bytes, expected {size}")
    return out


def _fallback(data: bytes | bytearray | memoryview, size: int) -> np.ndarray:
    raw: bytes | bytearray
    try:
        import deflate
    except ImportError:
        try:
            raw = zlib.decompress(data)
        except zlib.error as exc:
            raise InflateError(f"bad or truncated data ({exc})") from None
    else:
        try:
            raw = deflate.zlib_decompress(bytes(data), size)
        except deflate.DeflateError as exc:
            raise InflateError(f"{exc}; expected {size} bytes") from None
    if len(raw) != size:
        raise InflateError(f"inflates to {len(raw)} bytes, expected {size}")
    out = scratch(size)
    out[:] = np.frombuffer(raw, np.uint8)
    return out
