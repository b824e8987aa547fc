"""``make dev``: refuses a busy port, honours the roots and the port, and stops on SIGTERM or
SIGINT to its process group even when started in the background (an ignored SIGINT inherited)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of the process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.devserver", "--port", str(port), "--root", str(tmp_path / "root")],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is busy" in done.stderr and f"DAGSTER_PORT={port + 1}" in done.stderr
    assert not (tmp_path / "root").exists()


@pytest.fixture
def background_make_dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``make dev`` started in the background of a non-interactive shell (so it inherits an
    ignored SIGINT) in a session of its own; killed by group whatever the test does."""
    if not (BIN / "dg").is_file():
        pytest.skip("dg (dagster-dg-cli) is not installed in this environment")
    port, root = free_port(), tmp_path / "root"
    make = f"make -s dev STAMP= BIN={BIN} DAGSTER_PORT={port} SENSORFLEET_ROOT={root}"
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115  (closed below)
    shell = subprocess.Popen(["bash", "-c", f"{make} & wait"], cwd=REPO, stdout=log, stderr=log, start_new_session=True)
    try:
        yield shell, port, root
    finally:
        for proc in group_members(shell.pid):
            proc.kill()
        shell.wait(30)
        log.close()


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, True), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGTERM-group", "SIGINT-group", "SIGTERM-dg-only"],
)
def test_make_dev_stops_on_a_signal_to_it_or_its_group(
    background_make_dev: tuple[subprocess.Popen[bytes], int, Path], signum: signal.Signals, to_group: bool,
    tmp_path: Path,
) -> None:
    shell, port, root = background_make_dev
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
                assert answer.status == 200
                break
        except OSError:
            assert shell.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, "no /server_info within 180 s:\n" + (tmp_path / "dev.log").read_text()
            time.sleep(1)
    assert (root / "dagster_home" / "dagster.yaml").is_file()  # SENSORFLEET_ROOT honoured
    names = " ".join(" ".join(p.cmdline()) for p in group_members(shell.pid))
    assert "dagster_webserver" in names and "dagster._daemon" in names

    if to_group:
        os.killpg(shell.pid, signum)
    else:  # the server process alone (the launcher exec'd into `dg dev`): it stops its children
        (server,) = [p for p in group_members(shell.pid) if "dg dev" in " ".join(p.cmdline())]
        server.send_signal(signum)
    deadline = time.monotonic() + 60
    while group_members(shell.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [" ".join(p.cmdline())[:120] for p in group_members(shell.pid)]
    assert not left, f"still running 60 s after {signum.name}: {left}"
