"""A typer app whose subcommands are imported only when one runs (or shows its own help).

``sensorfleet --help`` used to import every command's module (numba kernels, the synthetic
camera, polars, the feature store: 1.3 s); the top-level help needs only names and one-line
helps, declared in the table beside each app. ``tests/test_lazy_cli.py`` checks that the
declared help is each command's own first docstring line, so they cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import typer
import typer.core
import typer.main

from sensorfleet.objstore import LocationError

# typer 0.29 vendors click (``typer._click``, private): contexts, commands and formatters are
# typed ``Any`` here rather than naming a private module.


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``"package.module:attribute"``: a typer command function or a
    ``typer.Typer`` of subcommands) and its one-line help for the top-level listing."""

    target: str
    help: str

    def load(self, name: str) -> Any:
        module_name, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        if isinstance(obj, typer.Typer):
            group = typer.main.get_group(obj)
            group.name = name
            return group
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
        command.name = name
        return command


class LazyGroup(typer.core.TyperGroup):
    """A typer group listing ``lazy_commands`` by name and importing one only when needed."""

    lazy_commands: Mapping[str, LazyCommand] = {}
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # the top-level help: name and one line, nothing imported
            return typer.core.TyperCommand(cmd_name, help=lazy.help, short_help=lazy.help)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = lazy.load(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        if name is not None and not name.startswith("-") and name not in self.list_commands(ctx):
            ctx.fail(f"No such command {name!r}; valid commands: {', '.join(self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        # A URL root a command cannot use, or a bad one, is a usage error (exit 2, no traceback),
        # raised before the command creates anything.
        try:
            return super().invoke(ctx)
        except LocationError as exc:
            raise typer.BadParameter(str(exc)) from None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_app(help: str, commands: Mapping[str, LazyCommand]) -> typer.Typer:
    """A typer app (no completion, help when called without arguments) of ``commands``."""
    group = type("SensorfleetGroup", (LazyGroup,), {"lazy_commands": dict(commands)})
    app = typer.Typer(help=help, no_args_is_help=True, add_completion=False, cls=group)
    app.callback()(_no_options)  # a group with no eager command needs a callback to be a group
    return app


def _no_options() -> None:
    pass
