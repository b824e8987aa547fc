"""``make bench`` runs every benchmark: none is left out, each accepts ``--quick``."""

from __future__ import annotations

import importlib
from pathlib import Path

from benchmarks.run_all import BENCHMARKS, command

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_benchmark_is_run_and_has_a_quick_mode() -> None:
    on_disk = {p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py")}
    assert set(BENCHMARKS) == on_disk
    for name in BENCHMARKS:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        assert callable(module.main)
        assert '"--quick"' in Path(str(module.__file__)).read_text()  # an argparse option
        assert command(name, quick=True)[-2:] == [f"benchmarks.bench_{name}", "--quick"]
