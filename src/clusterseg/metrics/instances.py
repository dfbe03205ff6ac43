"""Instance segmentation metrics for label maps (0 = background, 1.. = objects).

Two families that are easy to confuse, named apart on purpose:

* **Matching at one IoU threshold** (:func:`match_instances`,
  :func:`match_instances_dataset`): an optimal one-to-one matching of
  predicted to true objects with IoU >= threshold, giving TP / FP / FN,
  precision, recall, F1, the mean IoU of the matched pairs and the
  **DSB accuracy** ``TP / (TP + FP + FN)`` -- the "accuracy" of the 2018
  Data Science Bowl and of StarDist (sometimes, confusingly, called
  "average precision" there). It uses no confidence scores.
* **COCO average precision** (:func:`average_precision`): predictions are
  ranked by a per-instance score over the whole dataset, greedily matched in
  that order, and the area under the interpolated precision-recall curve
  (COCO 101-point interpolation) is averaged over IoU thresholds
  0.50:0.05:0.95 (``ap``); ``ap50`` and ``ap75`` at single thresholds.

IoU matrices come from one contingency table per image
(:func:`numpy.bincount`).

References
----------
.. [1] T.-Y. Lin et al., "Microsoft COCO: Common objects in context",
       ECCV 2014; COCO detection evaluation, https://cocodataset.org/#detection-eval
.. [2] M. Cordts et al., "The Cityscapes dataset for semantic urban scene
       understanding", CVPR 2016.
.. [3] J. C. Caicedo et al., "Nucleus segmentation across imaging experiments:
       the 2018 Data Science Bowl", Nature Methods 16, 2019.
.. [4] U. Schmidt, M. Weigert, C. Broaddus, G. Myers, "Cell detection with
       star-convex polygons", MICCAI 2018 (StarDist).
.. [5] H. Scharr et al., "Leaf segmentation in plant phenotyping: a collation
       study", Machine Vision and Applications 27, 2016 (symmetric best Dice
       and difference in count, the CVPPP leaf-segmentation scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._contingency import check_label_pair, contingency_table

__all__ = [
    "instance_iou",
    "InstanceMatching",
    "match_instances",
    "match_instances_dataset",
    "AveragePrecision",
    "average_precision",
    "COCO_IOU_THRESHOLDS",
    "DSBScore",
    "dsb_score",
    "instance_scores",
    "best_dice",
    "symmetric_best_dice",
    "difference_in_count",
]

#: IoU thresholds 0.50, 0.55, ..., 0.95 of COCO AP.
COCO_IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)


def _check_instance_pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = check_label_pair(pred, gt, names=("pred", "gt"))
    for name, arr in (("pred", p), ("gt", g)):
        if arr.min() < 0:
            raise ValueError(f"{name} has negative labels; use 0 for background and 1.. for instances")
    return p, g


def _check_threshold(t: float, name: str = "iou_threshold") -> float:
    t = float(t)
    if not (0.0 < t <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {t}")
    return t


def _iou_checked(p: np.ndarray, g: np.ndarray):
    table, ids_p, ids_g = contingency_table(p, g)
    area_p = table.sum(axis=1)
    area_g = table.sum(axis=0)
    rows = ids_p != 0
    cols = ids_g != 0
    inter = table[np.ix_(rows, cols)]
    union = area_p[rows, None] + area_g[None, cols] - inter
    iou = inter / union
    return iou, ids_p[rows], ids_g[cols], area_p[rows]


def instance_iou(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every predicted instance with every true instance.

    Parameters
    ----------
    pred, gt : (M, N[, ...]) array of int
        Instance label maps; 0 is background, positive values are instances.

    Returns
    -------
    iou : ndarray of float, shape (n_pred, n_gt)
        ``|p ∩ g| / |p ∪ g|``.
    pred_ids, gt_ids : ndarray of int
        Instance labels of the rows and columns (sorted, 0 excluded).

    Examples
    --------
    >>> iou, p, g = instance_iou(np.array([[1, 1, 0, 2]]), np.array([[1, 0, 0, 2]]))
    >>> iou
    array([[0.5, 0. ],
           [0. , 1. ]])
    """
    p, g = _check_instance_pair(pred, gt)
    iou, ids_p, ids_g, _ = _iou_checked(p, g)
    return iou, ids_p, ids_g


def _optimal_matching(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality matching among pairs with IoU >= threshold, ties by total IoU."""
    valid = iou >= threshold
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    sub_valid = valid[np.ix_(rows, cols)]
    sub_iou = iou[np.ix_(rows, cols)]
    k = min(rows.size, cols.size)
    # each valid pair weighs 1 + iou / (k + 1): the IoU term of at most k pairs sums
    # to < 1, so the number of matches is maximised first, then the total IoU.
    weight = np.where(sub_valid, 1.0 + sub_iou / (k + 1), 0.0)
    r, c = linear_sum_assignment(weight, maximize=True)
    keep = sub_valid[r, c]
    return rows[r[keep]], cols[c[keep]]


@dataclass(frozen=True)
class InstanceMatching:
    """Result of :func:`match_instances` / :func:`match_instances_dataset`.

    Attributes
    ----------
    iou_threshold : float
        Minimum IoU of a match.
    n_pred, n_gt : int
        Numbers of predicted and true instances.
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true instances.
    precision, recall, f1 : float
        ``tp / n_pred``, ``tp / n_gt``, ``2 tp / (n_pred + n_gt)``.
    dsb_accuracy : float
        ``tp / (tp + fp + fn)``: the DSB2018 / StarDist "accuracy" (not COCO
        AP).
    mean_matched_iou : float
        Mean IoU of the matched pairs (NaN when there is none).
    matched_pred, matched_gt : ndarray of int
        Labels of the matched pairs.
    matched_iou : ndarray of float
        IoU of the matched pairs.
    matched_image : ndarray of int
        Image index of each matched pair (all 0 for a single image).

    All ratios are 1 when both images hold no instance, and 0 for other
    0 / 0 cases.
    """

    iou_threshold: float
    n_pred: int
    n_gt: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    dsb_accuracy: float
    mean_matched_iou: float
    matched_pred: np.ndarray = field(repr=False)
    matched_gt: np.ndarray = field(repr=False)
    matched_iou: np.ndarray = field(repr=False)
    matched_image: np.ndarray = field(repr=False)


def _summarise(threshold, n_pred, n_gt, mp, mg, mi, mimg) -> InstanceMatching:
    tp = int(mi.size)
    fp, fn = n_pred - tp, n_gt - tp
    if n_pred == 0 and n_gt == 0:
        precision = recall = f1 = acc = 1.0
    else:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gt if n_gt else 0.0
        f1 = 2 * tp / (n_pred + n_gt)
        acc = tp / (tp + fp + fn)
    return InstanceMatching(
        iou_threshold=threshold,
        n_pred=int(n_pred),
        n_gt=int(n_gt),
        tp=tp,
        fp=int(fp),
        fn=int(fn),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        dsb_accuracy=float(acc),
        mean_matched_iou=float(mi.mean()) if tp else float("nan"),
        matched_pred=mp,
        matched_gt=mg,
        matched_iou=mi,
        matched_image=mimg,
    )


def _match_one(p: np.ndarray, g: np.ndarray, threshold: float):
    iou, ids_p, ids_g, _ = _iou_checked(p, g)
    r, c = _optimal_matching(iou, threshold)
    return ids_p.size, ids_g.size, ids_p[r], ids_g[c], iou[r, c]


def match_instances(pred: Any, gt: Any, *, iou_threshold: float = 0.5) -> InstanceMatching:
    """Optimal one-to-one matching of predicted to true instances at an IoU threshold.

    Pairs with ``IoU >= iou_threshold`` are candidates; the matching with the
    most pairs (ties broken by the largest total IoU) is found with
    :func:`scipy.optimize.linear_sum_assignment`. For thresholds above 0.5
    each object has at most one candidate, so this equals greedy matching.

    Parameters
    ----------
    pred, gt : (M, N[, ...]) array of int
        Instance label maps (0 = background).
    iou_threshold : float, optional
        Minimum IoU of a match, in (0, 1] (default 0.5).

    Returns
    -------
    matching : InstanceMatching
        TP/FP/FN counts, precision, recall, F1, ``dsb_accuracy`` (DSB2018 /
        StarDist accuracy ``TP / (TP + FP + FN)``), ``mean_matched_iou`` and
        the matched pairs.

    References
    ----------
    .. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging
           experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.
    .. [2] U. Schmidt, M. Weigert, C. Broaddus, G. Myers, "Cell detection
           with star-convex polygons", MICCAI 2018.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2, 0]])
    >>> pred = np.array([[1, 1, 0, 2, 0, 3]])
    >>> m = match_instances(pred, gt)
    >>> m.tp, m.fp, m.fn, m.dsb_accuracy, m.mean_matched_iou
    (2, 1, 0, 0.6666666666666666, 0.75)
    """
    threshold = _check_threshold(iou_threshold)
    p, g = _check_instance_pair(pred, gt)
    n_p, n_g, mp, mg, mi = _match_one(p, g, threshold)
    return _summarise(threshold, n_p, n_g, mp, mg, mi, np.zeros(mi.size, dtype=np.intp))


def _as_image_list(x: Any, name: str) -> list:
    if isinstance(x, np.ndarray) and x.dtype != object:
        return [x]
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.dtype == object):
        items = list(x)
        if not items:
            raise ValueError(f"{name} is empty: no images")
        return items
    raise ValueError(f"{name} must be a label array or a list of label arrays, got {type(x).__name__}")


def _image_pairs(preds: Any, gts: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    preds = _as_image_list(preds, "preds")
    gts = _as_image_list(gts, "gts")
    if len(preds) != len(gts):
        raise ValueError(f"preds has {len(preds)} images but gts has {len(gts)}")
    return [_check_instance_pair(p, g) for p, g in zip(preds, gts)]


def match_instances_dataset(
    preds: Sequence[Any], gts: Sequence[Any], *, iou_threshold: float = 0.5
) -> InstanceMatching:
    """:func:`match_instances` over a dataset, with TP/FP/FN summed over images.

    Parameters
    ----------
    preds, gts : sequence of arrays of int
        Predicted and true instance label maps, image by image.
    iou_threshold : float, optional
        Minimum IoU of a match (default 0.5).

    Returns
    -------
    matching : InstanceMatching
        Dataset-level counts and ratios (micro-average); ``matched_image``
        tells which image each matched pair comes from.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> m = match_instances_dataset([a, a], [a, np.zeros_like(a)])
    >>> m.tp, m.fp, m.fn, m.dsb_accuracy
    (2, 2, 0, 0.5)
    """
    threshold = _check_threshold(iou_threshold)
    n_p = n_g = 0
    mps, mgs, mis, mims = [], [], [], []
    for i, (p, g) in enumerate(_image_pairs(preds, gts)):
        a, b, mp, mg, mi = _match_one(p, g, threshold)
        n_p += a
        n_g += b
        mps.append(mp)
        mgs.append(mg)
        mis.append(mi)
        mims.append(np.full(mi.size, i, dtype=np.intp))
    return _summarise(
        threshold,
        n_p,
        n_g,
        np.concatenate(mps),
        np.concatenate(mgs),
        np.concatenate(mis),
        np.concatenate(mims),
    )


@dataclass(frozen=True)
class AveragePrecision:
    """Result of :func:`average_precision` (COCO-style AP, not DSB accuracy).

    Attributes
    ----------
    ap : float
        Mean of ``ap_per_threshold`` (COCO "AP" with the default thresholds).
    ap50, ap75 : float
        AP at IoU 0.5 and 0.75.
    iou_thresholds : ndarray
        The thresholds averaged into ``ap``.
    ap_per_threshold : ndarray
        AP at each threshold.
    n_pred, n_gt : int
        Instances over the dataset.
    """

    ap: float
    ap50: float
    ap75: float
    iou_thresholds: np.ndarray
    ap_per_threshold: np.ndarray
    n_pred: int
    n_gt: int


def _instance_scores(entry: Any, ids: np.ndarray, areas: np.ndarray, image: int) -> np.ndarray:
    if entry is None:
        return areas.astype(float)
    if isinstance(entry, Mapping):
        try:
            out = np.array([float(entry[int(i)]) for i in ids])
        except KeyError as exc:
            raise ValueError(f"scores[{image}] has no score for instance label {exc.args[0]}") from None
    else:
        arr = np.asarray(entry, dtype=float)
        if arr.ndim != 1:
            raise ValueError(
                f"scores[{image}] must be 1-D (score of label l at index l), got shape {arr.shape}"
            )
        if ids.size and ids.max() >= arr.size:
            raise ValueError(
                f"scores[{image}] has {arr.size} entries but the image has instance label {ids.max()}"
            )
        out = arr[ids]
    if not np.all(np.isfinite(out)):
        raise ValueError(f"scores[{image}] contains NaN or infinite values")
    return out


def _greedy_tp(iou: np.ndarray, order: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCO greedy matching: (n_thresholds, n_pred) bool TP flags, preds visited in ``order``."""
    n_t, n_pred = thresholds.size, iou.shape[0]
    tp = np.zeros((n_t, n_pred), dtype=bool)
    taken = np.zeros((n_t, iou.shape[1]), dtype=bool)
    lowest = thresholds.min()
    for k in order:
        cols = np.flatnonzero(iou[k] >= lowest)
        if cols.size == 0:
            continue
        row = iou[k, cols]
        cand = (row[None, :] >= thresholds[:, None]) & ~taken[:, cols]
        masked = np.where(cand, row[None, :], -1.0)
        best = np.argmax(masked, axis=1)
        hit = masked[np.arange(n_t), best] >= 0
        taken[np.flatnonzero(hit), cols[best[hit]]] = True
        tp[hit, k] = True
    return tp


def _coco_ap(tp_sorted: np.ndarray, n_gt: int) -> np.ndarray:
    """101-point interpolated AP of each row of TP flags (predictions in ranked order)."""
    n_t, n = tp_sorted.shape
    recall_points = np.linspace(0.0, 1.0, 101)
    out = np.zeros(n_t)
    if n == 0:
        return out
    ctp = np.cumsum(tp_sorted, axis=1)
    cfp = np.cumsum(~tp_sorted, axis=1)
    for t in range(n_t):
        recall = ctp[t] / n_gt
        precision = ctp[t] / (ctp[t] + cfp[t])
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, recall_points, side="left")
        q = np.where(idx < n, envelope[np.minimum(idx, n - 1)], 0.0)
        out[t] = q.mean()
    return out


def average_precision(
    preds: Any,
    gts: Any,
    scores: Sequence[Any] | None = None,
    *,
    iou_thresholds: Any = COCO_IOU_THRESHOLDS,
) -> AveragePrecision:
    """COCO-style average precision of instance segmentations over a dataset.

    For each IoU threshold ``t``: all predicted instances of all images are
    ranked by score (descending; ties keep image order, then the raster order
    of the instances' first pixels, never the label values);
    inside each image they are matched greedily in that order, each to the
    still-unmatched true instance of highest IoU with ``IoU >= t``. The
    precision-recall curve of the ranking is made monotone (precision
    envelope) and sampled at the 101 recall points 0, 0.01, ..., 1 (COCO
    101-point interpolation; precision 0 beyond the highest recall reached).
    ``ap`` is the mean over thresholds -- COCO "AP" for the default
    thresholds 0.50:0.05:0.95 -- and ``ap50`` / ``ap75`` the values at 0.5 and
    0.75. This is *not* the DSB2018 accuracy, see
    :attr:`InstanceMatching.dsb_accuracy`.

    Parameters
    ----------
    preds, gts : array of int or sequence of arrays of int
        Predicted and true instance label maps (0 = background), one per
        image.
    scores : sequence, optional
        Confidence of every predicted instance, one entry per image: a mapping
        ``{label: score}`` or a 1-D array whose entry ``l`` is the score of
        label ``l``. By default instances are ranked by area (largest first).
    iou_thresholds : array_like, optional
        IoU thresholds in (0, 1] (default 0.50:0.05:0.95).

    Returns
    -------
    result : AveragePrecision
        ``ap``, ``ap50``, ``ap75``, ``ap_per_threshold``, ``iou_thresholds``,
        ``n_pred``, ``n_gt``. All AP values are NaN when the dataset has no
        true instance (COCO reports -1).

    References
    ----------
    .. [1] T.-Y. Lin et al., "Microsoft COCO: Common objects in context",
           ECCV 2014; https://cocodataset.org/#detection-eval
    .. [2] M. Cordts et al., "The Cityscapes dataset for semantic urban scene
           understanding", CVPR 2016.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2, 0]])
    >>> average_precision(gt, gt).ap
    1.0
    >>> pred = np.array([[1, 1, 0, 0, 2, 2]])  # object 2 shifted: IoU 1/3
    >>> round(average_precision([pred], [gt]).ap50, 4)  # 51 of 101 recall points
    0.505
    """
    pairs = _image_pairs(preds, gts)
    if scores is not None:
        if isinstance(scores, (Mapping, np.ndarray)) and len(pairs) == 1:
            scores = [scores]
        scores = list(scores)
        if len(scores) != len(pairs):
            raise ValueError(f"scores has {len(scores)} entries but there are {len(pairs)} images")
    thr = np.atleast_1d(np.asarray(iou_thresholds, dtype=float))
    if thr.ndim != 1 or thr.size == 0:
        raise ValueError("iou_thresholds must be a non-empty 1-D sequence")
    for t in thr:
        _check_threshold(t, "iou_thresholds")
    all_thr = np.concatenate([thr, [0.5, 0.75]])

    score_parts, tp_parts = [], []
    n_gt = 0
    for i, (p, g) in enumerate(pairs):
        iou, ids_p, ids_g, areas = _iou_checked(p, g)
        n_gt += ids_g.size
        s = _instance_scores(None if scores is None else scores[i], ids_p, areas, i)
        # ties broken by the raster position of each instance's first pixel,
        # so that the result does not depend on the label values
        ids_all, first = np.unique(p.ravel(), return_index=True)
        first = first[ids_all != 0]
        order = np.lexsort((first, -s))
        tp_parts.append(_greedy_tp(iou, order, all_thr)[:, order])
        score_parts.append(s[order])
    score_all = np.concatenate(score_parts)
    tp_all = np.concatenate(tp_parts, axis=1)
    n_pred = int(score_all.size)
    if n_gt == 0:
        per_thr = np.full(all_thr.size, np.nan)
    else:
        rank = np.argsort(-score_all, kind="stable")
        per_thr = _coco_ap(tp_all[:, rank], n_gt)
    ap_thr = per_thr[: thr.size]
    return AveragePrecision(
        ap=float(np.mean(ap_thr)),
        ap50=float(per_thr[-2]),
        ap75=float(per_thr[-1]),
        iou_thresholds=thr,
        ap_per_threshold=ap_thr,
        n_pred=n_pred,
        n_gt=int(n_gt),
    )


@dataclass(frozen=True)
class DSBScore:
    """Result of :func:`dsb_score`.

    Attributes
    ----------
    score : float
        Mean over images of the image's mean over thresholds of
        ``TP / (TP + FP + FN)`` (the DSB2018 competition score).
    per_threshold : ndarray
        Mean over images of the accuracy at each threshold.
    per_image : ndarray
        Each image's mean over thresholds.
    iou_thresholds : ndarray
    """

    score: float
    per_threshold: np.ndarray = field(repr=False)
    per_image: np.ndarray = field(repr=False)
    iou_thresholds: np.ndarray = field(repr=False)

    def at(self, threshold: float) -> float:
        """Mean accuracy over images at one of the thresholds."""
        idx = np.flatnonzero(np.isclose(self.iou_thresholds, threshold))
        if idx.size == 0:
            raise ValueError(f"threshold {threshold} not among {self.iou_thresholds.tolist()}")
        return float(self.per_threshold[idx[0]])


def dsb_score(preds: Any, gts: Any, *, iou_thresholds: Any = COCO_IOU_THRESHOLDS) -> DSBScore:
    """The 2018 Data Science Bowl score: per-image accuracy averaged over IoU thresholds, then over images.

    For each image and threshold ``t`` the accuracy is ``TP / (TP + FP + FN)``
    of the optimal matching at ``t`` (:func:`match_instances`; 1 when the
    image and its prediction are both empty); the image's score is the mean
    over thresholds (0.50:0.05:0.95 by default) and the data set's the mean
    over images [1]_. Unlike :func:`match_instances_dataset` (counts summed
    over the data set), every image weighs the same.

    Parameters
    ----------
    preds, gts : array of int or sequence of arrays of int
        Predicted and true instance label maps (0 = background).
    iou_thresholds : sequence of float, optional

    Returns
    -------
    DSBScore

    References
    ----------
    .. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging
           experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2, 0]])
    >>> pred = np.array([[1, 1, 0, 2, 0, 3]])
    >>> r = dsb_score([pred], [gt], iou_thresholds=[0.5, 0.9])
    >>> r.per_threshold.tolist(), r.score
    ([0.6666666666666666, 0.25], 0.4583333333333333)
    """
    thresholds = np.atleast_1d(np.asarray(iou_thresholds, dtype=float))
    if thresholds.size == 0:
        raise ValueError("iou_thresholds is empty")
    for t in thresholds:
        _check_threshold(t, "iou_thresholds")
    pairs = _image_pairs(preds, gts)
    table = np.zeros((len(pairs), thresholds.size))
    for i, (p, g) in enumerate(pairs):
        iou, ids_p, ids_g, _ = _iou_checked(p, g)
        for j, t in enumerate(thresholds):
            tp = _optimal_matching(iou, t)[0].size
            denom = ids_p.size + ids_g.size - tp
            table[i, j] = tp / denom if denom else 1.0
    per_image = table.mean(axis=1)
    return DSBScore(float(per_image.mean()), table.mean(axis=0), per_image, thresholds)


def instance_scores(preds: Any, gts: Any, scores: Sequence[Any] | None = None) -> dict[str, float]:
    """The usual summary of an instance segmentation over a data set, in one dict.

    Parameters
    ----------
    preds, gts : array of int or sequence of arrays of int
        Predicted and true instance label maps (0 = background).
    scores : sequence, optional
        Per-instance confidences for :func:`average_precision` (default:
        objects ranked by area).

    Returns
    -------
    dict
        ``images``; ``dsb_score`` (:func:`dsb_score`), ``acc50`` and ``acc75``
        (its per-image accuracies at IoU 0.5 and 0.75); ``precision50``,
        ``recall50``, ``f1_50`` (TP/FP/FN pooled over images,
        :func:`match_instances_dataset`); ``ap``, ``ap50``, ``ap75`` (COCO AP,
        :func:`average_precision`); ``n_pred``, ``n_gt``.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2, 0]])
    >>> s = instance_scores([gt], [gt])
    >>> s["dsb_score"], s["f1_50"], s["ap50"]
    (1.0, 1.0, 1.0)
    """
    dsb = dsb_score(preds, gts)
    pooled = match_instances_dataset(preds, gts, iou_threshold=0.5)
    ap = average_precision(preds, gts, scores)
    return {
        "images": int(dsb.per_image.size),
        "dsb_score": dsb.score,
        "acc50": dsb.at(0.5),
        "acc75": dsb.at(0.75),
        "precision50": pooled.precision,
        "recall50": pooled.recall,
        "f1_50": pooled.f1,
        "ap": ap.ap,
        "ap50": ap.ap50,
        "ap75": ap.ap75,
        "n_pred": pooled.n_pred,
        "n_gt": pooled.n_gt,
    }


def best_dice(a: Any, b: Any) -> float:
    """Mean over the objects of ``a`` of their best Dice with any object of ``b`` [5]_.

    ``BD(a, b) = 1/M sum_i max_j 2 |a_i ∩ b_j| / (|a_i| + |b_j|)``; 1.0 when
    both are empty, 0.0 when only one is.

    Examples
    --------
    >>> round(best_dice(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 0]])), 3)  # (0.8 + 0.4) / 2
    0.6
    """
    p, g = _check_instance_pair(a, b)
    table, ids_a, ids_b = contingency_table(p, g)
    rows, cols = ids_a != 0, ids_b != 0
    if not rows.any() or not cols.any():
        return float(rows.any() == cols.any())
    area_a, area_b = table.sum(axis=1)[rows], table.sum(axis=0)[cols]
    dice = 2 * table[np.ix_(rows, cols)] / (area_a[:, None] + area_b[None, :])
    return float(dice.max(axis=1).mean())


def symmetric_best_dice(pred: Any, gt: Any) -> float:
    """``min(BD(pred, gt), BD(gt, pred))``, the CVPPP leaf-segmentation score [5]_ (1 = perfect).

    Examples
    --------
    >>> round(symmetric_best_dice(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 0]])), 3)  # min(0.6, 0.8)
    0.6
    """
    return min(best_dice(pred, gt), best_dice(gt, pred))


def difference_in_count(pred: Any, gt: Any) -> int:
    """Number of predicted objects minus number of true objects (DiC of [5]_; report ``|DiC|`` too).

    Examples
    --------
    >>> difference_in_count(np.array([[1, 2, 3]]), np.array([[1, 1, 2]]))
    1
    """
    p, g = _check_instance_pair(pred, gt)
    return int(np.count_nonzero(np.unique(p))) - int(np.count_nonzero(np.unique(g)))
