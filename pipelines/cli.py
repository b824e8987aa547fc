"""The ``sensorfleet`` console script: the core's commands plus those that run the Dagster graph.

The core's commands come from :data:`sensorfleet.cli.COMMANDS` (register new core commands
there); the commands registered here need ``pipelines``. Every command's module is imported only
when it runs or shows its own help, and Dagster only when a run starts, so ``sensorfleet --help``
and every ``--help`` stay fast (benchmarks/bench_cli.py).
"""

from __future__ import annotations

from sensorfleet import cli as core
from sensorfleet.lazy_cli import LazyCommand, lazy_app

# Registration of the orchestration subcommands (one line each; keep alphabetical).
COMMANDS = {
    "demo": LazyCommand(
        "pipelines.demo:demo",
        "Generate a small synthetic fleet (unless one is there), run the pipeline, say where to look.",
    ),
    "models": LazyCommand(
        "models.cli:models_app", "Models: anomaly detector and yield predictor, MLflow registry, score tables."
    ),
    "pipeline": LazyCommand(
        "pipelines.run_command:pipeline_app", "Run the Dagster asset graph (the same definitions the UI loads)."
    ),
    "plan": LazyCommand(
        "models.plan_cli:plan_app",
        "Capture plans: the shortest plan whose metrics and model decisions match the full one.",
    ),
}

app = lazy_app(core.HELP, {**core.COMMANDS, **COMMANDS})

if __name__ == "__main__":
    app()
