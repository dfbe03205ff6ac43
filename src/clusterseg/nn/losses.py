"""Unsupervised LNSNet losses (Zhu et al. [1]_, Sec. 3.3, Eq. 13-19).

All functions work on the *local* candidate layout produced by
:func:`clusterseg.nn.lnsnet.local_candidates`: for every pixel, the Student-t
kernel values of ``R = (2r+1)^2`` candidate seeds (the seeds of the grid cells
around the pixel's cell). The candidates of the inner 3x3 cells are the
"top-n" nearest seeds of the range mask ``M`` (Eq. 15, ``n = 9``); with a
window radius of 2 the outer ring provides the out-of-range mass for the
regulariser ``l(P)`` (Eq. 17).

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
.. [2] J. Xie, R. Girshick, A. Farhadi, "Unsupervised Deep Embedding for
       Clustering Analysis", ICML 2016.
.. [3] V. Jampani, D. Sun, M.-Y. Liu, M.-H. Yang, J. Kautz, "Superpixel
       Sampling Networks", ECCV 2018 (the feature-reconstruction form of the
       homogeneity loss).
"""

from __future__ import annotations

import torch

__all__ = [
    "soft_assignment",
    "dec_target",
    "range_limited_clustering_loss",
    "range_regulariser",
    "reconstruction_loss",
    "seed_centroid_loss",
    "homogeneity_loss",
    "inner_window_mask",
]

_TINY = 1e-12


def inner_window_mask(radius: int, inner: int = 1, device=None) -> torch.Tensor:
    """(R,) bool mask of the window offsets within ``inner`` cells (the range mask of Eq. 15)."""
    offs = torch.arange(-radius, radius + 1, device=device)
    dr = offs[:, None].expand(-1, offs.numel()).reshape(-1)
    dc = offs[None, :].expand(offs.numel(), -1).reshape(-1)
    return (dr.abs() <= inner) & (dc.abs() <= inner)


def soft_assignment(kernel: torch.Tensor) -> torch.Tensor:
    """Normalise kernel values (R, ...) over the candidates (dim 0): ``P_ik`` of Eq. 6."""
    return kernel / kernel.sum(0, keepdim=True).clamp_min(_TINY)


def dec_target(p_range: torch.Tensor, index: torch.Tensor, n_seeds: int) -> torch.Tensor:
    """DEC target ``Q~`` (Eq. 16) of the range-limited assignment, detached.

    ``Q_ik = (P_ik^2 / f_k) / sum_j (P_ij^2 / f_j)`` with soft frequencies
    ``f_k = sum_i P_ik`` accumulated over every pixel that has seed ``k`` among
    its candidates.

    Parameters
    ----------
    p_range : (R, ...) tensor
        Range-limited assignment ``P~`` (zero outside the range mask).
    index : (R, ...) long tensor
        Seed index of every candidate.
    n_seeds : int

    Returns
    -------
    q : (R, ...) tensor, sums to 1 over dim 0 wherever ``p_range`` is non-zero.
    """
    p = p_range.detach()
    f = torch.zeros(n_seeds, dtype=p.dtype, device=p.device)
    f.index_add_(0, index.reshape(-1), p.reshape(-1))
    w = p * p / f[index].clamp_min(_TINY)
    return w / w.sum(0, keepdim=True).clamp_min(_TINY)


def range_limited_clustering_loss(
    kernel: torch.Tensor, index: torch.Tensor, in_range: torch.Tensor, n_seeds: int
) -> torch.Tensor:
    """KL(Q~ || P~) of Eq. 14 averaged over pixels (without the regulariser).

    Parameters
    ----------
    kernel : (R, ...) tensor
        Student-t kernel values of every candidate (0 for invalid candidates).
    index : (R, ...) long tensor
        Seed index of every candidate.
    in_range : (R, ...) bool tensor
        Range mask ``M`` (True for the n nearest seeds).
    n_seeds : int

    Returns
    -------
    loss : scalar tensor
        ``mean_i sum_k Q_ik (log Q_ik - log P~_ik)``; ``P`` is normalised over
        all candidates and then restricted to the range (not renormalised), so
        the loss also pushes mass into the range.
    """
    p = soft_assignment(kernel)
    p_range = p * in_range
    q = dec_target(p_range, index, n_seeds)
    kl = torch.where(q > 0, q * (torch.log(q.clamp_min(_TINY)) - torch.log(p_range.clamp_min(_TINY))), torch.zeros_like(q))
    return kl.sum(0).mean()


def range_regulariser(kernel: torch.Tensor, in_range: torch.Tensor) -> torch.Tensor:
    """``l(P)`` of Eq. 17: out-of-range over in-range assignment mass, averaged over pixels."""
    p = soft_assignment(kernel)
    inside = (p * in_range).sum(0)
    outside = (p * ~in_range).sum(0)
    return (outside / inside.clamp_min(_TINY)).mean()


def reconstruction_loss(
    recon: torch.Tensor, target: torch.Tensor, phi: float = 1.0, n_colour: int = 3
) -> torch.Tensor:
    """``L_r = MSE_colour + phi * MSE_spatial`` (Eq. 18).

    Parameters
    ----------
    recon, target : (B, C, H, W) tensors
        Reconstruction ``X^r`` and input features ``X``; the first ``n_colour``
        channels are colour, the rest position. To obtain the GBL form (Eq. 19),
        pass ``recon`` through :class:`clusterseg.nn.grm.GBL` first.
    phi : float
        Weight of the spatial term.
    """
    diff2 = (recon - target) ** 2
    return diff2[:, :n_colour].mean() + phi * diff2[:, n_colour:].mean()


def seed_centroid_loss(
    seed_rows: torch.Tensor,
    seed_cols: torch.Tensor,
    p_range: torch.Tensor,
    index: torch.Tensor,
    pix_rows: torch.Tensor,
    pix_cols: torch.Tensor,
    cell_h: float,
    cell_w: float,
) -> torch.Tensor:
    """Pull each seed towards the soft centroid of its pixels (in cell units, squared).

    The centroid ``c_k = sum_i P~_ik p_i / sum_i P~_ik`` is detached, so only the
    seed positions (i.e. the seed estimation layer) receive gradients. Seeds
    without any assigned mass are ignored. This is one k-means/SLIC centre
    update turned into a regression target, and makes the SEL trainable.

    Parameters
    ----------
    seed_rows, seed_cols : (K,) tensors
        Seed positions in pixels.
    p_range : (R, H, W) tensor
        Range-limited soft assignment.
    index : (R, H, W) long tensor
    pix_rows, pix_cols : (H, W) tensors
        Pixel coordinates.
    cell_h, cell_w : float
        Cell size used to normalise the distances.
    """
    k = seed_rows.shape[0]
    p = p_range.detach().reshape(p_range.shape[0], -1)
    idx = index.reshape(index.shape[0], -1)
    mass = torch.zeros(k, dtype=p.dtype, device=p.device).index_add_(0, idx.reshape(-1), p.reshape(-1))
    pr = (p * pix_rows.reshape(1, -1)).reshape(-1)
    pc = (p * pix_cols.reshape(1, -1)).reshape(-1)
    cr = torch.zeros(k, dtype=p.dtype, device=p.device).index_add_(0, idx.reshape(-1), pr)
    cc = torch.zeros(k, dtype=p.dtype, device=p.device).index_add_(0, idx.reshape(-1), pc)
    ok = mass > 1e-6
    if not bool(ok.any()):
        return seed_rows.sum() * 0.0
    cr = cr[ok] / mass[ok]
    cc = cc[ok] / mass[ok]
    return (((seed_rows[ok] - cr) / cell_h) ** 2 + ((seed_cols[ok] - cc) / cell_w) ** 2).mean()


def homogeneity_loss(p: torch.Tensor, index: torch.Tensor, n_seeds: int, features: torch.Tensor) -> torch.Tensor:
    """Soft superpixel homogeneity: features reconstructed from the soft superpixel means.

    Every seed ``k`` gets the soft mean ``c_k = sum_i P_ik f_i / sum_i P_ik`` of
    the pixel features ``f`` (e.g. colour and position in cell units), and every
    pixel is reconstructed as ``f^_i = sum_k P_ik c_k``. The loss is
    ``mean_i ||f_i - f^_i||^2``: small when the assignment groups pixels of
    similar colour into compact superpixels, which is what the hard one-pass
    assignment at inference needs (the unsupervised form of the
    reconstruction loss of Superpixel Sampling Networks [3]_). Gradients flow
    through ``P`` (and through ``c_k``) into the embedding and the seeds.

    Parameters
    ----------
    p : (R, H, W) tensor
        Soft assignment of every pixel to its ``R`` candidate seeds (rows sum to
        at most 1; zero for invalid candidates).
    index : (R, H, W) long tensor
        Seed index of every candidate.
    n_seeds : int
    features : (F, H, W) tensor
        Target features (not differentiated).

    Returns
    -------
    loss : scalar tensor
    """
    r = p.shape[0]
    f = features.reshape(features.shape[0], -1).t()  # (N, F)
    pf = p.reshape(r, -1)  # (R, N)
    idx = index.reshape(r, -1)
    mass = torch.zeros(n_seeds, dtype=p.dtype, device=p.device).index_add_(0, idx.reshape(-1), pf.reshape(-1))
    weighted = (pf[:, :, None] * f[None]).reshape(-1, f.shape[1])
    sums = torch.zeros(n_seeds, f.shape[1], dtype=p.dtype, device=p.device).index_add_(0, idx.reshape(-1), weighted)
    centres = sums / mass.clamp_min(_TINY)[:, None]
    recon = (pf[:, :, None] * centres[idx]).sum(0)  # (N, F)
    return ((recon - f) ** 2).sum(1).mean()
