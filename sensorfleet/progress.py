"""The one progress bar the CLI commands show (rich): label, bar, done/total, elapsed time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(label: str, console: Console, *, transient: bool = True, eta: bool = False) -> Progress:
    """A progress display for counted work; ``label`` is rich markup or ``"{task.description}"``.

    ``transient`` removes the bar when done; ``eta`` adds the estimated time remaining.
    """
    columns: list[ProgressColumn] = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console, transient=transient)
