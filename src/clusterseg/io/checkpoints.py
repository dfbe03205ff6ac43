"""Safe checkpoint files: atomic writes and ``weights_only`` loading.

A checkpoint is a plain ``dict`` of tensors, numbers, strings, lists and dicts
(no pickled classes), so it can be read with ``torch.load(weights_only=True)``.
Writes go through :func:`clusterseg.io.write.atomic_write` (a temporary file in the same directory, then
:func:`os.replace`), so an interrupted save never leaves a truncated file behind.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from .write import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "check_resume_config", "build_checked", "CheckpointError"]

T = TypeVar("T")


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


def model_checkpoint(fmt: str, version: int, config: Mapping[str, Any], state_dict: Mapping[str, Any],
                     metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The one layout of every clusterseg model file.

    ``{"format", "version", "config", "state_dict", "metadata"}``: the format
    names the model class (``clusterseg.models.load_model`` dispatches on it),
    ``config`` holds plain values that rebuild the architecture, and
    ``metadata`` (training data and command, scores, ...) gets the package
    version and the UTC time of this writing.
    """
    import datetime

    from .. import __version__

    meta = dict(metadata or {})
    meta["clusterseg_version"] = __version__  # of this writing, also when a loaded model is saved again
    meta["written_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {"format": fmt, "version": int(version), "config": dict(config),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "metadata": meta}


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
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty (0 bytes)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or contains non-allowlisted objects
        raise CheckpointError(f"cannot read checkpoint {path}: {_load_failure(exc)}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict (got {type(obj).__name__})")
    missing = [k for k in required_keys if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {missing}")
    return obj


def _load_failure(exc: Exception) -> str:
    """One line saying why ``torch.load`` failed (its weights-only message is a page long)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, pickle.UnpicklingError) or any("weights_only" in line for line in lines):
        detail = next((line for line in lines if "Unsupported global" in line or "Unpickler error" in line), "")
        return ("it holds Python objects other than tensors and plain data, which are refused for safety "
                f"(weights_only=True){': ' + detail if detail else ''}")
    return lines[0] if lines else type(exc).__name__


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


def build_checked(
    build: Callable[[], T], state_dict: Any, source: str, *, module: Callable[[T], torch.nn.Module] = lambda m: m
) -> T:
    """Build a model from a checkpoint's config only if its state dict fits, then load the weights.

    ``build()`` runs first on PyTorch's meta device, which allocates no
    memory, and every tensor shape it expects is compared with
    ``state_dict``: a corrupt or hostile config (say a network 60 times too
    wide) is refused before anything is allocated.

    Parameters
    ----------
    build : callable
        Makes the model from the checkpoint's config.
    state_dict : mapping of str to Tensor
        The checkpoint's weights.
    source : str
        The checkpoint (for messages).
    module : callable, optional
        The :class:`torch.nn.Module` inside what ``build`` returns.

    Raises
    ------
    CheckpointError
        For an invalid config, missing or unexpected keys, or a shape mismatch.
    """
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{source} does not hold a state dict of tensors")
    try:
        with torch.device("meta"):
            expected = module(build()).state_dict()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source} holds an invalid model configuration: {exc}") from exc
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        details = "; ".join(part for part in (
            f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shapes differ (stored vs config) {wrong[:3]}" if wrong else "") if part)
        raise CheckpointError(f"{source}: the weights do not match the model its config describes ({details})")
    model = build()
    module(model).load_state_dict(state_dict)
    return model
