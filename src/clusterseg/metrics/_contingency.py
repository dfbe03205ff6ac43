"""Label validation and contingency tables shared by all metrics.

Every overlap-based metric in :mod:`clusterseg.metrics` (ASA, UE, covering,
Rand index, VI, instance IoU) is a function of the contingency table
``n[i, j] = |{p : a[p] == i and b[p] == j}|`` of two label maps.  It is built
once, with a single :func:`numpy.bincount` over the pixel-pair codes, after
relabelling both maps to consecutive ids with :func:`numpy.unique`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clusterseg._validation import as_int_labels

__all__ = [
    "check_labels",
    "check_label_pair",
    "as_label_list",
    "relabel_consecutive",
    "table_from_inverse",
    "contingency_table",
]


def check_labels(labels: Any, *, name: str = "labels") -> np.ndarray:
    """Validate a label map of any dimensionality (>= 1) and return it as int64.

    Integer or boolean arrays, or floats holding finite integer values, are
    accepted (see :func:`clusterseg._validation.as_int_labels`).
    """
    return as_int_labels(labels, name=name)


def check_label_pair(
    a: Any, b: Any, *, names: tuple[str, str] = ("labels", "ground_truth")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label maps and check that their shapes agree."""
    a = check_labels(a, name=names[0])
    b = check_labels(b, name=names[1])
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {names[0]} has shape {a.shape}, {names[1]} has shape {b.shape}")
    return a, b


def as_label_list(ground_truth: Any, *, name: str = "ground_truth") -> list[np.ndarray]:
    """Turn one label map or a sequence of label maps into a list of validated arrays."""
    if isinstance(ground_truth, (list, tuple)):
        if len(ground_truth) == 0:
            raise ValueError(f"{name} is an empty list; at least one ground truth is required")
        if all(isinstance(g, np.ndarray) for g in ground_truth):
            items = list(ground_truth)
        else:  # a single label map written as (nested) Python lists
            return [check_labels(ground_truth, name=name)]
    elif isinstance(ground_truth, np.ndarray) and ground_truth.dtype != object:
        return [check_labels(ground_truth, name=name)]
    elif isinstance(ground_truth, np.ndarray):  # object array of label maps
        items = list(ground_truth.ravel())
        if not items:
            raise ValueError(f"{name} is empty; at least one ground truth is required")
    else:
        raise ValueError(
            f"{name} must be a label array or a list of label arrays, got {type(ground_truth).__name__}"
        )
    return [check_labels(g, name=f"{name}[{k}]") for k, g in enumerate(items)]


def relabel_consecutive(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to 0..n-1 in sorted order.

    Returns ``(inverse, ids)`` with ``ids[inverse] == labels.ravel()``. For
    non-negative labels of moderate range a lookup table (O(N), no sort) is
    used instead of :func:`numpy.unique`.
    """
    flat = labels.ravel()
    lo, hi = int(flat.min()), int(flat.max())
    if lo >= 0 and hi < 4 * flat.size + 1024:
        present = np.bincount(flat, minlength=hi + 1) > 0
        ids = np.flatnonzero(present)
        lut = np.cumsum(present) - 1
        return lut[flat], ids.astype(np.int64)
    ids, inverse = np.unique(flat, return_inverse=True)
    return inverse.ravel(), ids


def table_from_inverse(inv_a: np.ndarray, n_a: int, inv_b: np.ndarray, n_b: int) -> np.ndarray:
    """Contingency table of two consecutive relabellings (see :func:`relabel_consecutive`)."""
    codes = inv_a.astype(np.int64) * n_b + inv_b
    return np.bincount(codes, minlength=n_a * n_b).reshape(n_a, n_b)


def contingency_table(
    a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense contingency table of two label maps of equal shape.

    Parameters
    ----------
    a, b : ndarray of int
        Validated label maps of the same shape.

    Returns
    -------
    table : ndarray of int64, shape (n_a, n_b)
        ``table[i, j]`` is the number of pixels with ``a == ids_a[i]`` and
        ``b == ids_b[j]``. Every row and column has a positive sum.
    ids_a, ids_b : ndarray of int64
        The sorted distinct labels of ``a`` and ``b``.
    """
    inv_a, ids_a = relabel_consecutive(a)
    inv_b, ids_b = relabel_consecutive(b)
    return table_from_inverse(inv_a, ids_a.size, inv_b, ids_b.size), ids_a, ids_b
