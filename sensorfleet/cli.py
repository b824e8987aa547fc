"""The core's commands: those that run without Dagster.

Each subcommand lives beside the code it drives and is registered here, in :data:`COMMANDS`, so
this module stays a table of contents. The ``sensorfleet`` console script is
``pipelines.cli:app``, which takes every command of :data:`COMMANDS` and adds the ones that run
the Dagster graph (``demo``, ``pipeline``); the core never imports ``pipelines``. A command's
module is imported only when that command runs or shows its help (``sensorfleet.lazy_cli``).
"""

from __future__ import annotations

from sensorfleet.lazy_cli import LazyCommand, lazy_app

HELP = "Camera-module characterization pipeline: synthetic fleet, ingest, EMVA 1288 metrics."

# Registration of core subcommands (one line each; keep alphabetical). The help is the command's
# own first docstring line (tests/test_lazy_cli.py holds them equal).
COMMANDS = {
    "features": LazyCommand(
        "sensorfleet.features.cli:features_app", "Feature store: point-in-time training sets, views and services."
    ),
    "import-emva": LazyCommand(
        "sensorfleet.emva_import:import_emva_command",
        "Import an EMVA 1288 descriptor data set (EMVA1288_Data.txt + images) as one landing session.",
    ),
    "sql": LazyCommand(
        "sensorfleet.warehouse.cli:sql_command",
        "Read-only SQL over the warehouse (<root>/warehouse.duckdb): one view per table, and `tables` "
        "describing every column.",
    ),
    "synth": LazyCommand(
        "sensorfleet.synth.command:synth",
        "Write N capture sessions (landing contract), final-test results and the ground truth.",
    ),
}

app = lazy_app(HELP, COMMANDS)
