"""Progress of long operations (imports, exports, backups, sweeps).

Services report through the small ``Reporter`` protocol and know nothing of terminals; the CLI
passes ``terminal_reporter(as_json)``, which draws a rich progress bar on stderr only when stderr
is a terminal and the command was not asked for ``--json``. Anywhere else it is silent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol


class Reporter(Protocol):
    """Receives the phases of a long operation and how far each has got."""

    def phase(self, description: str, total: int | None = None) -> None:
        """A new phase begins; ``total`` steps, or None when the count is not known."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current phase are done."""


class SilentReporter:
    """Reports nothing: the default for services, tests and non-terminal runs."""

    def phase(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


SILENT = SilentReporter()


class _RichReporter:
    """One rich task per phase; the previous phase is shown finished when the next begins."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None

    def phase(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, total=task.completed or 1,
                                  completed=task.completed or 1)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)


def wants_progress(as_json: bool = False, stream: IO[str] | None = None) -> bool:
    """A bar only on a terminal, and never when a program reads ``--json``."""
    stream = stream if stream is not None else sys.stderr
    if as_json:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def terminal_reporter(as_json: bool = False, stream: IO[str] | None = None) -> Iterator[Reporter]:
    """A progress bar on ``stream`` (stderr) when :func:`wants_progress`, else a silent one.

    The bars are transient: they vanish when the operation ends, leaving the command's own
    summary as the only lasting output.
    """
    stream = stream if stream is not None else sys.stderr
    if not wants_progress(as_json, stream):
        yield SILENT
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=stream, force_terminal=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield _RichReporter(progress)
