"""Lovasz hinge: a convex surrogate of the Jaccard (IoU) loss for binary masks.

Berman et al. [1]_ replace the Jaccard loss of a set of mispredicted pixels,
``Delta(M) = |M| / |G u M|`` (``G`` the true mask), by its Lovasz extension,
which is the convex closure of this submodular set function: evaluated on the
vector of hinge errors ``m_i = max(0, 1 - y_i s_i)`` (``s_i`` the logit,
``y_i`` in {-1, +1}) it is ``sum_i m_(i) [Delta(S_i) - Delta(S_{i-1})]`` with
the errors sorted in decreasing order and ``S_i`` the pixels of the ``i``
largest errors. It is piecewise linear in the logits, and on errors that are
0 or ``c`` it equals ``c`` times the Jaccard loss of the erroneous set.

References
----------
.. [1] M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovasz-softmax loss: a
       tractable surrogate for the optimization of the intersection-over-union
       measure in neural networks", CVPR 2018.
.. [2] L. Lovasz, "Submodular functions and convexity", Mathematical
       Programming The State of the Art, 1983.
"""

from __future__ import annotations

import torch

__all__ = ["jaccard_loss_increments", "lovasz_hinge"]


def jaccard_loss_increments(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Increments ``Delta(S_i) - Delta(S_{i-1})`` of the Jaccard loss along a sorted order.

    Parameters
    ----------
    gt_sorted : Tensor of shape (..., N)
        Ground-truth membership (0/1, any float dtype) of the pixels, in the
        order of decreasing error.

    Returns
    -------
    Tensor of shape (..., N)
        ``Delta(S_i) - Delta(S_{i-1})`` where ``Delta(S) = |S| / |G u S|``.
    """
    n_true = gt_sorted.sum(dim=-1, keepdim=True)
    # S_i = the first i pixels: 1 - Delta(S_i) = |G \ S_i| / |G u S_i|.
    intersection = n_true - gt_sorted.cumsum(dim=-1)
    union = n_true + (1.0 - gt_sorted).cumsum(dim=-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge loss of binary logits against a binary mask [1]_.

    Parameters
    ----------
    logits : Tensor of shape (..., N)
        Real-valued scores, positive for "inside"; leading dimensions are
        independent problems (e.g. one row per object).
    labels : Tensor of shape (..., N)
        Binary ground truth (bool or 0/1).

    Returns
    -------
    Tensor of shape (...)
        The loss of each problem (a 0-d tensor for 1-D input).

    Examples
    --------
    >>> logits = torch.tensor([1.0, 1.0, -1.0, 1.0])  # one false positive
    >>> labels = torch.tensor([1, 1, 0, 0])
    >>> round(float(lovasz_hinge(logits, labels)), 4)  # 2 * (1 - IoU) = 2 * (1 - 2/3)
    0.6667
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    if logits.shape[-1] == 0:
        raise ValueError("lovasz_hinge needs at least one element")
    gt = labels.to(logits.dtype)
    errors = 1.0 - logits * (2.0 * gt - 1.0)
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    increments = jaccard_loss_increments(torch.gather(gt, -1, order))
    return (torch.relu(errors_sorted) * increments).sum(dim=-1)
