"""Package namespaces whose names are imported on first use (PEP 562 module ``__getattr__``).

A package ``__init__`` that imports every submodule makes ``import sensorfleet.features.cli``
(the ``features --help`` of the console script) pay for DuckDB, polars and the whole feature
store; with lazy exports it pays for what the command touches. Names stay importable as
before (``from sensorfleet.features import build_training_set``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], object], list[str]]:
    """``(__getattr__, __all__)`` for ``package`` exporting ``exports[submodule]`` names of each
    submodule, each imported when first read."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__, sorted(where)
