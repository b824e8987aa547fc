"""The ``sensorfleet`` console script: the core's commands plus those that run the Dagster graph.

The core's commands come whole from :mod:`sensorfleet.cli` (register new core commands there);
the commands registered here need ``pipelines``. Dagster loads only when a run starts, so
``sensorfleet --help`` and the core's commands stay fast.
"""

from __future__ import annotations

import typer

from pipelines.demo import demo
from pipelines.run_command import pipeline_app
from sensorfleet import cli as core

app = typer.Typer(help=core.HELP, no_args_is_help=True, add_completion=False)
app.add_typer(core.app)  # unnamed: its commands join this app's top level

# Registration of the orchestration subcommands (one line each; keep alphabetical).
app.command("demo")(demo)
app.add_typer(pipeline_app, name="pipeline")

if __name__ == "__main__":
    app()
