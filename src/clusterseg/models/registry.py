"""One registry of every method clusterseg offers, and one way to load a learned model.

``list_models()`` names the shipped pretrained models, the methods that
learn on each image (DSC, SP-WNet) and the classical methods, like timm's
``list_models``; ``load_model(name_or_path)`` loads a shipped model by name
or any clusterseg checkpoint by path (the checkpoint's ``format`` key says
which class it holds), through one cache.

Loaders are named by entry point (``"module:attribute"``) and imported when
first used: the SP-WNet model class lives with the unsupervised methods
because it builds its superpixel graphs with :func:`clusterseg.superpixels`,
which sits above this layer, so the registry must not import it.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ModelEntry", "list_models", "model_info", "load_model", "weights_path", "WEIGHTS_DIR"]

#: Folder of the weights shipped inside the package.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

TASKS = ("superpixels", "unsupervised", "instances")
KINDS = ("pretrained", "per-image", "classical")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model or method.

    Attributes
    ----------
    name : str
        Registry name (``load_model(name)``, ``superpixels(method=...)``, ...).
    task : {"superpixels", "unsupervised", "instances"}
    kind : {"pretrained", "per-image", "classical"}
        Shipped weights; a network trained on the images it segments; no learning.
    summary : str
        One line: what it is, what it was trained on, how to call it.
    weights : str or None
        File name under :data:`WEIGHTS_DIR` (pretrained models only).
    loader : str or None
        ``"module:attribute"`` of the callable ``loader(path) -> model``.
    """

    name: str
    task: str
    kind: str
    summary: str
    weights: str | None = None
    loader: str | None = None


_LNSNET_LOADER = "clusterseg.models.lnsnet_model:LNSNetModel.load"
_SEM_LOADER = "clusterseg.models.spatial_embedding:SpatialEmbeddingModel.load"
_SPWNET_LOADER = "clusterseg.unsupervised.spwnet:SPWNetModel.load"

_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("lnsnet-bsds500", "superpixels", "pretrained",
               "LNSNet trained lifelong on BSDS500 train; superpixels(image, n, method='lnsnet')",
               "lnsnet_bsds500.pt", _LNSNET_LOADER),
    ModelEntry("dsb2018-nuclei", "instances", "pretrained",
               "spatial-embedding ERFNet trained on DSB2018 stage-1 nuclei; instances(image, model='dsb2018-nuclei')",
               "dsb2018_nuclei.pt", _SEM_LOADER),
    ModelEntry("dsc", "unsupervised", "per-image",
               "Deep Superpixel Cut, trained on each image; segment(image, k, method='dsc')"),
    ModelEntry("spwnet", "unsupervised", "per-image",
               "SP-WNet, trained on the image or on a few frames; segment(..., method='spwnet'), "
               "SPWNetModel.save/load", loader=_SPWNET_LOADER),
    *(ModelEntry(name, "superpixels", "classical", f"superpixels(image, n, method={name!r})")
      for name in ("slic", "snic", "felzenszwalb", "watershed", "seeds", "lsc", "opencv_slic")),
    ModelEntry("watershed-nuclei", "instances", "classical",
               "distance-transform watershed of a thresholded image; watershed_nuclei(image)"),
)
_BY_NAME = {e.name: e for e in _ENTRIES}

#: Checkpoint ``format`` values and the loader that reads each.
_FORMATS: dict[str, str] = {
    "clusterseg.lnsnet": _LNSNET_LOADER,
    "clusterseg.lnsnet.weights/1": _LNSNET_LOADER,
    "clusterseg.lnsnet.train/1": _LNSNET_LOADER,  # the lifelong trainer's checkpoint.pt
    "clusterseg.spatial_embedding": _SEM_LOADER,
    "clusterseg.spwnet": _SPWNET_LOADER,
}


def list_models(task: str | None = None, kind: str | None = None) -> list[str]:
    """Names of the registered models and methods, optionally of one task and / or kind.

    Examples
    --------
    >>> list_models(kind="pretrained")
    ['lnsnet-bsds500', 'dsb2018-nuclei']
    >>> "dsc" in list_models(task="unsupervised")
    True
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [e.name for e in _ENTRIES if task in (None, e.task) and kind in (None, e.kind)]


def model_info(name: str) -> ModelEntry:
    """The registry entry of ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; list_models() gives {', '.join(_BY_NAME)}") from None


def weights_path(name: str) -> Path:
    """Path of a shipped model's weights file (FileNotFoundError if the installation lacks it)."""
    entry = model_info(name)
    if entry.weights is None:
        raise ValueError(f"{name!r} is a {entry.kind} method without shipped weights: {entry.summary}")
    path = WEIGHTS_DIR / entry.weights
    if not path.is_file():
        raise FileNotFoundError(f"the shipped model {name!r} is missing from the installation ({path})")
    return path


def _resolve(entry_point: str) -> Callable[..., Any]:
    module, _, attr = entry_point.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def loader_for(path: str | os.PathLike) -> Callable[..., Any]:
    """The loader of a checkpoint file, from its ``format`` key, or that of the model inside a training
    checkpoint (files without either are LNSNet's older ones)."""
    from ..io.checkpoints import CheckpointError, load_checkpoint  # torch: only when a model is loaded

    payload = load_checkpoint(path)
    fmt = payload.get("format") if isinstance(payload, dict) else None
    inner = payload.get("model") if isinstance(payload, dict) else None
    if fmt is None and isinstance(inner, dict) and "format" in inner:
        fmt = inner["format"]  # a training run's last.pt: the model inside names itself
    if fmt is None:
        return _resolve(_LNSNET_LOADER)
    if fmt not in _FORMATS:
        raise CheckpointError(f"'{path}' has the unknown checkpoint format {fmt!r}; known: {', '.join(_FORMATS)}")
    return _resolve(_FORMATS[fmt])


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime: float):
    return loader_for(path)(path)


def load_model(name_or_path: str | os.PathLike, *, cache: bool = True):
    """Load a shipped model by name, or any clusterseg checkpoint by path.

    Parameters
    ----------
    name_or_path : str or path
        A name from ``list_models(kind="pretrained")`` or a checkpoint file
        (LNSNet weights / training checkpoint, spatial-embedding model,
        SP-WNet model).
    cache : bool
        Reuse a model already loaded from the same unchanged file (one cache
        for every model; do not modify a cached model in place, copy it).

    Returns
    -------
    The model, with the protocol ``save(path)``, ``predict(image, ...)`` and
    ``config``: :class:`~clusterseg.models.lnsnet_model.LNSNetModel` (its
    network is ``.net``),
    :class:`~clusterseg.models.spatial_embedding.SpatialEmbeddingModel` or
    :class:`~clusterseg.unsupervised.spwnet.SPWNetModel`, in eval mode.

    Raises
    ------
    ValueError
        For a per-image or classical method name (nothing to load).
    FileNotFoundError
        For a name that is not registered and not a file.
    clusterseg.io.checkpoints.CheckpointError
        For a file that is not a clusterseg checkpoint.
    """
    key = os.fspath(name_or_path)
    if key in _BY_NAME:
        path = weights_path(key)
    else:
        path = Path(key)
        if not path.is_file():
            raise FileNotFoundError(f"model {key!r} is neither a registered model ({', '.join(_BY_NAME)}) "
                                    "nor an existing file")
    path = path.resolve()
    if not cache:
        return loader_for(path)(path)
    return _cached(str(path), path.stat().st_mtime)
