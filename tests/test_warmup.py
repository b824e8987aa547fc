"""The install-time warm-up compiles every cached numba kernel of the package into the cache."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sensorfleet import warmup

PACKAGE = Path(warmup.__file__).resolve().parent
REPO = PACKAGE.parent


def _is_cached_jit(decorator: ast.expr) -> tuple[bool, bool]:
    """(a numba jit with cache=True, inlined with inline="always")."""
    if not isinstance(decorator, ast.Call):
        return False, False
    name = decorator.func.attr if isinstance(decorator.func, ast.Attribute) else getattr(decorator.func, "id", "")
    keywords = {k.arg: k.value.value for k in decorator.keywords if isinstance(k.value, ast.Constant)}
    return name in ("njit", "jit") and keywords.get("cache") is True, keywords.get("inline") == "always"


def cached_kernels() -> dict[str, list[tuple[str, bool]]]:
    """Every ``@njit(cache=True)`` function of the package, read from the source: module ->
    [(function name, inlined)]."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    cached, inline = _is_cached_jit(decorator)
                    if cached:
                        found.setdefault(module, []).append((node.name, inline))
    return found


def test_warmup_steps_name_every_module_with_cached_kernels() -> None:
    modules = set(cached_kernels())
    assert modules == set(warmup.KERNEL_MODULES)
    assert modules <= {m for _, covered in warmup.STEPS for m in covered}


_MISSING = """
import importlib, json, sys
missing = []
for module, names in json.loads(sys.argv[1]).items():
    mod = importlib.import_module(module)
    for name in names:
        index = getattr(mod, name)._cache._cache_file._index_path
        if not __import__("os").path.exists(index):
            missing.append(f"{module}.{name}")
print(json.dumps(missing))
"""


@pytest.mark.slow
def test_warmup_leaves_every_cached_kernel_in_a_fresh_cache(tmp_path: Path) -> None:
    """In a fresh numba cache, the warm-up writes a cache entry for every kernel that has
    machine code of its own (``inline="always"`` helpers are compiled into their callers)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "sensorfleet.warmup"], check=True, env=env, cwd=tmp_path)
    wanted = {m: [n for n, inline in names if not inline and f"{m}.{n}" not in warmup.NOT_IN_RUNS]
              for m, names in cached_kernels().items()}
    out = subprocess.run([sys.executable, "-c", _MISSING, json.dumps(wanted)], check=True, env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert json.loads(out.stdout) == []
