"""sensorfleet.kernel_cache: numba's cache folder follows the kernel modules' sources, so a kernel
never runs machine code compiled against an older version of a kernel it calls in another
module (numba itself only checks the caller's own file)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sensorfleet import kernel_cache, warmup

CALLEE = "from numba import njit\n\n@njit(cache=True)\ndef scale(x):\n    return x * {factor}\n"
CALLER = "from numba import njit\nfrom callee import scale\n\n@njit(cache=True)\ndef apply(x):\n    return scale(x) + 1\n"
RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from caller import apply
    print(apply(10))
""")


def _run(package: Path, cache: Path | None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "_SENSORFLEET_NUMBA_CACHE_DIR")}
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    out = subprocess.run([sys.executable, "-c", RUN, str(package)], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_the_kernel_modules_are_the_warmups() -> None:
    assert set(kernel_cache.KERNEL_MODULES) == {m for _, modules in warmup.STEPS for m in modules}
    assert all(kernel_cache.module_file(m).is_file() for m in kernel_cache.KERNEL_MODULES)


@pytest.mark.slow
def test_an_edited_callee_is_compiled_again_in_a_folder_of_its_own(tmp_path: Path) -> None:
    package = tmp_path / "kernels"
    package.mkdir()
    files = [package / "callee.py", package / "caller.py"]
    files[0].write_text(CALLEE.format(factor=2))
    files[1].write_text(CALLER)
    plain = tmp_path / "plain-cache"  # numba's own keying: one folder whatever the sources
    assert _run(package, plain) == 21
    first = tmp_path / f"numba-{kernel_cache.sources_digest(files)}"
    assert _run(package, first) == 21

    files[0].write_text(CALLEE.format(factor=3))  # the callee's module edited, the caller's not
    assert _run(package, plain) == 21  # numba's documented limit: the caller's stale machine code
    second = tmp_path / f"numba-{kernel_cache.sources_digest(files)}"
    assert second != first
    assert _run(package, second) == 31  # the folder of the new sources compiles it again


def test_the_folder_is_named_by_the_sources_and_a_users_folder_is_kept(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel_cache.cache_dir().name == f"numba-{kernel_cache.kernels_digest()}"
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("_SENSORFLEET_NUMBA_CACHE_DIR", raising=False)
    assert kernel_cache.configure() == kernel_cache.cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(kernel_cache.cache_dir())
    assert kernel_cache.configure() == kernel_cache.cache_dir()  # set here before: set again
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernel_cache.configure() is None
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_an_unwritable_package_caches_under_the_users_cache_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_cache.os, "access", lambda path, mode: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel_cache.cache_dir("abc") == tmp_path / "xdg" / "sensorfleet" / "numba-abc"


def test_prune_removes_the_folders_of_older_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_cache, "cache_dir", lambda digest=None: tmp_path / "numba-current")
    for name in ("numba-current", "numba-old1", "numba-old2", "unrelated"):
        (tmp_path / name).mkdir()
    assert [p.name for p in kernel_cache.stale_dirs()] == ["numba-old1", "numba-old2"]
    assert kernel_cache.main(["--prune"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numba-current", "unrelated"]
