"""The core's commands: those that run without Dagster.

Each subcommand lives beside the code it drives and is registered here, so this module stays a
table of contents. The ``sensorfleet`` console script is ``pipelines.cli:app``, which takes every
command of :data:`app` and adds the ones that run the Dagster graph (``demo``, ``pipeline``);
the core never imports ``pipelines``.
"""

from __future__ import annotations

import typer

from sensorfleet.emva_import import import_emva_command
from sensorfleet.features.cli import features_app
from sensorfleet.synth.command import synth
from sensorfleet.warehouse.cli import sql_command

HELP = "Camera-module characterization pipeline: synthetic fleet, ingest, EMVA 1288 metrics."

# No name: the console script's app merges these commands into its own top level.
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)

# Registration of core subcommands (one line each; keep alphabetical).
app.add_typer(features_app, name="features")
app.command("import-emva")(import_emva_command)
app.command("sql")(sql_command)
app.command("synth")(synth)
