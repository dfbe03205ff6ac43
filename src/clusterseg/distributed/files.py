"""Collections: a folder or list of image files processed on dask, one label file per input."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FileReport", "process_files"]


@dataclasses.dataclass
class FileReport:
    """What :func:`process_files` did: ``written`` and ``skipped`` output paths, ``failed`` input -> reason."""

    written: list[Path]
    skipped: list[Path]
    failed: dict[Path, str]

    @property
    def ok(self) -> bool:
        return not self.failed


def _method(task: str | Callable, options: dict) -> Callable[[np.ndarray], np.ndarray]:
    if callable(task):
        return lambda image: task(image, **options)
    if task == "instances":
        from ..instances.api import instances

        return lambda image: instances(image, **options).labels
    if task == "superpixels":
        from ..superpixels.api import superpixels

        return lambda image: superpixels(image, **options)
    raise ValueError(f"task must be 'instances', 'superpixels' or a function image -> labels, got {task!r}")


def _process_one(path: Path, target: Path, task: str | Callable, options: dict, threads: int | None):
    """(status, message) for one file; user errors become 'failed', bugs propagate."""
    from ..io import read_image, write_labels
    from .arrays import torch_threads

    try:
        with torch_threads(threads):
            labels = _method(task, options)(read_image(path))
        write_labels(target, labels)  # atomic: a temporary file renamed when complete
    except (ValueError, OSError) as exc:
        return "failed", f"{type(exc).__name__}: {exc}"
    return "written", ""


def _targets(paths: Sequence[Path], out_dir: Path, suffix: str) -> list[Path]:
    """One output per input, named as the command line names them (same stems get their folder)."""
    from ..io.names import output_names

    return [out_dir / f"{name}{suffix}" for name in output_names(paths)]


def process_files(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    task: str | Callable[..., np.ndarray],
    out_dir: str | os.PathLike,
    *,
    client: Any = None,
    suffix: str = "_labels.tif",
    torch_threads: int | None = 1,
    **options: Any,
) -> FileReport:
    """Segment every image of a folder or list on dask; resumable, and a bad file does not stop the rest.

    Parameters
    ----------
    inputs : folder, glob pattern or sequence of paths
    task : {"instances", "superpixels"} or callable
        ``clusterseg.instances`` / ``clusterseg.superpixels`` with
        ``options``, or any function ``image -> labels``.
    out_dir : path
        One ``<stem><suffix>`` label file per input, written atomically
        (inputs with the same stem get their folder or extension in the name,
        as on the command line: ``a/x.png``, ``b/x.png`` -> ``a_x``, ``b_x``).
        Inputs whose output exists are skipped, so a rerun continues an
        interrupted one.
    client : dask.distributed.Client, optional
        Default: dask's local threads.
    suffix : str
        Output name suffix; its extension picks the format (``.tif`` holds
        any label count, ``.png`` up to 65535).
    torch_threads : int or None
        Torch threads per task.

    Returns
    -------
    FileReport
        Written and skipped outputs, and the inputs that failed with the reason.
    """
    import dask

    from ..io import list_frames

    _method(task, options)  # an unknown task is the caller's error, not one per file
    paths = [Path(p) for p in inputs] if isinstance(inputs, (list, tuple)) else list_frames(inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = _targets(paths, out_dir, suffix)
    todo = [(p, t) for p, t in zip(paths, targets) if not t.exists()]
    skipped = [t for t in targets if t.exists()]
    jobs = [dask.delayed(_process_one, pure=False)(p, t, task, options, torch_threads) for p, t in todo]
    results = dask.compute(*jobs, scheduler=client if client is not None else "threads")
    report = FileReport(written=[], skipped=skipped, failed={})
    for (path, target), (status, message) in zip(todo, results):
        if status == "written":
            report.written.append(target)
        else:
            report.failed[path] = message
    return report
