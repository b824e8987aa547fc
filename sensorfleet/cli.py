"""The ``sensorfleet`` console script.

Each subcommand lives beside the code it drives and is registered here, so this module stays a
table of contents.
"""

from __future__ import annotations

import typer

from sensorfleet.demo import demo
from sensorfleet.emva_import import import_emva_command
from sensorfleet.pipeline_cli import pipeline_app
from sensorfleet.synth.command import synth
from sensorfleet.warehouse.cli import sql_command

app = typer.Typer(
    name="sensorfleet",
    help="Camera-module characterization pipeline: synthetic fleet, ingest, EMVA 1288 metrics.",
    no_args_is_help=True,
    add_completion=False,
)

# Registration of subcommands (one line each; keep alphabetical).
app.command("demo")(demo)
app.command("import-emva")(import_emva_command)
app.add_typer(pipeline_app, name="pipeline")
app.command("sql")(sql_command)
app.command("synth")(synth)
