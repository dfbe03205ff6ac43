"""Gradient Rescaling Module (GRM) of LNSNet: GAL and GBL.

Both layers are identities in the forward pass and only rescale gradients in
the backward pass (Zhu et al. [1]_, Sec. 3.2, Eq. 9-12):

* **GAL** (gradient adaptive layer) scales the gradient of every embedding
  channel ``c`` by ``psi_c = g_c / (g_c + m_c)``, where ``g`` is the mean
  reconstruction strength of the reconstruction head (Eq. 9) and ``m`` a memory
  of past strengths (Eq. 10, initialised to ones). The memory is a registered
  buffer, so it is saved in checkpoints.
* **GBL** (gradient bi-direction layer) scales the gradient of the *spatial*
  reconstruction channels at pixel ``n`` by ``1`` where the contour probability
  ``B_n <= eps`` and by ``-B_n`` where ``B_n > eps`` (Eq. 12).

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GradientAdaptiveFunction", "GradientBidirectionFunction", "GAL", "GBL", "gbl_scale"]


class GradientAdaptiveFunction(torch.autograd.Function):
    """Identity on ``z`` (B, C, H, W); backward multiplies channel ``c`` by ``scale[c]``."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(scale)
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (scale,) = ctx.saved_tensors
        return grad_out * scale.view(1, -1, 1, 1).to(grad_out.dtype), None


class GradientBidirectionFunction(torch.autograd.Function):
    """Identity on ``x`` (B, C, H, W); backward multiplies channels ``channels`` by ``psi`` (B, 1, H, W)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, psi: torch.Tensor, channels: tuple[int, ...]) -> torch.Tensor:
        ctx.save_for_backward(psi)
        ctx.channels = tuple(channels)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (psi,) = ctx.saved_tensors
        mask = torch.zeros(grad_out.shape[1], dtype=torch.bool, device=grad_out.device)
        mask[list(ctx.channels)] = True
        scale = torch.where(mask.view(1, -1, 1, 1), psi.to(grad_out.dtype), torch.ones_like(psi, dtype=grad_out.dtype))
        return grad_out * scale, None, None


def gbl_scale(boundary: torch.Tensor, eps: float = 0.7) -> torch.Tensor:
    """GBL gradient factor ``psi_b`` (Eq. 12): ``1`` where ``B <= eps`` else ``-B``.

    Parameters
    ----------
    boundary : tensor
        Contour (edge) probability in [0, 1], 1 = edge.
    eps : float, optional
        Threshold above which a pixel counts as a contour pixel.

    Returns
    -------
    psi : tensor, same shape as ``boundary``
    """
    return torch.where(boundary > eps, -boundary, torch.ones_like(boundary))


class GAL(nn.Module):
    """Gradient adaptive layer with its memory ``m`` kept as a buffer.

    Parameters
    ----------
    channels : int
        Number of embedding channels ``C``.
    momentum : float, optional
        ``lambda`` of Eq. 10, ``m <- lambda * g + (1 - lambda) * m``.
    mode : {"paper", "released"}, optional
        ``"paper"``: ``psi = g / (g + m)`` with ``m`` initialised to ones (Eq. 11).
        ``"released"``: ``psi = m / (g + m)`` as in the authors' released layer
        (use :meth:`reset_memory` with ``value=0`` to replicate it fully).

    Notes
    -----
    Forward input and output: (B, C, H, W). ``strength`` must be the current
    ``g`` (C,), computed from the reconstruction head by
    :meth:`clusterseg.nn.lnsnet.ReconstructionHead.strength`.
    """

    def __init__(self, channels: int, momentum: float = 0.5, mode: str = "paper"):
        super().__init__()
        if mode not in ("paper", "released"):
            raise ValueError(f"mode must be 'paper' or 'released', got {mode!r}")
        self.momentum = float(momentum)
        self.mode = mode
        self.register_buffer("memory", torch.ones(channels))

    def scale(self, strength: torch.Tensor) -> torch.Tensor:
        """Per-channel gradient factor ``psi`` (C,) for the reconstruction strength ``g``."""
        g = strength.detach()
        num = g if self.mode == "paper" else self.memory
        return num / (g + self.memory).clamp_min(1e-12)

    def forward(self, z: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        return GradientAdaptiveFunction.apply(z, self.scale(strength))

    @torch.no_grad()
    def update_memory(self, strength: torch.Tensor) -> None:
        """Eq. 10: ``m <- lambda * g + (1 - lambda) * m``."""
        self.memory.mul_(1.0 - self.momentum).add_(self.momentum * strength.detach().to(self.memory))

    @torch.no_grad()
    def reset_memory(self, value: float = 1.0) -> None:
        self.memory.fill_(value)


class GBL(nn.Module):
    """Gradient bi-direction layer on the spatial channels of the reconstruction.

    Parameters
    ----------
    eps : float, optional
        Contour threshold ``epsilon`` of Eq. 12.
    channels : tuple of int, optional
        Channels whose gradient is rescaled (the position channels, 3 and 4).

    Notes
    -----
    ``forward(x, boundary)``: ``x`` (B, C, H, W), ``boundary`` (B, 1, H, W) or
    (H, W) edge probability in [0, 1].
    """

    def __init__(self, eps: float = 0.7, channels: tuple[int, ...] = (3, 4)):
        super().__init__()
        self.eps = float(eps)
        self.channels = tuple(channels)

    def forward(self, x: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        if boundary.dim() == 2:
            boundary = boundary[None, None]
        psi = gbl_scale(boundary.to(x.dtype), self.eps)
        return GradientBidirectionFunction.apply(x, psi, self.channels)
