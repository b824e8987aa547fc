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
    assert modules == {m for _, covered in warmup.STEPS for m in covered}


_MISSING = """
import importlib, json, sys
missing = []
for module, names in json.loads(sys.argv[1]).items():
    mod = importlib.import_module(module)
    for name in names:
        # an index for the current source (numba checks the file's stamp): a valid cache entry
        if not getattr(mod, name)._cache._cache_file._load_index():
            missing.append(f"{module}.{name}")
print(json.dumps(missing))
"""


def _missing(wanted: dict[str, list[str]], env: dict[str, str], cwd: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _MISSING, json.dumps(wanted)], check=True, env=env, cwd=cwd,
                         capture_output=True, text=True)
    return list(json.loads(out.stdout))


@pytest.mark.slow
def test_warmup_leaves_every_cached_kernel_in_the_cache(tmp_path: Path) -> None:
    """After the warm-up (``make`` runs it when it installs the environment), every kernel that
    has machine code of its own (``inline="always"`` helpers are compiled into their callers) has
    a cache entry for its current source in the cache the runs use, so a first run compiles
    nothing. Where the entries are there already (a fresh clone after ``make``) this only reads
    them; otherwise it runs the warm-up as the install does and checks again. Compiling into an
    empty cache costs a minute of CPU: set ``SENSORFLEET_WARMUP_FRESH_CACHE=1`` to test that."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if os.environ.get("SENSORFLEET_WARMUP_FRESH_CACHE") == "1":
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    wanted = {m: [n for n, inline in names if not inline and f"{m}.{n}" not in warmup.NOT_IN_RUNS]
              for m, names in cached_kernels().items()}
    if _missing(wanted, env, tmp_path):
        subprocess.run([sys.executable, "-m", "sensorfleet.warmup"], check=True, env=env, cwd=tmp_path)
    assert _missing(wanted, env, tmp_path) == []
