"""Mixed precision: bfloat16 autocast where the hardware runs it natively, float32 elsewhere.

On CPUs with AVX512-BF16 or AMX, oneDNN runs bfloat16 convolutions about
twice as fast as float32 ones; on other CPUs bfloat16 is emulated and slower,
so :func:`autocast` only turns it on where :func:`bf16_supported` says so.
CUDA devices use bfloat16 when the GPU supports it.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Literal

import torch

__all__ = ["bf16_supported", "resolve_precision", "autocast", "PRECISIONS"]

#: Accepted values of ``precision`` arguments.
PRECISIONS = ("auto", "float32", "bfloat16")

Precision = Literal["auto", "float32", "bfloat16"]


@functools.lru_cache(maxsize=None)
def _cpu_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or a custom torch build: stay in float32
        return False


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively (not emulated)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return _cpu_bf16()
    return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"auto"`` -> ``"bfloat16"`` where supported, else ``"float32"``; other values are checked."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if bf16_supported(device) else "float32"
    return precision


def autocast(device: torch.device | str, precision: str = "auto") -> contextlib.AbstractContextManager:
    """Context manager running the enclosed forward pass in ``precision`` on ``device``.

    Outputs of autocast regions may be bfloat16: cast them with ``.float()``
    before losses and post-processing.
    """
    device = torch.device(device)
    if resolve_precision(precision, device) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
