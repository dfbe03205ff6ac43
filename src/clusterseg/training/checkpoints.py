"""Safe checkpoint files: atomic writes and ``weights_only`` loading.

A checkpoint is a plain ``dict`` of tensors, numbers, strings, lists and dicts
(no pickled classes), so it can be read with ``torch.load(weights_only=True)``.
Writes go through :func:`clusterseg.io.write.atomic_write` (a temporary file in the same directory, then
:func:`os.replace`), so an interrupted save never leaves a truncated file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..io.write import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "check_resume_config", "CheckpointError"]


class CheckpointError(ValueError):
    """Raised for a missing, unreadable or malformed checkpoint."""


def save_checkpoint(obj: dict[str, Any], path: str | Path, *, overwrite: bool = True) -> Path:
    """Atomically write ``obj`` to ``path`` with :func:`torch.save`.

    Parameters
    ----------
    obj : dict
        Tensors, numbers, strings, lists, tuples and dicts only.
    path : path-like
        Destination; parent directories are created.
    overwrite : bool
        Replace an existing file (the default: training rewrites its
        checkpoint after every step); ``False`` raises
        :class:`FileExistsError` instead and writes nothing.

    Returns
    -------
    path : Path
    """
    if not isinstance(obj, dict):
        raise TypeError(f"checkpoint must be a dict, got {type(obj).__name__}")
    return atomic_write(path, lambda tmp: torch.save(obj, tmp), overwrite=overwrite)


def load_checkpoint(path: str | Path, *, required_keys: tuple[str, ...] = (), map_location: str = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Parameters
    ----------
    path : path-like
    required_keys : tuple of str
        Keys that must be present.
    map_location : str
        Device for the tensors.

    Returns
    -------
    obj : dict

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not a dict, or lacks a required key.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or contains non-allowlisted objects
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict (got {type(obj).__name__})")
    missing = [k for k in required_keys if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {missing}")
    return obj


def check_resume_config(
    saved: dict[str, Any], current: dict[str, Any], path: str | Path, *, ignore: tuple[str, ...] = ()
) -> None:
    """Refuse to resume a run whose hyper-parameters differ from the saved ones.

    Parameters
    ----------
    saved, current : dict
        The run's saved configuration and the one given now.
    path : path-like
        The checkpoint (for the message).
    ignore : tuple of str
        Keys allowed to change (e.g. the number of epochs).

    Raises
    ------
    CheckpointError
        Listing every differing key with its saved and given values.
    """
    keys = (set(saved) | set(current)) - set(ignore)
    differing = {k: (saved.get(k), current.get(k)) for k in sorted(keys) if saved.get(k) != current.get(k)}
    if differing:
        listing = ", ".join(f"{k}: saved {a!r}, given {b!r}" for k, (a, b) in differing.items())
        raise CheckpointError(f"cannot resume {path}: hyper-parameters differ ({listing})")
