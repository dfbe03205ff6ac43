"""Pooling of dense pixel features onto superpixels, and superpixel votes.

All functions work on a single image; features are laid out channel-first,
``(C, H, W)``, as produced by a network for one batch element.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pool_mean", "pool_sizes", "majority_vote", "unpool"]


def _as_index(labels, device=None) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(np.ascontiguousarray(labels))
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a numpy array or torch tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer label map, got dtype {labels.dtype}")
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative")
    return labels.to(device=device, dtype=torch.int64)


def pool_sizes(labels, n_nodes: int | None = None) -> torch.Tensor:
    """Number of pixels of every superpixel, ``(M,)`` int64 tensor."""
    idx = _as_index(labels).reshape(-1)
    m = int(idx.max()) + 1 if n_nodes is None else int(n_nodes)
    return torch.bincount(idx, minlength=m)


def pool_mean(features: torch.Tensor, labels, n_nodes: int | None = None) -> torch.Tensor:
    """Differentiable mean of pixel features over each superpixel (scatter mean).

    ``G_j = sum_{i in S_j} F_i / |S_j|``; the gradient of ``G_j`` with respect
    to a pixel feature ``F_i`` is ``1/|S_j|`` for ``i in S_j`` and 0 otherwise,
    which is the pooling step ``dG/dF`` of Deep Superpixel Cut [1]_.

    Parameters
    ----------
    features : (C, H, W) or (C, N) torch.Tensor
        Pixel features of one image.
    labels : (H, W) or (N,) int array or tensor
        Superpixel label of every pixel, values in ``[0, M)``.
    n_nodes : int, optional
        Number of superpixels M (default ``labels.max() + 1``). Superpixels
        without pixels get a zero feature.

    Returns
    -------
    (M, C) torch.Tensor
        Mean feature per superpixel, same dtype/device as ``features``.

    References
    ----------
    .. [1] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
           Unsupervised Image Segmentation. ICPR 2020, arXiv:2103.06031.

    Examples
    --------
    >>> f = torch.tensor([[[1., 2.], [3., 5.]]])
    >>> pool_mean(f, np.array([[0, 0], [1, 1]]))
    tensor([[1.5000],
            [4.0000]])
    """
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}")
    idx = _as_index(labels, features.device).reshape(-1)
    if features.dim() < 2:
        raise ValueError(f"features must be (C, H, W) or (C, N), got shape {tuple(features.shape)}")
    c = features.shape[0]
    flat = features.reshape(c, -1)
    if flat.shape[1] != idx.numel():
        raise ValueError(
            f"features has {flat.shape[1]} pixels but labels has {idx.numel()} "
            f"(features {tuple(features.shape)}, labels {tuple(np.shape(labels))})"
        )
    m = int(idx.max()) + 1 if n_nodes is None else int(n_nodes)
    if m <= int(idx.max()):
        raise ValueError(f"n_nodes={m} is smaller than labels.max() + 1")
    sums = flat.new_zeros((m, c)).index_add_(0, idx, flat.t())
    counts = torch.bincount(idx, minlength=m).clamp_min(1).to(flat.dtype)
    return sums / counts[:, None]


def majority_vote(pixel_labels, superpixels, n_nodes: int | None = None, n_classes: int | None = None):
    """Most frequent pixel label inside each superpixel.

    Ties go to the smallest label. Empty superpixels get label 0.

    Parameters
    ----------
    pixel_labels : (H, W) int array or tensor
        Per-pixel class (e.g. argmax of network logits), values in ``[0, K)``.
    superpixels : (H, W) int array or tensor
        Superpixel labels, values in ``[0, M)``.
    n_nodes, n_classes : int, optional
        M and K; default to the maxima + 1.

    Returns
    -------
    (M,) int64 array or tensor
        The voted class of each superpixel; a numpy array if ``pixel_labels``
        is a numpy array, a tensor otherwise.

    Examples
    --------
    >>> majority_vote(np.array([[0, 1, 1], [2, 2, 0]]), np.array([[0, 0, 0], [1, 1, 1]]))
    array([1, 2])
    """
    as_numpy = not isinstance(pixel_labels, torch.Tensor)
    cls = _as_index(pixel_labels).reshape(-1)
    sp_idx = _as_index(superpixels, cls.device).reshape(-1)
    if cls.numel() != sp_idx.numel():
        raise ValueError(f"pixel_labels and superpixels differ in size: {cls.numel()} vs {sp_idx.numel()}")
    m = int(sp_idx.max()) + 1 if n_nodes is None else int(n_nodes)
    k = int(cls.max()) + 1 if n_classes is None else int(n_classes)
    votes = torch.bincount(sp_idx * k + cls, minlength=m * k).reshape(m, k)
    out = votes.argmax(dim=1)
    return out.cpu().numpy() if as_numpy else out


def unpool(node_values, superpixels):
    """Copy per-superpixel values back to pixels: ``(M, ...)`` -> ``(H, W, ...)``."""
    if isinstance(node_values, torch.Tensor):
        return node_values[_as_index(superpixels, node_values.device)]
    return np.asarray(node_values)[np.asarray(superpixels)]
