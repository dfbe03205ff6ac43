"""Region benchmark of BSDS500: Segmentation Covering, PRI, VI and ODS / OIS.

The definitions follow the BSDS500 benchmark code of Arbelaez et al. [1]_
(``evaluation_reg_image.m``, ``match_segmentations.m``,
``match_segmentations2.m``, ``collect_eval_reg.m``). For one image with
ground truths ``G_1 .. G_K`` (each with ``N`` pixels) and a segmentation
``S``:

* **Segmentation Covering** (the "R" covering of BSDS, the one reported in
  the papers): the ground truth covered by the segmentation,
  ``C(G_k -> S) = (1/N) sum_{R in G_k} |R| max_{R' in S} IoU(R, R')``.
  BSDS pools the covered areas over the ground truths:
  ``cntR = sum_k sum_{R in G_k} |R| max IoU`` and ``sumR = K * N``, so the
  per-image value ``cntR / sumR`` equals the mean of the per-ground-truth
  coverings.
* **Probabilistic Rand Index**: the mean over ground truths of the Rand index
  computed by pair counting from the contingency table ``n``:
  ``RI = 1 - (sum_i a_i^2 / 2 + sum_j b_j^2 / 2 - sum_ij n_ij^2) / (N (N - 1) / 2)``.
* **Variation of Information**: the mean over ground truths of
  ``H(S) + H(G) - 2 I(S, G)``, **in bits** (``log2``), as in the BSDS code
  (and in :func:`skimage.metrics.variation_of_information`, whose two
  conditional entropies sum to it). ``base=np.e`` gives nats.
* **ODS / OIS** over a parameter sweep (``collect_eval_reg.m``): ODS picks the
  single parameter that is best for the whole dataset, OIS the best parameter
  of every image. For SC the covered areas and the total areas are *pooled*
  over images (a ratio of sums, images weighted by ``K * N``); for PRI and
  VI per-image values are *averaged*. VI is minimised, SC and PRI maximised.
  Ties: the first best parameter for ODS (MATLAB ``max``), the last best
  parameter per image for OIS (``find(R == max(R)); ff(end)``); tie-breaking
  never changes the reported values.

Deviation from the BSDS code: BSDS ignores pixels labelled 0 (its ground
truths and segmentations are numbered from 1, so none exist). Here every
label value, 0 included, is a region, because clusterseg labels start at 0.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
       hierarchical image segmentation", IEEE TPAMI 33(5), 898-916, 2011.
.. [2] R. Unnikrishnan, C. Pantofaru, M. Hebert, "Toward objective
       evaluation of image segmentation algorithms", IEEE TPAMI 29(6), 2007
       (Probabilistic Rand Index).
.. [3] M. Meila, "Comparing clusterings: an information based distance",
       J. Multivariate Analysis 98(5), 2007 (Variation of Information).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    "segmentation_covering",
    "rand_index",
    "probabilistic_rand_index",
    "variation_of_information",
    "region_scores",
    "OdsOis",
    "ods_ois",
    "aggregate_region_scores",
]




def _tables(segmentation: Any, ground_truth: Any) -> list[np.ndarray]:
    seg = check_labels(segmentation, name="segmentation")
    gts = as_label_list(ground_truth)
    for g in gts:
        check_label_pair(seg, g, names=("segmentation", "ground_truth"))
    inv_s, ids_s = relabel_consecutive(seg)
    tables = []
    for g in gts:
        inv_g, ids_g = relabel_consecutive(g)
        tables.append(table_from_inverse(inv_s, ids_s.size, inv_g, ids_g.size))
    return tables


def _iou(table: np.ndarray) -> np.ndarray:
    rows = table.sum(axis=1, keepdims=True)
    cols = table.sum(axis=0, keepdims=True)
    return table / (rows + cols - table)


def _covered_area(table: np.ndarray) -> float:
    """sum over ground-truth regions (columns) of |R| * max IoU with a segment (rows)."""
    return float(np.sum(table.sum(axis=0) * _iou(table).max(axis=0)))


def _rand_index_table(table: np.ndarray) -> float:
    n = int(table.sum())
    if n < 2:
        return 1.0
    a = table.sum(axis=1)
    b = table.sum(axis=0)
    disagreements = (a @ a) / 2 + (b @ b) / 2 - np.sum(table * table)
    return float(1.0 - disagreements / (n * (n - 1) / 2))


def _entropy(counts: np.ndarray, n: int) -> float:
    p = counts[counts > 0] / n
    return float(-np.sum(p * np.log(p)))


def _vi_table(table: np.ndarray, base: float) -> float:
    n = int(table.sum())
    h_joint = _entropy(table.ravel(), n)
    h_a = _entropy(table.sum(axis=1), n)
    h_b = _entropy(table.sum(axis=0), n)
    # H(S) + H(G) - 2 I(S;G) = 2 H(S,G) - H(S) - H(G)
    vi = max(2.0 * h_joint - h_a - h_b, 0.0)
    return vi / np.log(base)


def _check_base(base: float) -> float:
    base = float(base)
    if not np.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"base must be a finite number > 0 and != 1, got {base}")
    return base


def segmentation_covering(
    segmentation: Any, ground_truth: Any, *, aggregate: Aggregate = "mean"
) -> float | np.ndarray:
    """Segmentation Covering of the ground truth by a segmentation (BSDS500).

    ``C(G -> S) = (1/N) sum_{R in G} |R| max_{R' in S} |R ∩ R'| / |R ∪ R'|``,
    the covering reported by the BSDS500 region benchmark [1]_. With several
    ground truths BSDS pools covered areas over them, which equals their
    mean (``aggregate="mean"``, the default).

    Parameters
    ----------
    segmentation : (M, N) array of int
        Segmentation to evaluate.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    aggregate : {"mean", "best", None}, optional
        Mean over ground truths (BSDS), maximum, or per-ground-truth array.

    Returns
    -------
    covering : float or ndarray
        In (0, 1], higher is better; 1 iff the segmentation equals the ground
        truth up to relabelling.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> gt = np.array([[0, 0, 1, 1]])
    >>> seg = np.array([[0, 0, 0, 1]])
    >>> segmentation_covering(seg, gt)  # (2 * 2/3 + 2 * 1/2) / 4
    0.5833333333333333
    """
    values = [_covered_area(t) / t.sum() for t in _tables(segmentation, ground_truth)]
    return _aggregate(values, aggregate, higher_is_better=True)


def rand_index(labels_a: Any, labels_b: Any) -> float:
    """Rand index of two label maps, by pair counting.

    The fraction of the ``N (N - 1) / 2`` unordered pixel pairs on which both
    label maps agree (same segment in both, or different segments in both),
    computed from the contingency table as in the BSDS500 code.

    Parameters
    ----------
    labels_a, labels_b : array of int
        Label maps of the same shape.

    Returns
    -------
    ri : float
        In [0, 1]; 1 iff the two maps are equal up to relabelling.

    References
    ----------
    .. [1] W. M. Rand, "Objective criteria for the evaluation of clustering
           methods", J. American Statistical Association 66(336), 1971.

    Examples
    --------
    >>> rand_index([0, 0, 1, 1], [0, 0, 0, 1])  # 3 of 6 pairs agree
    0.5
    """
    a, b = check_label_pair(labels_a, labels_b, names=("labels_a", "labels_b"))
    return _rand_index_table(contingency_table(a, b)[0])


def probabilistic_rand_index(
    segmentation: Any, ground_truth: Any, *, aggregate: Aggregate = "mean"
) -> float | np.ndarray:
    """Probabilistic Rand Index (PRI) of a segmentation against several ground truths.

    The mean over ground truths of :func:`rand_index`, as computed by the
    BSDS500 benchmark [1]_ [2]_.

    Parameters
    ----------
    segmentation : (M, N) array of int
        Segmentation to evaluate.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    aggregate : {"mean", "best", None}, optional
        Mean (the PRI, default), maximum, or per-ground-truth Rand indices.

    Returns
    -------
    pri : float or ndarray
        In [0, 1], higher is better.

    References
    ----------
    .. [1] R. Unnikrishnan, C. Pantofaru, M. Hebert, "Toward objective
           evaluation of image segmentation algorithms", IEEE TPAMI 29(6), 2007.
    .. [2] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> seg = np.array([0, 0, 1, 1])
    >>> probabilistic_rand_index(seg, [seg, np.array([0, 0, 0, 1])])
    0.75
    """
    values = [_rand_index_table(t) for t in _tables(segmentation, ground_truth)]
    return _aggregate(values, aggregate, higher_is_better=True)


def variation_of_information(
    segmentation: Any,
    ground_truth: Any,
    *,
    base: float = 2.0,
    aggregate: Aggregate = "mean",
) -> float | np.ndarray:
    """Variation of Information (VI) of a segmentation against several ground truths.

    ``VI(S, G) = H(S) + H(G) - 2 I(S; G) = H(S | G) + H(G | S)`` [1]_,
    averaged over ground truths as in the BSDS500 benchmark [2]_, whose code
    uses base-2 logarithms (bits); so does
    :func:`skimage.metrics.variation_of_information`, which returns the two
    conditional entropies (their sum is this VI).

    Parameters
    ----------
    segmentation : (M, N) array of int
        Segmentation to evaluate.
    ground_truth : (M, N) array of int or list of such arrays
        One or several ground-truth segmentations.
    base : float, optional
        Logarithm base: 2 (bits, BSDS500 and scikit-image, default) or
        ``np.e`` (nats).
    aggregate : {"mean", "best", None}, optional
        Mean (BSDS, default), minimum, or per-ground-truth array.

    Returns
    -------
    vi : float or ndarray
        >= 0, lower is better; 0 iff equal up to relabelling.

    References
    ----------
    .. [1] M. Meila, "Comparing clusterings: an information based distance",
           J. Multivariate Analysis 98(5), 873-895, 2007.
    .. [2] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> variation_of_information(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]))
    1.0
    """
    base = _check_base(base)
    values = [_vi_table(t, base) for t in _tables(segmentation, ground_truth)]
    return _aggregate(values, aggregate, higher_is_better=False)


def region_scores(segmentation: Any, ground_truth: Any, *, base: float = 2.0) -> dict[str, float]:
    """Per-image region statistics from which BSDS500 ODS / OIS are computed exactly.

    Mirrors one line of the per-image files of ``evaluation_reg_image.m``.

    Parameters
    ----------
    segmentation : (M, N) array of int
        Segmentation to evaluate (one parameter value of a sweep).
    ground_truth : (M, N) array of int or list of such arrays
        The ground truths of the image.
    base : float, optional
        Logarithm base of VI (default 2, as BSDS500).

    Returns
    -------
    scores : dict
        ``"covering_count"`` (BSDS ``cntR``: ground-truth area covered,
        ``sum_k sum_{R in G_k} |R| max IoU``), ``"covering_total"`` (``sumR``
        = ``K * N``), ``"covering"`` (their ratio, the image's SC),
        ``"covering_reverse_count"`` / ``"covering_reverse_total"`` (BSDS
        ``cntP`` / ``sumP``: the segmentation covered by the best-matching
        region among *all* ground truths, and ``N``), ``"pri"``, ``"vi"``,
        ``"n_segments"``.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> gt = np.array([[0, 0, 1, 1]])
    >>> s = region_scores(gt, [gt, gt])
    >>> s["covering_count"], s["covering_total"], s["pri"], s["vi"]
    (8.0, 8.0, 1.0, 0.0)
    """
    base = _check_base(base)
    seg = check_labels(segmentation, name="segmentation")
    tables = _tables(seg, ground_truth)
    n = int(seg.size)
    cnt_r = sum(_covered_area(t) for t in tables)
    best_seg_iou = np.max(np.stack([_iou(t).max(axis=1) for t in tables]), axis=0)
    seg_area = tables[0].sum(axis=1)
    cnt_p = float(np.sum(seg_area * best_seg_iou))
    total = float(len(tables) * n)
    return {
        "covering_count": float(cnt_r),
        "covering_total": total,
        "covering": float(cnt_r / total),
        "covering_reverse_count": cnt_p,
        "covering_reverse_total": float(n),
        "pri": float(np.mean([_rand_index_table(t) for t in tables])),
        "vi": float(np.mean([_vi_table(t, base) for t in tables])),
        "n_segments": int(tables[0].shape[0]),
    }


@dataclass(frozen=True)
class OdsOis:
    """Result of :func:`ods_ois`.

    Attributes
    ----------
    ods : float
        Optimal Dataset Scale score: the dataset score at the single best
        parameter.
    ois : float
        Optimal Image Scale score: the dataset score with each image at its
        own best parameter.
    ods_index : int
        Index of the ODS parameter.
    ois_indices : ndarray of int, shape (n_images,)
        Best parameter index of every image.
    dataset_scores : ndarray, shape (n_params,)
        Dataset score of every parameter (ODS is its best entry).
    """

    ods: float
    ois: float
    ods_index: int
    ois_indices: np.ndarray
    dataset_scores: np.ndarray


def ods_ois(
    scores: Any, *, weights: Any = None, higher_is_better: bool = True
) -> OdsOis:
    """ODS and OIS aggregation of a parameter sweep, as in BSDS500.

    The dataset score of a parameter is the weighted mean over images,
    ``sum_i w_ip s_ip / sum_i w_ip`` (unweighted by default). ODS is the best
    dataset score over parameters; OIS picks each image's best parameter
    ``b_i`` and returns ``sum_i w_ib s_ib / sum_i w_ib``.

    * PRI and VI in BSDS: ``weights=None`` (plain means); VI with
      ``higher_is_better=False``.
    * SC in BSDS: ``scores = cntR / sumR`` and ``weights = sumR``, which
      reproduces the pooled ratio ``sum cntR / sum sumR`` of
      ``collect_eval_reg.m``. :func:`aggregate_region_scores` does this.

    Parameters
    ----------
    scores : (n_images, n_params) array_like
        Per-image score of every parameter value.
    weights : (n_images, n_params) array_like, optional
        Non-negative pooling weights.
    higher_is_better : bool, optional
        Maximise (default) or minimise.

    Returns
    -------
    result : OdsOis
        ``ods``, ``ois``, ``ods_index``, ``ois_indices``, ``dataset_scores``.
        Ties: first best parameter for ODS, last best per image for OIS, as
        in the BSDS code.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> r = ods_ois([[0.25, 0.75], [1.0, 0.25]])  # 2 images x 2 parameters
    >>> r.ods, r.ois, r.ods_index, r.ois_indices.tolist()
    (0.625, 0.875, 0, [1, 0])
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must be a non-empty (n_images, n_params) array, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    if weights is None:
        w = np.ones_like(s)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != s.shape:
            raise ValueError(f"weights shape {w.shape} does not match scores shape {s.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative")
        if np.any(w.sum(axis=0) == 0):
            raise ValueError("weights sum to zero over the images for some parameter")
    sign = 1.0 if higher_is_better else -1.0
    dataset = np.sum(w * s, axis=0) / np.sum(w, axis=0)
    ods_index = int(np.argmax(sign * dataset))
    n_params = s.shape[1]
    # last best parameter of every image
    best = n_params - 1 - np.argmax((sign * s)[:, ::-1], axis=1)
    rows = np.arange(s.shape[0])
    wb = w[rows, best]
    if wb.sum() == 0:
        raise ValueError("weights of the per-image best parameters sum to zero")
    ois = float(np.sum(wb * s[rows, best]) / wb.sum())
    return OdsOis(
        ods=float(dataset[ods_index]),
        ois=ois,
        ods_index=ods_index,
        ois_indices=best,
        dataset_scores=dataset,
    )


def aggregate_region_scores(per_image: Sequence[Sequence[Mapping[str, float]]]) -> dict[str, Any]:
    """BSDS500 ODS / OIS of SC, PRI and VI from :func:`region_scores` outputs.

    Parameters
    ----------
    per_image : sequence of sequences of dict
        ``per_image[i][p]`` is ``region_scores(segmentation_of_image_i_at_param_p,
        ground_truths_of_image_i)``; every image must have the same number of
        parameters, in the same order.

    Returns
    -------
    result : dict
        ``{"ods": {"sc", "pri", "vi"}, "ois": {"sc", "pri", "vi"},
        "ods_index": {"sc", "pri", "vi"}}``. SC pools covered areas over
        images (ratio of sums), PRI and VI average per-image values, VI is
        minimised -- the conventions of ``collect_eval_reg.m``.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
           hierarchical image segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> gt = np.array([[0, 0, 1, 1]])
    >>> sweep = [np.array([[0, 0, 0, 0]]), gt]
    >>> res = aggregate_region_scores([[region_scores(s, gt) for s in sweep]])
    >>> res["ods"]["sc"], res["ods_index"]["sc"]
    (1.0, 1)
    """
    if len(per_image) == 0:
        raise ValueError("per_image is empty: no images to aggregate")
    n_params = {len(row) for row in per_image}
    if len(n_params) != 1 or 0 in n_params:
        raise ValueError(f"every image needs the same non-zero number of parameters, got {sorted(n_params)}")

    def grab(key: str) -> np.ndarray:
        try:
            return np.array([[float(d[key]) for d in row] for row in per_image])
        except KeyError as exc:
            msg = f"region score dicts lack the key {exc.args[0]!r}; use region_scores()"
            raise ValueError(msg) from None

    total = grab("covering_total")
    sc = ods_ois(grab("covering_count") / total, weights=total)
    pri = ods_ois(grab("pri"))
    vi = ods_ois(grab("vi"), higher_is_better=False)
    return {
        "ods": {"sc": sc.ods, "pri": pri.ods, "vi": vi.ods},
        "ois": {"sc": sc.ois, "pri": pri.ois, "vi": vi.ois},
        "ods_index": {"sc": sc.ods_index, "pri": pri.ods_index, "vi": vi.ods_index},
    }
