"""available_cores: the cores a process is given (affinity, cgroup quota), not the machine's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensorfleet.parallel import available_cores


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity API here")
def test_counts_the_affinity_set_and_caps_it_by_the_cgroup_quota(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    cpu_max = tmp_path / "cpu.max"
    assert available_cores(cpu_max) == 6  # no cgroup file: the affinity set
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == 6  # no quota
    cpu_max.write_text("250000 100000\n")
    assert available_cores(cpu_max) == 3  # 2.5 cores of quota: rounded up
    cpu_max.write_text("50000 100000\n")
    assert available_cores(cpu_max) == 1
    cpu_max.write_text("garbage\n")
    assert available_cores(cpu_max) == 6


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity API here")
def test_a_process_pinned_to_one_core_gets_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from sensorfleet.parallel import available_cores; print(available_cores())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "1"
