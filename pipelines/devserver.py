"""``make dev``: start ``dg dev`` (webserver + daemon) on the given roots and port.

Run as ``python -m pipelines.devserver --port P --root R [--landing L] [--home H]``; the Makefile
passes ``DAGSTER_PORT``, ``SENSORFLEET_ROOT``, ``SENSORFLEET_LANDING`` and ``DAGSTER_HOME``.
This process checks what would otherwise fail late or confusingly, then replaces itself with
``dg dev`` (same pid, same process group):

- a busy port is refused before anything starts (a second server's daemon would otherwise run
  beside the first one's while its webserver fails);
- ``DAGSTER_HOME`` is made absolute, created, and given the repository's dagster.yaml;
- SIGINT and SIGTERM get their default disposition back: a process started in the background
  by a shell inherits an ignored SIGINT, and ``dg dev`` then neither stops on SIGINT nor passes
  a stop on to its webserver and daemon (it forwards SIGINT to them), so SIGTERM to the group
  left them running. With the default restored, SIGTERM or SIGINT to ``dg dev`` or to its process
  group stops every process (tests/pipelines/test_devserver.py).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
from pathlib import Path

from pipelines.instance_config import install_instance_config
from sensorfleet.config import LANDING_ENV, ROOT_ENV, resolve_paths
from sensorfleet.objstore import LocationError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PORT = 3000


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on ``host:port`` now (nothing else listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def dev_command(host: str, port: int) -> list[str]:
    """``dg dev`` of this project (``[tool.dg]`` in pyproject.toml), from this interpreter's
    environment."""
    dg = Path(sys.executable).with_name("dg")
    return [str(dg), "dev", "--host", host, "--port", str(port), "--use-active-venv"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="DAGSTER_PORT (default 3000)")
    parser.add_argument("--root", type=Path, required=True, help="data root (SENSORFLEET_ROOT)")
    parser.add_argument("--landing", type=Path, default=None, help="landing root (SENSORFLEET_LANDING)")
    parser.add_argument("--home", type=Path, default=None, help="DAGSTER_HOME (default <root>/dagster_home)")
    args = parser.parse_args(argv)
    try:  # before the port probe and anything created: `make dev` serves local roots only
        resolve_paths(args.root, args.landing)
    except LocationError as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 2

    if not port_is_free(args.host, args.port):
        print(
            f"make dev: port {args.port} on {args.host} is busy (another `make dev`, or another program: "
            f"`ss -ltnp 'sport = :{args.port}'` names it). Stop it, or choose another port: "
            f"DAGSTER_PORT={args.port + 1} make dev",
            file=sys.stderr,
        )
        return 1
    command = dev_command(args.host, args.port)
    if not Path(command[0]).is_file():
        print(f"make dev: {command[0]} not found; install the dev dependencies (make venv)", file=sys.stderr)
        return 1
    root = args.root.expanduser().resolve()
    home = (args.home or root / "dagster_home").expanduser().resolve()  # Dagster needs it absolute
    install_instance_config(home)
    # Environment of the server processes (read back by sensorfleet.config.resolve_paths).
    os.environ[ROOT_ENV] = str(root)
    if args.landing is not None:
        os.environ[LANDING_ENV] = str(args.landing.expanduser().resolve())
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    print(f"make dev: http://{args.host}:{args.port}  root {root}  DAGSTER_HOME {home}", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.chdir(REPO_ROOT)  # dg reads [tool.dg] from the project's pyproject.toml
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
