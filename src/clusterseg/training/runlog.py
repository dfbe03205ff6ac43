"""The CSV log of a training run, kept in step with its checkpoint.

A trainer appends a row, then saves its checkpoint; a run killed between the
two and resumed would repeat the step and log it twice. :func:`start_log`
therefore rewrites the log on resume with only the rows the checkpoint
covers, so the log always describes the weights.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ..io.write import atomic_write

__all__ = ["start_log", "append_row", "TrainingDiverged"]


class TrainingDiverged(FloatingPointError, ValueError):
    """A loss became non-finite or exploded; the last checkpoint is intact.

    A ``ValueError`` too, so the command line reports it as one line with its
    advice (lower learning rate, ...) instead of a traceback: it is a property
    of the settings and data, not a bug.
    """


def start_log(path: Path, fields: Sequence[str], *, key: str, keep_below: int | None) -> None:
    """Begin a new log (``keep_below=None``) or keep only the rows whose ``key`` is below ``keep_below``.

    Parameters
    ----------
    path : Path
        The CSV file.
    fields : sequence of str
        Header of a new log.
    key : str
        Column counting the steps (an epoch or image index).
    keep_below : int or None
        On resume, the first step the checkpoint does not cover: rows with
        ``row[key] < keep_below`` are kept, later ones dropped.
    """
    rows: list[list[str]] = []
    header = list(fields)
    if keep_below is not None and path.exists():
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, header)
            column = header.index(key) if key in header else None
            rows = [row for row in reader if column is not None and row and _below(row[column], keep_below)]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])

    atomic_write(path, write, overwrite=True)


def _below(value: str, limit: int) -> bool:
    try:
        return int(float(value)) < limit
    except ValueError:
        return False


def append_row(path: Path, row: Sequence[object]) -> None:
    """Append one row to the log."""
    with open(path, "a", newline="") as fh:
        csv.writer(fh).writerow(list(row))
