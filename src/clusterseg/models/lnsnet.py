"""LNSNet weights files and test-time adaptation: the model around :class:`~clusterseg.nn.lnsnet.LNSNet`.

Inference (:mod:`clusterseg.superpixels.lnsnet`) and the lifelong trainer
(:mod:`clusterseg.training.lifelong`) both load and save weights here, so
inference never imports the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .._config import OptionsMixin
from .._validation import check_nonnegative

from ..io.checkpoints import CheckpointError, load_checkpoint, model_checkpoint, save_checkpoint
from ..nn.lnsnet import LNSNet
from ..nn.precision import resolve_precision
from ..nn.lnsnet_objective import DEFAULT_COMPACTNESS, DEFAULT_HOMOGENEITY_WEIGHT, lnsnet_losses, set_phase

__all__ = ["FORMAT", "WEIGHTS_FORMAT", "LNSNetConfig", "save_lnsnet_weights", "load_lnsnet", "adapt_lnsnet"]

#: Format of LNSNet model files (:func:`clusterseg.io.checkpoints.model_checkpoint` layout).
FORMAT = "clusterseg.lnsnet"
FORMAT_VERSION = 2
#: The first weights files (``arch`` instead of ``config``); still read.
WEIGHTS_FORMAT = "clusterseg.lnsnet.weights/1"


@dataclass(frozen=True)
class LNSNetConfig(OptionsMixin):
    """Inference options of LNSNet superpixels (the one source of their defaults).

    Attributes
    ----------
    assignment : {"local", "global"}
        ``"local"`` compares each pixel with the seeds of the 3x3 neighbouring
        grid cells only (O(N), independent of K); ``"global"`` with every seed
        (O(N K), the paper's clustering layer).
    seed_layer : bool
        Shift the grid seeds with the seed estimation layer (``False``: grid centres).
    refine_steps : int
        Centre updates after the non-iterative first pass
        (:func:`clusterseg.nn.lnsnet.cluster_pixels`): every seed is replaced
        by the mean embedding and centroid of its pixels and the pixels are
        reassigned within the local window. ``0`` is the paper's single pass.
        The default (5) is measured better than SLIC on BSDS500
        (``benchmarks/results/superpixels_bsds_val.md``).
    spatial_weight : float
        Weight of the squared distance to the seed centroid, in grid cells,
        added to the embedding distance during the centre updates (SLIC's
        compactness in cell units). Unused when ``refine_steps=0``.
    colour_weight : float
        Weight of the squared CIE-Lab distance (L in [0, 100]) to the seed's
        mean colour, added during the centre updates. Unused when ``refine_steps=0``.
    adapt_steps : int
        Test-time adaptation: fine-tune a copy of the model on the image for
        this many iterations (feature phase of the training loss) first.
    adapt_lr : float
        Adam learning rate of the adaptation.
    contours : {"sobel", "canny"}
        Contour map used by GBL during adaptation.
    min_size_factor, max_size_factor : float
        Connectivity post-processing: fragments smaller than
        ``min_size_factor * N / K`` pixels are merged into a neighbour,
        preferring neighbours that stay below ``max_size_factor * N / K``.
    enforce_connectivity : bool
        Apply the post-processing (``False`` returns the raw seed labels).
    precision : {"auto", "float32", "bfloat16"}
        Precision of the embedder's convolutions. ``"auto"`` (default):
        bfloat16 where the CPU/GPU runs it natively
        (:mod:`clusterseg.nn.precision`), float32 elsewhere. On BSDS500 val,
        ASA, BR and UE at matched counts stay within 0.001 of float32
        (``benchmarks/results/lnsnet_count_speed.md``).
    """

    _what = "LNSNet"

    assignment: str = "local"
    seed_layer: bool = True
    refine_steps: int = 5
    spatial_weight: float = 1.0
    colour_weight: float = 0.01
    adapt_steps: int = 0
    adapt_lr: float = 3e-4
    contours: str = "sobel"
    min_size_factor: float = 0.25
    max_size_factor: float = 3.0
    enforce_connectivity: bool = True
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.assignment not in ("local", "global"):
            raise ValueError(f"assignment must be 'local' or 'global', got {self.assignment!r}")
        if int(self.adapt_steps) < 0:
            raise ValueError(f"adapt_steps must be >= 0, got {self.adapt_steps}")
        if int(self.refine_steps) != self.refine_steps or self.refine_steps < 0:
            raise ValueError(f"refine_steps must be an integer >= 0, got {self.refine_steps}")
        for name in ("spatial_weight", "colour_weight"):  # stored as floats, checked
            object.__setattr__(self, name, check_nonnegative(getattr(self, name), name))
        if self.min_size_factor < 0 or self.max_size_factor <= 0:
            raise ValueError("min_size_factor must be >= 0 and max_size_factor > 0")
        resolve_precision(self.precision)


def save_lnsnet_weights(model: LNSNet, path: str | Path, extra: dict | None = None, *, overwrite: bool = True) -> Path:
    """Write a small weights file (state dict incl. GAL memory + architecture) atomically.

    The layout is :func:`clusterseg.io.checkpoints.model_checkpoint` (format
    ``"clusterseg.lnsnet"``); ``extra`` goes to its metadata.
    """
    arch = {"max_shift": model.sel.max_shift, "alpha": model.alpha, "seed_window": model.seed_window}
    return save_checkpoint(model_checkpoint(FORMAT, FORMAT_VERSION, arch, model.state_dict(), extra), path,
                           overwrite=overwrite)


def load_lnsnet(path: str | Path) -> LNSNet:
    """Build an :class:`LNSNet` from a weights file, a training checkpoint or a raw state dict.

    Reads the current layout (``config`` + ``state_dict``), the first weights
    files (``"clusterseg.lnsnet.weights/1"``: ``arch`` + ``state_dict``), the
    trainer's checkpoints (``model`` + ``config["arch"]``) and bare state dicts.

    Raises
    ------
    clusterseg.io.checkpoints.CheckpointError
        If the file is missing, corrupt or holds no LNSNet weights.
    """
    return lnsnet_from_payload(load_checkpoint(path), path)


def lnsnet_from_payload(obj: dict, path: str | Path) -> LNSNet:
    """The :class:`LNSNet` of a loaded checkpoint dictionary (see :func:`load_lnsnet`; ``path`` names it in errors)."""
    arch = obj.get("config") if obj.get("format") == FORMAT else obj.get("arch", {})
    arch = arch if isinstance(arch, dict) else {}
    if "state_dict" in obj:
        sd = obj["state_dict"]
    elif "model" in obj:
        sd = obj["model"]
        arch = obj.get("config", {}).get("arch", arch)
    else:
        sd = obj
    # files without an architecture record predate seed windows: their networks read point seeds (seed_window 0)
    model = LNSNet(max_shift=float(arch.get("max_shift", 0.5)), alpha=float(arch.get("alpha", 1.0)),
                   seed_window=float(arch.get("seed_window", 0.0)))
    try:
        model.load_state_dict(sd)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path} does not hold LNSNet weights: {exc}") from exc
    return model.eval()


def adapt_lnsnet(
    model: LNSNet,
    x: torch.Tensor,
    boundary: torch.Tensor | None,
    n_segments: int,
    steps: int,
    lr: float = 3e-4,
    **loss_kwargs,
) -> LNSNet:
    """Fine-tune ``model`` in place on one image for ``steps`` feature-phase iterations.

    ``loss_kwargs`` go to :func:`lnsnet_losses`; unless given, the homogeneity
    loss is used with the trainer's defaults (weight 1, compactness 0.1).
    """
    loss_kwargs.setdefault("homogeneity_weight", DEFAULT_HOMOGENEITY_WEIGHT)
    loss_kwargs.setdefault("compactness", DEFAULT_COMPACTNESS)
    model.train()
    set_phase(model, "feature")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(int(steps)):
        losses = lnsnet_losses(model, x, boundary, n_segments, phase="feature", **loss_kwargs)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()
