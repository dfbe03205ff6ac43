"""LNSNet weights files and test-time adaptation: the model around :class:`~clusterseg.nn.lnsnet.LNSNet`.

Inference (:mod:`clusterseg.superpixels.lnsnet`) and the lifelong trainer
(:mod:`clusterseg.training.lifelong`) both load and save weights here, so
inference never imports the trainer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from ..nn.lnsnet import LNSNet
from ..nn.lnsnet_objective import DEFAULT_COMPACTNESS, DEFAULT_HOMOGENEITY_WEIGHT, lnsnet_losses, set_phase

__all__ = ["WEIGHTS_FORMAT", "save_lnsnet_weights", "load_lnsnet", "adapt_lnsnet"]

WEIGHTS_FORMAT = "clusterseg.lnsnet.weights/1"


def save_lnsnet_weights(model: LNSNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write a small weights file (state dict incl. GAL memory + architecture) atomically."""
    obj = {
        "format": WEIGHTS_FORMAT,
        "arch": {"max_shift": model.sel.max_shift, "alpha": model.alpha, "seed_window": model.seed_window},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    if extra:
        obj["meta"] = extra
    return save_checkpoint(obj, path)


def load_lnsnet(path: str | Path) -> LNSNet:
    """Build an :class:`LNSNet` from a weights file, a training checkpoint or a raw state dict.

    Raises
    ------
    clusterseg.io.checkpoints.CheckpointError
        If the file is missing, corrupt or holds no LNSNet weights.
    """
    obj = load_checkpoint(path)
    arch = obj.get("arch", {}) if isinstance(obj.get("arch", {}), dict) else {}
    if "state_dict" in obj:
        sd = obj["state_dict"]
    elif "model" in obj:
        sd = obj["model"]
        arch = obj.get("config", {}).get("arch", arch)
    else:
        sd = obj
    # files without "arch" predate seed windows: their networks read point seeds (seed_window 0)
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
