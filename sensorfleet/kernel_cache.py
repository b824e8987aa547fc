"""Where numba keeps the compiled kernels: one folder per version of the kernels' source files.

numba keys a cached kernel on its own module's file (path, modification time, size) and nothing
else: a kernel that calls a kernel of another module keeps the machine code it was compiled with
when only the callee's module changes (numba's documented limit, "changes in symbols defined in
another file are not recognized"). After an update that edits ``optics/esfr.py`` but not
``optics/chart.py``, the chart's cached kernel would go on running the old e-SFR fit, silently.

So the cache folder is named by a digest of every kernel module's source (:data:`KERNEL_MODULES`,
kept equal to the warm-up's list by ``tests/test_kernel_cache.py``): a change to any kernel
module starts a fresh folder, where every kernel is compiled again on its first call (or by
``python -m sensorfleet.warmup``); the old folders stay until
``python -m sensorfleet.kernel_cache --prune`` removes them. The folder is ``sensorfleet/__pycache__/numba-<digest>`` beside the sources, or,
where the package is not writable (an installed wheel), ``$XDG_CACHE_HOME/sensorfleet`` (default
``~/.cache/sensorfleet``). A ``NUMBA_CACHE_DIR`` set by the user is used as it is, without this
protection.

:func:`configure` runs when ``sensorfleet`` is imported, before any kernel module is.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

KERNEL_MODULES: tuple[str, ...] = (
    "sensorfleet.emva.band_kernels",
    "sensorfleet.emva.defects",
    "sensorfleet.emva.flatblocks",
    "sensorfleet.emva.kernels",
    "sensorfleet.ingest.framestats",
    "sensorfleet.optics.chart",
    "sensorfleet.optics.detect",
    "sensorfleet.optics.esfr",
    "sensorfleet.optics.session",
    "sensorfleet.rawio_kernels",
    "sensorfleet.synth.physics",
)
"""Every module with ``cache=True`` kernels (the warm-up's :data:`sensorfleet.warmup.STEPS`)."""

ENV = "NUMBA_CACHE_DIR"
_SET_HERE = "_SENSORFLEET_NUMBA_CACHE_DIR"
"""Marks a ``NUMBA_CACHE_DIR`` this module set (inherited by worker processes): not the user's."""


def module_file(module: str) -> Path:
    """The source file of ``module`` (a ``sensorfleet.`` dotted name), without importing it."""
    return PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")


def sources_digest(files: Iterable[Path]) -> str:
    """SHA-256 (first 16 hex digits) of the files' names and bytes, in the order given."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def kernels_digest(modules: tuple[str, ...] = KERNEL_MODULES) -> str:
    """:func:`sources_digest` of the kernel modules' source files."""
    return sources_digest(module_file(m) for m in modules)


def cache_dir(digest: str | None = None) -> Path:
    """The cache folder of the current kernel sources (see the module docstring)."""
    name = f"numba-{digest or kernels_digest()}"
    local = PACKAGE / "__pycache__"
    if os.access(local if local.is_dir() else PACKAGE, os.W_OK):
        return local / name
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sensorfleet" / name


def configure() -> Path | None:
    """Point numba's cache at :func:`cache_dir`, unless the user set ``NUMBA_CACHE_DIR``;
    returns the folder used (None: the user's). Also when numba is already imported, as long
    as no kernel module is yet (numba reads the folder when a cached kernel is defined)."""
    current = os.environ.get(ENV)
    if current and os.environ.get(_SET_HERE) != current:
        return None  # the user's choice
    folder = str(cache_dir())
    os.environ[ENV] = os.environ[_SET_HERE] = folder
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.CACHE_DIR = folder
    return Path(folder)


def stale_dirs() -> list[Path]:
    """The cache folders of other kernel sources than the current ones, beside the current one."""
    current = cache_dir()
    return sorted(p for p in current.parent.glob("numba-*") if p.is_dir() and p != current)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import shutil

    parser = argparse.ArgumentParser(prog="python -m sensorfleet.kernel_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--prune", action="store_true", help="remove the folders of older kernel sources")
    args = parser.parse_args(argv)
    print(f"numba cache of the current kernels: {cache_dir()}")
    for folder in stale_dirs() if args.prune else []:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
