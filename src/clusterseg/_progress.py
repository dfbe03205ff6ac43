"""The package's one progress bar (rich): description, bar, done/total, elapsed time, ETA."""

from __future__ import annotations

from typing import Any


def progress_bar(console: Any = None):
    """A :class:`rich.progress.Progress`; use as a context manager or with ``start()`` / ``stop()``.

    Callers put what changes (file name, loss) in the task's description.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
