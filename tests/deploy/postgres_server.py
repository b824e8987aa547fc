"""A throwaway PostgreSQL server for tests: Debian's ``postgresql`` binaries, an unprivileged
cluster in a temporary folder, listening on a free loopback port; stopped and removed on exit.

initdb refuses to run as root (CI runs as root): the cluster is then created and run as the
unprivileged user ``nobody``, or, where that user is missing, a system user created for the
test and deleted afterwards. ``make test`` installs the binaries (``make postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "sensorfleet"
FALLBACK_USER = "sensorfleet-pg"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    folder: Path

    def dsn(self, db_name: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={db_name}"


def postgres_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def unprivileged_user() -> Iterator[str | None]:
    """The user to run the server as: None when this process is not root; else ``nobody``, or a
    system user created for the duration (and deleted after)."""
    if os.geteuid() != 0:
        yield None
        return
    for name in ("nobody", FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            yield name
            return
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
                   check=True, capture_output=True)
    try:
        yield FALLBACK_USER
    finally:
        subprocess.run(["userdel", FALLBACK_USER], check=False, capture_output=True)


def _as(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    import shlex

    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(argv)]


@contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """Create, start and yield a cluster (superuser ``sensorfleet``, trust auth on 127.0.0.1);
    stop it (``pg_ctl stop -m immediate``) and remove its folder on exit, also on failure."""
    with unprivileged_user() as user:
        # not under pytest's tmp_path: its parents are private to root, the server user could not enter
        folder = Path(tempfile.mkdtemp(prefix="sensorfleet-pg-"))
        data, log = folder / "data", folder / "server.log"
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        started = False
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o700)

            def run(argv: list[str]) -> None:
                done = subprocess.run(_as(user, argv), cwd=folder, env=env, capture_output=True, text=True,
                                      timeout=60)
                if done.returncode != 0:
                    server_log = log.read_text() if log.is_file() else ""
                    raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr or done.stdout}\n{server_log}")

            run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                 "--locale=C", "--no-sync"])
            port = free_loopback_port()
            options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            started = True
            run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"])
            yield PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, folder=folder)
        finally:
            if started:
                subprocess.run(_as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                               cwd="/", env=env, capture_output=True, timeout=60)
            shutil.rmtree(folder, ignore_errors=True)
