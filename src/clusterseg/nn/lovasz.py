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

__all__ = ["jaccard_loss_increments", "lovasz_hinge", "lovasz_hinge_grouped"]


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


def lovasz_hinge_grouped(
    logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, n_positive: torch.Tensor
) -> torch.Tensor:
    """Lovasz hinge of several binary problems given as a flat list of their elements [1]_.

    A problem may leave out elements whose hinge error is zero (or below a
    tolerance): they sort last, so the increments of the elements kept do not
    change, and they add at most ``tolerance`` in all (the increments of a
    problem are non-negative and sum to 1). ``n_positive`` must count every
    positive of each problem, the ones left out included. This is how
    :class:`~clusterseg.instances.loss.SpatialEmbeddingLoss` scores each object
    only on the pixels near it in embedding space instead of on the whole crop.

    Parameters
    ----------
    logits : Tensor of shape (M,)
        Scores of the elements kept, positive for "inside".
    labels : Tensor of shape (M,)
        Their ground truth (bool or 0/1).
    groups : integer Tensor of shape (M,)
        The problem of each element, in ``[0, G)``.
    n_positive : Tensor of shape (G,)
        Positives of each problem, including those left out.

    Returns
    -------
    Tensor of shape (G,)
        The loss of each problem; with no element left out, equal to
        :func:`lovasz_hinge` of each problem.

    Examples
    --------
    >>> logits = torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0])
    >>> labels = torch.tensor([1, 1, 0, 0, 1])
    >>> groups = torch.tensor([0, 0, 0, 0, 1])
    >>> [round(v, 4) for v in lovasz_hinge_grouped(logits, labels, groups, torch.tensor([2, 1])).tolist()]
    [0.6667, 2.0]
    """
    if not logits.shape == labels.shape == groups.shape or logits.ndim != 1:
        raise ValueError(f"logits {tuple(logits.shape)}, labels {tuple(labels.shape)} and groups "
                         f"{tuple(groups.shape)} must be equal 1-D shapes")
    n_groups = n_positive.shape[0]
    gt = labels.to(logits.dtype)
    errors = 1.0 - logits * (2.0 * gt - 1.0)
    # By group, then by decreasing error: one sort of a float64 key (group, then -error).
    key = errors.detach().double()
    if key.numel():
        key = groups.double() * (float(key.max() - key.min()) + 1.0) + (key.max() - key)
    order = torch.argsort(key, stable=True)
    groups, gt, errors = groups[order], gt[order], errors.index_select(0, order)
    # Within-group running counts: the global cumulative sums minus those before the group's first element.
    sizes = torch.bincount(groups, minlength=n_groups)
    start = (torch.cumsum(sizes, 0) - sizes)[groups]
    seen_true = torch.cumsum(gt.double(), 0)
    seen_false = torch.arange(1, gt.numel() + 1, device=gt.device, dtype=torch.float64) - seen_true
    true_in_group = seen_true - (seen_true - gt.double())[start]
    false_in_group = seen_false - (seen_false - (1.0 - gt.double()))[start]
    n_true = n_positive.to(torch.float64)[groups]
    jaccard = 1.0 - (n_true - true_in_group) / (n_true + false_in_group)
    previous = torch.cat([jaccard.new_zeros(1), jaccard[:-1]])
    is_first = torch.arange(gt.numel(), device=gt.device) == start
    increments = torch.where(is_first, jaccard, jaccard - previous).to(logits.dtype)
    losses = logits.new_zeros(n_groups)
    return losses.index_add(0, groups, torch.relu(errors) * increments)
