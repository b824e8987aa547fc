"""The sizing derived from the fleet-scale measurements: each figure from a payload whose
answer is worked out by hand."""

from __future__ import annotations

import pytest

from benchmarks.bench_fleet_scale import derive_sizing
from sensorfleet.synth.fleet import FleetConfig


def test_sizing_from_per_session_figures() -> None:
    frames = 10 * FleetConfig(modules=1).chart_frames  # the edge chart is a tenth of the frames
    payload = {
        "session_shape": {"frames": frames},
        "landing": {"bytes_per_session": 1e9, "files_per_session": 41},
        "layers": {
            "captures": {"cpu_s_per_session": 3.0, "bytes_per_session": 6e8, "files_per_session": 400},
            "characterization": {"cpu_s_per_session": 5.04, "bytes_per_session": 2e8, "files_per_session": 60},
        },
        "scoring": {"cpu_s_per_session": 0.6},
    }
    sizing = derive_sizing(payload)
    assert sizing["cpu_s_per_session"] == pytest.approx(8.64)
    assert sizing["put_per_session"] == 460
    assert sizing["get_per_session"] == pytest.approx(41 + 400 * 1.1)
    day = sizing["per_day"]["100000"]
    assert day["core_hours"] == pytest.approx(240.0)  # 100,000 x 8.64 s
    assert day["cores_busy"] == pytest.approx(10.0 / 0.7)  # 864,000 core-s over 86,400 s at 70 %
    assert day["nodes"] == 1
    assert day["stored_tb_per_day"] == pytest.approx(80.0)
    assert day["stored_pb_per_year"] == pytest.approx(29.2)
    assert day["put_per_s"] == pytest.approx(100_000 * 460 / 86_400)
    # landing read + everything written + the captures read back (1.1 x: characterization, chart)
    assert day["object_store_gb_per_s"] == pytest.approx(100_000 * (1e9 + 8e8 + 6.6e8) / 86_400 / 1e9)
    assert sizing["per_day"]["10000"]["nodes"] == 1
