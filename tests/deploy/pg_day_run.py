"""One capture day's run recorded in a Dagster instance given by its home folder (the Postgres
test starts two of these at once). ``python tests/deploy/pg_day_run.py HOME ROOT LANDING DAY
BARRIER N``: after loading the instance it marks itself ready in BARRIER and waits for N ready
marks, so the runs overlap; prints the day's outcome as JSON, exits 1 when the run failed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(home: str, root: str, landing: str, day: str, barrier: str, n: str) -> int:
    from dagster import DagsterInstance

    from pipelines.runner import run_pipeline
    from sensorfleet.config import resolve_paths

    instance = DagsterInstance.from_config(home)
    (Path(barrier) / day).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(barrier).iterdir())) < int(n):
        if time.monotonic() > deadline:
            print(f"{day}: the other runs never became ready", file=sys.stderr)
            return 2
        time.sleep(0.05)
    summary = run_pipeline(resolve_paths(Path(root), Path(landing)), select=["captures", "characterization"],
                           days=[day], instance=instance)
    (outcome,) = summary.days
    print(json.dumps({"day": outcome.day, "run_id": outcome.run_id, "error": outcome.error,
                      "ingested": outcome.ingested, "rejected": outcome.rejected}))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
