"""Differentiable losses on a superpixel graph.

Notation: M superpixels, K classes. ``P`` / ``Q`` are (M, K) soft assignments
(rows sum to one), ``A`` / ``W`` an (M, M) symmetric affinity matrix (dense or
``torch.sparse``), ``F`` raw (K, H, W) class logits of one image.

References
----------
.. [1] Shi, J., & Malik, J. (2000). Normalized cuts and image segmentation.
       IEEE TPAMI, 22(8), 888-905.
.. [2] Xia, X., & Kulis, B. (2017). W-Net: A deep model for fully unsupervised
       image segmentation. arXiv:1711.08506.
.. [3] Leng, K., et al. (2024). Unsupervised Few-Shot Image Segmentation with
       Dense Feature Learning and Sparse Clustering (SP-WNet). VISAPP 2024.
.. [4] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
       Unsupervised Image Segmentation. arXiv:2103.06031.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .pooling import _as_index, majority_vote, pool_mean

__all__ = [
    "soft_ncut_loss",
    "dsc_cut_loss",
    "continuity_loss",
    "neighbour_softmax",
    "pseudo_labels",
    "similarity_loss",
    "superpixel_smoothing_loss",
]


def _matmul(a, x):
    if a.is_sparse:
        return torch.sparse.mm(a, x)
    return a @ x


def _check_assignment(p: torch.Tensor, a) -> None:
    if not isinstance(p, torch.Tensor) or p.dim() != 2:
        raise ValueError(f"assignments must be an (M, K) tensor, got {getattr(p, 'shape', type(p))}")
    if tuple(a.shape) != (p.shape[0], p.shape[0]):
        raise ValueError(f"affinity must be ({p.shape[0]}, {p.shape[0]}), got {tuple(a.shape)}")


def soft_ncut_loss(probs: torch.Tensor, affinity, eps: float = 1e-8) -> torch.Tensor:
    """Soft normalised cut of a K-way soft partition [1]_ [2]_ [3]_.

    .. math::

        L_{cut} = \\frac{1}{K} \\sum_k \\Bigl(1 - \\frac{p_k^T A p_k}{d^T p_k}\\Bigr),
        \\qquad d = A 1.

    Ranges in ``[0, 1)``; 0 when no edge weight crosses classes.

    Parameters
    ----------
    probs : (M, K) tensor
        Soft assignment of every node (e.g. softmax of pooled logits).
    affinity : (M, M) tensor (dense or sparse)
    eps : float
        Guards empty classes (``d^T p_k = 0``).

    Returns
    -------
    Scalar tensor.
    """
    _check_assignment(probs, affinity)
    ones = probs.new_ones((probs.shape[0], 1))
    deg = _matmul(affinity, ones)[:, 0]  # (M,)
    ap = _matmul(affinity, probs)  # (M, K)
    assoc = (probs * ap).sum(0)  # (K,)  p_k^T A p_k
    volume = deg @ probs  # (K,)  d^T p_k
    k = probs.shape[1]
    return (1.0 - assoc / (volume + eps)).sum() / k


def dsc_cut_loss(probs: torch.Tensor, affinity, *, normalize: bool = False) -> torch.Tensor:
    """Unnormalised soft cut of Deep Superpixel Cut [4]_.

    .. math::

        L_2 = \\sum_k Q_k^T W (1 - Q_k),

    whose gradient is ``dL2/dQ_k = W 1 - W Q_k - (Q_k^T W)^T`` (for symmetric
    ``W``: ``W 1 - 2 W Q_k``).

    Parameters
    ----------
    probs : (M, K) tensor
        Soft partition Q.
    affinity : (M, M) tensor (dense or sparse)
        Similarity W.
    normalize : bool
        If True, divide by the total weight ``1^T W 1`` so that the value is the
        fraction of affinity cut, in ``[0, 1]`` (a scale-free variant for
        combining with a cross-entropy; clusterseg's DSC uses it).

    Returns
    -------
    Scalar tensor.
    """
    _check_assignment(probs, affinity)
    wq = _matmul(affinity, 1.0 - probs)  # (M, K) = W (1 - Q_k) for every k
    loss = (probs * wq).sum()
    if normalize:
        total = _matmul(affinity, probs.new_ones((probs.shape[0], 1))).sum()
        loss = loss / total.clamp_min(1e-12)
    return loss


def neighbour_softmax(edges, distances: torch.Tensor, n_nodes: int, tau: float = 0.0):
    """Continuity weights ``C_jl = softmax_l(tau * d_jl)`` over the neighbours l of j.

    Parameters
    ----------
    edges : (E, 2) int array or tensor
        Undirected edges, each listed once; both orientations are used.
    distances : (E,) tensor
        Edge distances ``d_jl``.
    n_nodes : int
    tau : float
        0: plain neighbour mean; large negative: nearest neighbour; large
        positive: farthest neighbour.

    Returns
    -------
    src, dst : (2E,) int64 tensors
        Directed edges ``j -> l``.
    weights : (2E,) tensor
        ``C_jl``; the weights leaving each node sum to one.
    """
    e = torch.as_tensor(np.asarray(edges.cpu() if isinstance(edges, torch.Tensor) else edges),
                        dtype=torch.int64, device=distances.device).reshape(-1, 2)
    if distances.shape != (e.shape[0],):
        raise ValueError(f"distances must have shape ({e.shape[0]},), got {tuple(distances.shape)}")
    src = torch.cat([e[:, 0], e[:, 1]])
    dst = torch.cat([e[:, 1], e[:, 0]])
    logits = tau * torch.cat([distances, distances])
    mx = torch.full((n_nodes,), -torch.inf, dtype=logits.dtype, device=logits.device)
    mx = mx.scatter_reduce(0, src, logits, reduce="amax", include_self=True)
    ex = torch.exp(logits - mx[src])
    den = ex.new_zeros(n_nodes).index_add_(0, src, ex)
    return src, dst, ex / den[src]


def continuity_loss(node_values: torch.Tensor, edges, distances: torch.Tensor, tau: float = 0.0) -> torch.Tensor:
    """SP-WNet continuity (adjacency) loss [3]_.

    .. math::

        L_{con} = \\operatorname{mean}_{j,k} \\bigl| \\bar F_{jk} - \\sum_l C_{jl} \\bar F_{lk} \\bigr|,
        \\qquad C_{jl} = \\operatorname{softmax}_{l \\in N(j)}(\\tau d_{jl}).

    Nodes without neighbours contribute zero.

    Parameters
    ----------
    node_values : (M, K) tensor
        Pooled logits ``F̄`` (node-major).
    edges : (E, 2) int array or tensor
        Undirected edges.
    distances : (E,) tensor
        Edge distances used for the neighbour weighting (usually fixed colour
        distances).
    tau : float
        Softmax temperature (SP-WNet cheetah demo: 1; hanyu: 0).
    """
    m = node_values.shape[0]
    src, dst, w = neighbour_softmax(edges, distances.to(node_values.dtype), m, tau)
    nbr = node_values.new_zeros(node_values.shape).index_add_(0, src, w[:, None] * node_values[dst])
    has_nbr = torch.zeros(m, dtype=torch.bool, device=node_values.device)
    has_nbr[src] = True
    nbr = torch.where(has_nbr[:, None], nbr, node_values)
    return (node_values - nbr).abs().mean()


def pseudo_labels(logits: torch.Tensor, superpixels, n_nodes: int | None = None, mode: str = "mean") -> torch.Tensor:
    """Superpixel-constant pseudo-labels from (K, H, W) logits (no gradient).

    ``mode="mean"``: argmax of the superpixel-mean logits (SP-WNet);
    ``mode="majority"``: majority of the pixel argmaxes (DSC, and Kanezaki's
    backprop segmentation).

    Returns
    -------
    (M,) int64 tensor of node classes.
    """
    with torch.no_grad():
        k = logits.shape[0]
        if mode == "mean":
            return pool_mean(logits, superpixels, n_nodes).argmax(1)
        if mode == "majority":
            return majority_vote(logits.argmax(0), superpixels, n_nodes, k)
    raise ValueError(f"mode must be 'mean' or 'majority', got {mode!r}")


def similarity_loss(logits: torch.Tensor, superpixels, n_nodes: int | None = None, mode: str = "mean",
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of pixel logits against superpixel pseudo-labels.

    SP-WNet's similarity loss / DSC's L1: the pseudo-label of every superpixel
    (see :func:`pseudo_labels`) is copied to its pixels and the mean pixel
    cross-entropy ``-log softmax(F)_{y}`` is returned. No gradient flows
    through the pseudo-labels.

    Parameters
    ----------
    logits : (K, H, W) tensor
    superpixels : (H, W) int array or tensor
    n_nodes : int, optional
    mode : {"mean", "majority"}
    weight : (K,) tensor, optional
        Class weights passed to :func:`torch.nn.functional.cross_entropy`.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (K, H, W), got {tuple(logits.shape)}")
    idx = _as_index(superpixels, logits.device)
    if tuple(idx.shape) != tuple(logits.shape[1:]):
        raise ValueError(f"superpixels {tuple(idx.shape)} do not match logits {tuple(logits.shape[1:])}")
    y = pseudo_labels(logits, idx, n_nodes, mode)[idx]
    return F.cross_entropy(logits[None], y[None], weight=weight)


def superpixel_smoothing_loss(recon: torch.Tensor, image: torch.Tensor, superpixels, n_nodes: int | None = None):
    """SuperAE k-means smoothing term [4]_.

    .. math::

        \\frac{1}{N} \\sum_i \\sum_j t_{ij} \\| x^R_i - v_j \\|^2, \\qquad
        v_j = \\frac{\\sum_i t_{ij} x_i}{\\sum_i t_{ij}},

    i.e. the squared distance of every reconstructed pixel to the mean
    *original* colour of its superpixel, averaged over pixels (the slides
    sum; the mean only rescales lambda).

    Parameters
    ----------
    recon, image : (C, H, W) tensors
    superpixels : (H, W) int array or tensor
    """
    if recon.shape != image.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and image {tuple(image.shape)} differ in shape")
    idx = _as_index(superpixels, recon.device)
    v = pool_mean(image.detach(), idx, n_nodes)  # (M, C)
    target = v[idx].permute(2, 0, 1)  # (C, H, W)
    return ((recon - target) ** 2).sum(0).mean()
