"""libdeflate through ctypes (:mod:`sensorfleet.inflate`) against zlib, its errors, its fallback
and its threads."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sensorfleet import inflate


def _payloads(n: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 40 + 9 * k, size=5000 + 131 * k, dtype=np.uint16).tobytes() for k in range(n)]


def test_inflates_what_zlib_deflated_through_the_exported_library() -> None:
    assert inflate._library() is not None, "the deflate package is pinned: its libdeflate must load"
    for payload in _payloads(4):
        out = inflate.zlib_decompress_into(zlib.compress(payload, 6), len(payload))
        assert out.tobytes() == payload


@pytest.mark.parametrize("size_delta, reason", [(1, "inflates to"), (-1, "more data than expected")])
def test_a_wrong_size_is_an_error(size_delta: int, reason: str) -> None:
    payload = _payloads(1)[0]
    with pytest.raises(inflate.InflateError, match=reason):
        inflate.zlib_decompress_into(zlib.compress(payload), len(payload) + size_delta)


def test_damaged_data_is_an_error() -> None:
    payload = _payloads(1)[0]
    data = bytearray(zlib.compress(payload))
    with pytest.raises(inflate.InflateError, match="bad or truncated"):
        inflate.zlib_decompress_into(bytes(data[: len(data) // 2]), len(payload))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(inflate.InflateError):
        inflate.zlib_decompress_into(bytes(data), len(payload))


def test_fallback_without_the_library_gives_the_same_bytes_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflate, "_lib", [None])
    payload = _payloads(1)[0]
    assert inflate.zlib_decompress_into(zlib.compress(payload), len(payload)).tobytes() == payload
    with pytest.raises(inflate.InflateError):
        inflate.zlib_decompress_into(zlib.compress(payload), len(payload) + 1)


def test_threads_each_get_their_own_buffer() -> None:
    payloads = _payloads(24)
    streams = [zlib.compress(p) for p in payloads]

    def run(k: int) -> bool:
        out = inflate.zlib_decompress_into(streams[k], len(payloads[k]))
        return out.tobytes() == payloads[k]  # compared before this thread's next call reuses it

    with ThreadPoolExecutor(3) as pool:
        assert all(pool.map(run, range(len(payloads))))
