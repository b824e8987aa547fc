"""The UI tells the truth, proven in a real browser: a freshly materialized tiny fleet, the
webserver on a free loopback port, GraphQL for every asset and each check's latest result per
capture day (the planted broken session's day warns, the others pass), then the asset graph and
one asset's page rendered by headless Chromium, with screenshots under the test's tmp folder.

Every process started here runs in a session of its own and is stopped by process group, also
when the test fails. ``make test`` installs Debian's ``chromium`` when it is missing.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assets.captures import CHECK_NO_REJECTIONS
from assets.features import CHECK_NULL_RATE, MAX_NULL_RATE
from pipelines.cli import app
from pipelines.demo import BROKEN_SESSION_ID
from sensorfleet.config import resolve_paths
from sensorfleet.features import feature_quality

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1600,2000",
    "--virtual-time-budget=20000",
)
ASSETS_QUERY = """{
  assetNodes {
    assetKey { path }
    isPartitioned
    partitionStats { numMaterialized numPartitions }
    assetMaterializations(limit: 1) { timestamp }
    assetChecksOrError { ... on AssetChecks { checks {
      name blocking
      executionForLatestMaterialization { status partition }
      partitionStatuses {
        ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
        ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions }
      }
    } } }
  }
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of ``proc`` (a session of its own), SIGKILL after 20 s;
    returns when no process of the group is left."""
    for signum, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader: a zombie still counts as a member
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    raise AssertionError(f"process group {proc.pid} survived SIGKILL")


def graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        payload = json.loads(answer.read())
    assert "errors" not in payload, payload["errors"]
    return dict(payload["data"])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo fleet (60 modules in 6 lots, 256x192 so the edge charts resolve, over several
    days + the planted broken session),
    materialized, with the models trained and every day scored."""
    root = tmp_path_factory.mktemp("e2e") / "data"
    result = CliRunner().invoke(app, ["demo", "--root", str(root), "--modules", "60", "--width", "256",
                                      "--height", "192", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "models failed" not in result.output, result.output
    from sensorfleet.config import resolve_paths
    from sensorfleet.warehouse import run_query

    scored = run_query(resolve_paths(root), "SELECT count(DISTINCT module_id) AS n FROM anomaly_scores")["n"][0]
    predicted = run_query(resolve_paths(root), "SELECT count(DISTINCT module_id) AS n FROM yield_predictions")["n"][0]
    spatial = run_query(resolve_paths(root), "SELECT count(DISTINCT module_id) AS n FROM spatial_scores")["n"][0]
    assert scored == predicted == spatial == 60  # every module scored, and the warehouse's views see it
    return root


@pytest.fixture(scope="module")
def webserver(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The Dagster webserver on a free loopback port over ``fleet`` (no daemon: nothing runs)."""
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(fleet / "dagster_home"), "SENSORFLEET_ROOT": str(fleet),
           "PYTHONPATH": str(REPO)}
    env.pop("SENSORFLEET_LANDING", None)
    log = open(tmp_path_factory.mktemp("logs") / "webserver.log", "wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-m", "pipelines.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:  # /server_info answers first, then GraphQL once the code location loaded
            assert server.poll() is None, f"webserver exited {server.returncode}; see {log.name}"
            assert time.monotonic() < deadline, f"webserver not ready within 180 s; see {log.name}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    pass
                if graphql(port, "{ assetNodes { id } }")["assetNodes"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        yield port
    finally:
        stop_group(server)
        log.close()


def chromium(args: list[str], tmp_path: Path, timeout_s: int = 180) -> str:
    """Run headless Chromium (own session, stopped by group) and return its stdout."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it)")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return out.decode(errors="replace")
    finally:
        stop_group(proc)


def _day_statuses(check: dict[str, Any], days: list[str]) -> dict[str, str]:
    """Each day's latest status of ``check`` as the UI's partition status bar reads it."""
    statuses = check["partitionStatuses"]
    found: dict[str, str] = {}
    for day in days:
        if "ranges" in statuses:
            found[day] = next((r["status"] for r in statuses["ranges"] if r["startKey"] <= day <= r["endKey"]), "MISSING")
        else:
            found[day] = ("SUCCEEDED" if day in statuses["succeededPartitions"] else
                          "FAILED" if day in statuses["failedPartitions"] else "MISSING")
    return found


def _fails(fleet: Path, check: str, day: str, broken_day: str) -> bool:
    """What the fleet implies for ``check`` on ``day``: the broken session's day has a rejection;
    a tiny fleet has no station cohort of the previous 7 days, so those features are null (the
    null-rate warning, recomputed here from the day's table); every other check passes."""
    if check == CHECK_NO_REJECTIONS:
        return day == broken_day
    if check == CHECK_NULL_RATE:
        rates = feature_quality(resolve_paths(fleet), day).null_rates
        return bool((rates["null_rate"] > MAX_NULL_RATE).any())
    return False


def test_graphql_reports_every_asset_and_each_days_check_result(fleet: Path, webserver: int) -> None:
    days = sorted(p.name.split("=", 1)[1] for p in (fleet / "tables" / "sessions").glob("capture_date=*"))
    manifest = json.loads((fleet / "landing" / BROKEN_SESSION_ID / "manifest.json").read_text())
    broken_day = manifest["captured_at"][:10]
    assert len(days) >= 2 and broken_day in days

    nodes = graphql(webserver, ASSETS_QUERY)["assetNodes"]
    assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {"captures", "module_stats", "module_features", "warehouse"}
    for node in nodes:
        name = "/".join(node["assetKey"]["path"])
        assert node["assetMaterializations"], f"{name} never materialized"
        if node["isPartitioned"]:
            assert node["partitionStats"]["numMaterialized"] == len(days), name
        for check in node["assetChecksOrError"]["checks"]:
            if not node["isPartitioned"]:
                assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED", (name, check["name"])
                continue
            expected = {d: "FAILED" if _fails(fleet, check["name"], d, broken_day) else "SUCCEEDED" for d in days}
            assert _day_statuses(check, days) == expected, (name, check["name"])


def _text(dom: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S))
    return " ".join(html.unescape(text).split())


def test_the_asset_graph_and_an_asset_page_render_in_chromium(fleet: Path, webserver: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{webserver}"
    days = sorted(p.name.split("=", 1)[1] for p in (fleet / "tables" / "sessions").glob("capture_date=*"))
    pages = {
        "asset-graph": f"{base}/asset-groups",
        "characterization-graph": f"{base}/locations/__repository__@pipelines.definitions/asset-groups/characterization",
        "captures-checks": f"{base}/assets/captures?view=checks",
    }
    text = {label: _text(chromium(["--dump-dom", url], tmp_path)) for label, url in pages.items()}
    graph_names = ("pixel_maps", "module_stats", "module_channel_stats", "pixel_defects")
    # the graph renders only the nodes in view: the window is tall enough for the group's graph
    for _ in range(3):  # its layout runs in a web worker: on a loaded machine it can miss the
        if all(name in text["characterization-graph"] for name in graph_names):  # virtual-time
            break                                                              # budget of one load
        text["characterization-graph"] = _text(chromium(["--dump-dom", pages["characterization-graph"]], tmp_path))

    # dagster.yaml turns off Dagster's sign-up dialog, which covered a new browser's first page
    assert "Join the Dagster community" not in text["asset-graph"]
    for group in ("captures", "characterization", "features", "labels", "warehouse"):
        assert group in text["asset-graph"], f"group {group} not in the rendered asset graph"
    for name in graph_names:
        assert name in text["characterization-graph"], f"{name} not in the rendered group graph"
    assert f"{len(days)} partitions" in text["characterization-graph"]  # only the days with data
    # the checks tab: the broken day's warning shows although a clean day ran after it
    assert "no_rejected_sessions Failed" in text["captures-checks"], text["captures-checks"][:2000]
    assert "no_unexpected_saturation Succeeded" in text["captures-checks"]

    for label, url in pages.items():
        shot = tmp_path / f"{label}.png"
        chromium([f"--screenshot={shot}", url], tmp_path)
        assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot of {label}"
