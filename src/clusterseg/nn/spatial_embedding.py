"""Spatial embeddings: pixel coordinates plus predicted offsets, and Gaussian instance maps.

Following Neven et al. [1]_, a network predicts for every pixel ``i`` an offset
``o_i`` (2 channels), a bandwidth ``sigma_i`` (``n_sigma`` channels, 1 =
isotropic, 2 = separate x and y bandwidths) and one seed map per class. The
pixel's *spatial embedding* is ``e_i = x_i + tanh(o_i)`` where ``x_i`` are the
pixel's coordinates in units of ``pixel_size`` (``1/1024`` by default, so an
offset can reach about 1024 pixels). An instance ``k`` with centre ``C_k``
and raw bandwidth ``sigma_k`` claims pixel ``i`` with probability

``phi_k(e_i) = exp(-sum_d s_kd (e_id - C_kd)^2)``, ``s_k = exp(10 sigma_k)``,

so ``phi > 0.5`` is an ellipse around the centre of squared "radius"
``ln 2``. Coordinates are computed on the fly for any image size and tile
origin (no fixed ``xym`` grid to outgrow), so embeddings of overlapping tiles
agree.

Channel order of the raw network output: ``[offset_x, offset_y, sigma_1..n,
seed_1..m]`` (x = column, y = row).

References
----------
.. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "DEFAULT_PIXEL_SIZE",
    "SIGMA_SCALE",
    "coordinate_grid",
    "add_coordinates",
    "EmbeddingMaps",
    "decode_output",
    "bandwidth_scale",
    "gaussian_membership",
    "gaussian_membership_pairs",
    "membership_exponent",
    "sigma_for_radius",
]

#: Default coordinate units per pixel.
DEFAULT_PIXEL_SIZE = 1.0 / 1024
#: ``s = exp(SIGMA_SCALE * sigma)`` as in the paper's code.
SIGMA_SCALE = 10.0
#: ``phi > 0.5`` <=> squared scaled distance below ``ln 2``.
LOG2 = math.log(2.0)


def coordinate_grid(
    height: int,
    width: int,
    *,
    pixel_size: float = DEFAULT_PIXEL_SIZE,
    origin: tuple[int, int] = (0, 0),
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Pixel coordinates ``(2, H, W)``: channel 0 = x (column), 1 = y (row).

    ``origin`` is the (row, column) of the top-left pixel in the full image,
    so that tiles share one coordinate frame.
    """
    y = (torch.arange(height, device=device, dtype=torch.float64) + origin[0]) * pixel_size
    x = (torch.arange(width, device=device, dtype=torch.float64) + origin[1]) * pixel_size
    grid = torch.stack([x[None, :].expand(height, width), y[:, None].expand(height, width)])
    return grid.to(dtype)


def add_coordinates(offset: np.ndarray, *, pixel_size: float = DEFAULT_PIXEL_SIZE) -> np.ndarray:
    """Turn a ``(2, H, W)`` offset map into embeddings in place (``x + offset``), without a full grid.

    Equivalent to ``offset + coordinate_grid(H, W, pixel_size=...)`` but
    adds a row and a column vector by broadcasting, so large images need no
    extra full-size temporaries.
    """
    h, w = offset.shape[1:]
    offset[0] += (np.arange(w, dtype=np.float64) * pixel_size).astype(offset.dtype)[None, :]
    offset[1] += (np.arange(h, dtype=np.float64) * pixel_size).astype(offset.dtype)[:, None]
    return offset


class EmbeddingMaps(NamedTuple):
    """Decoded network output (all ``(B, C, H, W)``).

    Attributes
    ----------
    embedding : Tensor (B, 2, H, W)
        ``coordinates + tanh(offset)``.
    sigma : Tensor (B, n_sigma, H, W)
        Raw bandwidth (before ``exp(10 sigma)``).
    seed : Tensor (B, n_classes, H, W)
        Seed probabilities (sigmoid of the seed channels).
    """

    embedding: torch.Tensor
    sigma: torch.Tensor
    seed: torch.Tensor


def decode_output(
    raw: torch.Tensor,
    n_sigma: int,
    *,
    pixel_size: float = DEFAULT_PIXEL_SIZE,
    origin: tuple[int, int] = (0, 0),
) -> EmbeddingMaps:
    """Split a raw ``(B, 2 + n_sigma + n_classes, H, W)`` output into :class:`EmbeddingMaps`."""
    if raw.ndim != 4 or raw.shape[1] < 3 + n_sigma:
        raise ValueError(f"expected raw output (B, >= {3 + n_sigma}, H, W), got {tuple(raw.shape)}")
    grid = coordinate_grid(*raw.shape[-2:], pixel_size=pixel_size, origin=origin, device=raw.device, dtype=raw.dtype)
    embedding = grid + torch.tanh(raw[:, :2])
    return EmbeddingMaps(embedding, raw[:, 2 : 2 + n_sigma], torch.sigmoid(raw[:, 2 + n_sigma :]))


def bandwidth_scale(sigma: torch.Tensor) -> torch.Tensor:
    """``s = exp(SIGMA_SCALE * sigma)`` of ``(K, n_sigma)`` raw bandwidths, as ``(K, 2)`` (x, y)."""
    scale = torch.exp(SIGMA_SCALE * sigma)
    return scale.expand(-1, 2) if scale.shape[1] == 1 else scale


def membership_exponent(embedding: torch.Tensor, centres: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``-log phi_k(e_i) = sum_d s_kd (e_id - C_kd)^2`` of every pixel for every instance, ``(K, N)``.

    Arguments as :func:`gaussian_membership`; a threshold on ``phi`` is one on
    this exponent, without evaluating ``exp`` over every (instance, pixel) pair.
    """
    sq = (embedding[None, :, :] - centres[:, :, None]).square()  # (K, 2, N)
    return (bandwidth_scale(sigma)[:, :, None] * sq).sum(dim=1)


def gaussian_membership(embedding: torch.Tensor, centres: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``phi_k(e_i)`` of every pixel for every instance.

    Parameters
    ----------
    embedding : Tensor (2, N)
        Pixel embeddings.
    centres : Tensor (K, 2)
        Instance centres.
    sigma : Tensor (K, n_sigma)
        Raw bandwidths (``n_sigma`` 1 or 2).

    Returns
    -------
    Tensor (K, N)
    """
    return torch.exp(-membership_exponent(embedding, centres, sigma))


def gaussian_membership_pairs(embedding: torch.Tensor, centres: torch.Tensor, sigma: torch.Tensor,
                              instances: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """``phi_k(e_i)`` of the (instance ``k``, pixel ``i``) pairs given by two index vectors ``(M,)``.

    The same values as ``gaussian_membership(...)[instances, pixels]`` without the
    ``(K, N)`` tensor; gathered with ``index_select``, whose backward
    (``index_add``) is several times faster on the CPU than that of indexing.
    """
    offsets = embedding.index_select(1, pixels).T - centres.index_select(0, instances)
    return torch.exp(-(bandwidth_scale(sigma).index_select(0, instances) * offsets.square()).sum(dim=1))


def sigma_for_radius(radius: float, pixel_size: float = DEFAULT_PIXEL_SIZE) -> float:
    """The raw bandwidth whose Gaussian has ``phi = 0.5`` at ``radius`` pixels from its centre.

    ``phi = exp(-s d^2)`` with ``s = exp(SIGMA_SCALE * sigma)`` is 0.5 at
    ``d^2 = ln 2 / s``; the paper's initial bias ``sigma = 1`` is a radius of
    about 5.7 px at the default ``pixel_size``.

    Examples
    --------
    >>> round(sigma_for_radius(5.744), 3)
    1.0
    """
    if not radius > 0:
        raise ValueError(f"radius must be > 0 pixels, got {radius}")
    return math.log(LOG2 / (radius * pixel_size) ** 2) / SIGMA_SCALE
