"""Superpixel quality metrics.

All overlap measures are computed from one contingency table per ground truth
(:func:`numpy.bincount` over pixel-pair codes), boundary measures from one
Euclidean (or chessboard) distance transform per boundary map.

Conventions
-----------
* **Boundaries** (:func:`label_boundaries`): a pixel is a boundary pixel when
  its successor along any axis (the right or the bottom neighbour in 2-D)
  carries a different label. This gives thin (1-pixel) boundaries lying on one
  side of each label edge, the convention of the superpixel benchmark of
  Stutz et al. (2018). The same function is used for superpixels and for
  ground truths.
* **Tolerance**: a boundary pixel counts as hit when a boundary pixel of the
  other map lies within ``tolerance`` pixels, by default in Euclidean
  distance (a disk of radius ``tolerance``; ``window="square"`` uses the
  chessboard distance, i.e. a (2r+1) x (2r+1) square).
* **Several ground truths** (e.g. the 5-7 human segmentations of a BSDS500
  image): each function computes one value per ground truth and combines them
  according to ``aggregate``: ``"best"`` (the maximum, or the minimum for
  the under-segmentation error -- the convention of LNSNet and SSN),
  ``"mean"``, or ``None`` (the array of per-ground-truth values).

References
----------
.. [1] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
       state-of-the-art", Computer Vision and Image Understanding 166, 2018.
.. [2] M.-Y. Liu, O. Tuzel, S. Ramalingam, R. Chellappa, "Entropy rate
       superpixel segmentation", CVPR 2011 (achievable segmentation accuracy).
.. [3] P. Neubert, P. Protzel, "Superpixel benchmark and comparison",
       Forum Bildverarbeitung 2012 (corrected under-segmentation error).
.. [4] A. Schick, M. Fischer, R. Stiefelhagen, "Measuring and evaluating the
       compactness of superpixels", ICPR 2012.
.. [5] D. Martin, C. Fowlkes, J. Malik, "Learning to detect natural image
       boundaries using local brightness, color, and texture cues", TPAMI
       26(5), 2004 (boundary precision / recall, F-measure).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from ._aggregate import Aggregate
from ._aggregate import aggregate as _aggregate
from ._contingency import (
    as_label_list,
    check_label_pair,
    check_labels,
    contingency_table,
    relabel_consecutive,
    table_from_inverse,
)

__all__ = [
    "label_boundaries",
    "achievable_segmentation_accuracy",
    "boundary_recall",
    "boundary_precision",
    "undersegmentation_error",
    "compactness",
    "f_measure",
    "n_segments",
    "superpixel_scores",
]

Window = Literal["disk", "square"]


# --------------------------------------------------------------------------- helpers

def _check_tolerance(tolerance: float) -> float:
    tolerance = float(tolerance)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    return tolerance


def _distance_to(boundary: np.ndarray, window: Window) -> np.ndarray:
    """Distance of every pixel to the nearest ``True`` pixel of ``boundary``."""
    if not boundary.any():
        return np.full(boundary.shape, np.inf)
    if window == "disk":
        return ndi.distance_transform_edt(~boundary)
    if window == "square":
        return ndi.distance_transform_cdt(~boundary, metric="chessboard").astype(float)
    raise ValueError(f"window must be 'disk' or 'square', got {window!r}")


def _hit_fraction(boundary: np.ndarray, distance_to_other: np.ndarray, tolerance: float) -> float:
    """Fraction of ``boundary`` pixels within ``tolerance`` of the other map (1.0 if none)."""
    n = int(boundary.sum())
    if n == 0:
        return 1.0
    return float(np.count_nonzero(distance_to_other[boundary] <= tolerance) / n)


def _asa_from_table(table: np.ndarray) -> float:
    return float(table.max(axis=1).sum() / table.sum())


def _ue_from_table(table: np.ndarray) -> float:
    sizes = table.sum(axis=1, keepdims=True)
    return float(np.minimum(table, sizes - table).sum() / table.sum())


# --------------------------------------------------------------------------- public
def label_boundaries(labels: Any) -> np.ndarray:
    """Thin (1-pixel) boundary map of a label image.

    A pixel is marked when the next pixel along any axis (its right or its
    bottom neighbour for a 2-D image) has a different label. Each label edge
    is therefore marked exactly once, on its upper/left side, which is the
    convention of the superpixel benchmark of Stutz et al. [1]_.

    Parameters
    ----------
    labels : (M, N[, ...]) array of int
        Label map.

    Returns
    -------
    boundaries : ndarray of bool, same shape as ``labels``
        ``True`` on boundary pixels.

    References
    ----------
    .. [1] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
           state-of-the-art", CVIU 166, 2018.

    Examples
    --------
    >>> labels = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    >>> label_boundaries(labels).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 0, 0]])
    """
    labels = check_labels(labels)
    out = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        n = labels.shape[axis]
        if n < 2:
            continue
        head = [slice(None)] * labels.ndim
        tail = [slice(None)] * labels.ndim
        head[axis] = slice(0, n - 1)
        tail[axis] = slice(1, n)
        out[tuple(head)] |= labels[tuple(head)] != labels[tuple(tail)]
    return out


def n_segments(labels: Any) -> int:
    """Actual number of distinct labels (segments) in a label map.

    Parameters
    ----------
    labels : array of int
        Label map.

    Returns
    -------
    n : int
        Number of distinct label values.

    Examples
    --------
    >>> n_segments(np.array([[0, 0, 5], [7, 7, 5]]))
    3
    """
    return int(np.unique(check_labels(labels)).size)


def achievable_segmentation_accuracy(
    labels: Any, ground_truth: Any, *, aggregate: Aggregate = "best"
) -> float | np.ndarray:
    """Achievable segmentation accuracy (ASA) of superpixels.

    ``ASA = (1/N) sum_s max_g |s ∩ g|``: the pixel accuracy of the best
    segmentation obtainable by giving every superpixel ``s`` the ground-truth
    label ``g`` it overlaps most [1]_ [2]_.

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    aggregate : {"best", "mean", None}, optional
        How to combine several ground truths: maximum, mean, or return the
        per-ground-truth array.

    Returns
    -------
    asa : float or ndarray
        In [0, 1], higher is better.

    References
    ----------
    .. [1] M.-Y. Liu, O. Tuzel, S. Ramalingam, R. Chellappa, "Entropy rate
           superpixel segmentation", CVPR 2011.
    .. [2] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
           state-of-the-art", CVIU 166, 2018.

    Examples
    --------
    >>> sp = np.array([[0, 0, 1, 1], [2, 2, 3, 3]])
    >>> gt = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])
    >>> achievable_segmentation_accuracy(sp, gt)
    0.75
    """
    labels = check_labels(labels)
    values = [
        _asa_from_table(contingency_table(*check_label_pair(labels, g))[0])
        for g in as_label_list(ground_truth)
    ]
    return _aggregate(values, aggregate, higher_is_better=True)


def undersegmentation_error(
    labels: Any, ground_truth: Any, *, aggregate: Aggregate = "best"
) -> float | np.ndarray:
    """Corrected under-segmentation error (UE) of Neubert & Protzel [1]_.

    ``UE = (1/N) sum_g sum_{s ∩ g != ∅} min(|s ∩ g|, |s \\ g|)``: every
    superpixel straddling a ground-truth segment is charged the smaller of its
    part inside and its part outside that segment (so no penalty without
    leakage, unlike the original form of Levinshtein et al.). With several
    ground truths, ``"best"`` is the *minimum* over ground truths.

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    aggregate : {"best", "mean", None}, optional
        Minimum, mean, or per-ground-truth array.

    Returns
    -------
    ue : float or ndarray
        In [0, 1], lower is better; 0 iff every superpixel lies in one
        ground-truth segment.

    References
    ----------
    .. [1] P. Neubert, P. Protzel, "Superpixel benchmark and comparison",
           Forum Bildverarbeitung 2012.
    .. [2] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
           state-of-the-art", CVIU 166, 2018.

    Examples
    --------
    >>> sp = np.array([[0, 0, 1, 1], [2, 2, 3, 3]])
    >>> gt = np.array([[0, 0, 0, 1], [0, 0, 0, 1]])
    >>> undersegmentation_error(sp, gt)  # superpixels 1 and 3 straddle both segments
    0.5
    """
    labels = check_labels(labels)
    values = [
        _ue_from_table(contingency_table(*check_label_pair(labels, g))[0])
        for g in as_label_list(ground_truth)
    ]
    return _aggregate(values, aggregate, higher_is_better=False)


def boundary_recall(
    labels: Any,
    ground_truth: Any,
    *,
    tolerance: float = 2,
    window: Window = "disk",
    aggregate: Aggregate = "best",
) -> float | np.ndarray:
    """Boundary recall (BR): fraction of ground-truth boundary pixels hit.

    A ground-truth boundary pixel is recalled when a superpixel boundary
    pixel lies within ``tolerance`` pixels of it [1]_ [2]_. Boundaries are
    those of :func:`label_boundaries`. A ground truth without any boundary
    (a single segment) gives a vacuous recall of 1.

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    tolerance : float, optional
        Tolerance radius in pixels (default 2).
    window : {"disk", "square"}, optional
        Euclidean distance (disk of radius ``tolerance``, default) or
        chessboard distance (square of side ``2 * tolerance + 1``).
    aggregate : {"best", "mean", None}, optional
        Maximum, mean, or per-ground-truth array.

    Returns
    -------
    br : float or ndarray
        In [0, 1], higher is better.

    References
    ----------
    .. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to detect natural image
           boundaries using local brightness, color, and texture cues",
           TPAMI 26(5), 2004.
    .. [2] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
           state-of-the-art", CVIU 166, 2018.

    Examples
    --------
    >>> sp = np.array([[0, 0, 1, 1]] * 4)
    >>> gt = np.array([[0, 1, 1, 1]] * 4)
    >>> boundary_recall(sp, gt, tolerance=0), boundary_recall(sp, gt, tolerance=1)
    (0.0, 1.0)
    """
    tolerance = _check_tolerance(tolerance)
    labels = check_labels(labels)
    gts = as_label_list(ground_truth)
    for g in gts:
        check_label_pair(labels, g)
    dist_sp = _distance_to(label_boundaries(labels), window)
    values = [_hit_fraction(label_boundaries(g), dist_sp, tolerance) for g in gts]
    return _aggregate(values, aggregate, higher_is_better=True)


def boundary_precision(
    labels: Any,
    ground_truth: Any,
    *,
    tolerance: float = 2,
    window: Window = "disk",
    aggregate: Aggregate = "best",
) -> float | np.ndarray:
    """Boundary precision (BP): fraction of superpixel boundary pixels that are correct.

    A superpixel boundary pixel is correct when a ground-truth boundary pixel
    lies within ``tolerance`` pixels of it [1]_. A segmentation without any
    boundary (one segment) gives a vacuous precision of 1.

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    tolerance : float, optional
        Tolerance radius in pixels (default 2).
    window : {"disk", "square"}, optional
        Euclidean (default) or chessboard distance, see :func:`boundary_recall`.
    aggregate : {"best", "mean", None}, optional
        Maximum, mean, or per-ground-truth array.

    Returns
    -------
    bp : float or ndarray
        In [0, 1], higher is better.

    References
    ----------
    .. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to detect natural image
           boundaries using local brightness, color, and texture cues",
           TPAMI 26(5), 2004.

    Examples
    --------
    >>> sp = np.array([[0, 0, 1, 1]] * 4)
    >>> gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    >>> float(boundary_precision(sp, gt, tolerance=0))
    0.5
    """
    tolerance = _check_tolerance(tolerance)
    labels = check_labels(labels)
    gts = as_label_list(ground_truth)
    for g in gts:
        check_label_pair(labels, g)
    b_sp = label_boundaries(labels)
    values = [_hit_fraction(b_sp, _distance_to(label_boundaries(g), window), tolerance) for g in gts]
    return _aggregate(values, aggregate, higher_is_better=True)


def _perimeters(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Number of 4-connected pixel edges on each segment's outline (image border included)."""
    perim = np.zeros(n_labels, dtype=np.int64)
    for axis in range(2):
        a = np.moveaxis(labels, axis, 0)
        diff = a[1:] != a[:-1]
        perim += np.bincount(a[1:][diff], minlength=n_labels)
        perim += np.bincount(a[:-1][diff], minlength=n_labels)
        perim += np.bincount(a[0], minlength=n_labels) + np.bincount(a[-1], minlength=n_labels)
    return perim


def compactness(labels: Any) -> float:
    """Compactness (CO) of a superpixel segmentation, Schick et al. [1]_.

    ``CO = sum_s (|s| / N) * Q_s`` with the isoperimetric quotient
    ``Q_s = 4 * pi * A_s / P_s**2``. The area ``A_s`` is the pixel count and
    the perimeter ``P_s`` the number of pixel edges (4-connectivity) between
    ``s`` and other segments *or the image border*, i.e. the length of the
    outline of the union of its pixel squares. A 1-pixel or any square
    segment scores ``pi / 4``, which is the maximum attainable with this
    perimeter on the pixel grid; elongated or ragged segments score lower.

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map (2-D only).

    Returns
    -------
    co : float
        In (0, pi/4], higher is more compact.

    References
    ----------
    .. [1] A. Schick, M. Fischer, R. Stiefelhagen, "Measuring and evaluating
           the compactness of superpixels", ICPR 2012.

    Examples
    --------
    >>> round(compactness(np.zeros((4, 4), int)), 4)  # one 4x4 square
    0.7854
    """
    labels = check_labels(labels)
    if labels.ndim != 2:
        raise ValueError(f"compactness needs a 2-D label map, got shape {labels.shape}")
    inv, ids = relabel_consecutive(labels)
    inv = inv.reshape(labels.shape)
    n_labels = ids.size
    area = np.bincount(inv.ravel(), minlength=n_labels).astype(float)
    perim = _perimeters(inv, n_labels).astype(float)
    quotient = 4.0 * np.pi * area / perim**2
    return float(np.sum(area / labels.size * quotient))


def f_measure(recall: Any, precision: Any, *, beta: float = 1.0) -> float | np.ndarray:
    """F-beta score of boundary recall and precision.

    ``F = (1 + beta**2) * P * R / (beta**2 * P + R)``; 0 where ``P = R = 0``.
    ``beta > 1`` weighs recall more: LNSNet reports ``beta = 4`` for
    superpixels, where recall matters more than precision [2]_.

    Parameters
    ----------
    recall, precision : float or array_like
        Values in [0, 1] (broadcast together).
    beta : float, optional
        Weight of recall (default 1, the harmonic mean).

    Returns
    -------
    f : float or ndarray

    References
    ----------
    .. [1] C. J. van Rijsbergen, "Information Retrieval", 2nd ed., 1979.
    .. [2] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu, "Learning
           the superpixel in a non-iterative and lifelong manner", CVPR 2021.

    Examples
    --------
    >>> f_measure(0.5, 1.0)
    0.6666666666666666
    """
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    r = np.asarray(recall, dtype=float)
    p = np.asarray(precision, dtype=float)
    b2 = beta**2
    den = b2 * p + r
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(den > 0, (1 + b2) * p * r / np.where(den > 0, den, 1.0), 0.0)
    return float(f) if f.ndim == 0 else f


def superpixel_scores(
    labels: Any,
    ground_truth: Any,
    *,
    tolerance: float = 2,
    window: Window = "disk",
    beta: float = 4.0,
    aggregate: Aggregate = "best",
) -> dict[str, Any]:
    """All superpixel metrics at once, sharing the expensive intermediate results.

    One contingency table per ground truth (ASA, UE), one distance transform
    for the superpixel boundaries (BR) and one per ground truth (BP).

    Parameters
    ----------
    labels : (M, N) array of int
        Superpixel label map.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    tolerance : float, optional
        Boundary tolerance radius in pixels (default 2).
    window : {"disk", "square"}, optional
        Shape of the tolerance window, see :func:`boundary_recall`.
    beta : float, optional
        Beta of the extra F-beta score (default 4, as in LNSNet).
    aggregate : {"best", "mean", None}, optional
        How each ground-truth-dependent metric combines several ground truths
        (best = max, or min for UE). F1 and F-beta are computed per ground
        truth from that ground truth's BR and BP, then aggregated.

    Returns
    -------
    scores : dict
        Keys ``"n_segments"``, ``"compactness"``, ``"asa"``,
        ``"boundary_recall"``, ``"boundary_precision"``,
        ``"undersegmentation_error"``, ``"f1"``, ``"f_beta"`` and ``"beta"``.

    References
    ----------
    .. [1] D. Stutz, A. Hermans, B. Leibe, "Superpixels: An evaluation of the
           state-of-the-art", CVIU 166, 2018.

    Examples
    --------
    >>> sp = np.array([[0, 0, 1, 1]] * 4)
    >>> s = superpixel_scores(sp, sp)
    >>> s["asa"], s["boundary_recall"], s["undersegmentation_error"]
    (1.0, 1.0, 0.0)
    """
    tolerance = _check_tolerance(tolerance)
    labels = check_labels(labels)
    gts = as_label_list(ground_truth)
    for g in gts:
        check_label_pair(labels, g)
    b_sp = label_boundaries(labels)
    dist_sp = _distance_to(b_sp, window)
    inv_sp, ids_sp = relabel_consecutive(labels)
    asa, ue, br, bp = [], [], [], []
    for g in gts:
        inv_g, ids_g = relabel_consecutive(g)
        table = table_from_inverse(inv_sp, ids_sp.size, inv_g, ids_g.size)
        asa.append(_asa_from_table(table))
        ue.append(_ue_from_table(table))
        b_gt = label_boundaries(g)
        br.append(_hit_fraction(b_gt, dist_sp, tolerance))
        bp.append(_hit_fraction(b_sp, _distance_to(b_gt, window), tolerance))
    br_a, bp_a = np.array(br), np.array(bp)
    f1 = np.atleast_1d(f_measure(br_a, bp_a, beta=1.0))
    fb = np.atleast_1d(f_measure(br_a, bp_a, beta=beta))
    return {
        "n_segments": int(ids_sp.size),
        "compactness": compactness(labels) if labels.ndim == 2 else float("nan"),
        "asa": _aggregate(asa, aggregate),
        "boundary_recall": _aggregate(br_a, aggregate),
        "boundary_precision": _aggregate(bp_a, aggregate),
        "undersegmentation_error": _aggregate(ue, aggregate, higher_is_better=False),
        "f1": _aggregate(f1, aggregate),
        "f_beta": _aggregate(fb, aggregate),
        "beta": float(beta),
    }
