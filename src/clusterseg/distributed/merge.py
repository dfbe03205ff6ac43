"""Objects cut by chunk borders, joined again: matching in the shared halo, then a global relabelling.

Each chunk is segmented together with a halo of ``depth`` pixels, and keeps
block-unique label ids. Two neighbouring chunks both segment the strip of
``2 depth`` pixels around their common border; a label of one and a label of
the other that cover mostly the same pixels of that strip are the same
object. The pairs form a graph whose connected components are the objects of
the whole image, numbered ``1..n`` (the approach of dask-image's ``label``
and of cellpose's distributed evaluation, written here from their
descriptions).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["border_pairs", "merge_labels"]


def border_pairs(a: np.ndarray, b: np.ndarray, min_fraction: float = 0.5) -> np.ndarray:
    """Label pairs ``(a_id, b_id)`` that are one object in two segmentations of the same strip.

    A pair qualifies when the pixels where ``a == a_id`` and ``b == b_id``
    are at least ``min_fraction`` of the smaller of the two labels' pixels in
    the strip (0 is background and never paired).

    Examples
    --------
    >>> a = np.array([[5, 5, 5, 0, 7]])
    >>> b = np.array([[9, 9, 0, 0, 8]])
    >>> border_pairs(a, b).tolist()
    [[5, 9], [7, 8]]
    """
    if a.shape != b.shape:
        raise ValueError(f"strips differ in shape: {a.shape} vs {b.shape}")
    a, b = a.reshape(-1), b.reshape(-1)
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    pairs, shared = np.unique(np.stack([a[both], b[both]], axis=1), axis=0, return_counts=True)
    ids_a, size_a = np.unique(a[a > 0], return_counts=True)
    ids_b, size_b = np.unique(b[b > 0], return_counts=True)
    smaller = np.minimum(size_a[np.searchsorted(ids_a, pairs[:, 0])], size_b[np.searchsorted(ids_b, pairs[:, 1])])
    return pairs[shared >= min_fraction * smaller].astype(np.int64)


def merge_labels(ids: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """New ids ``1..n`` for the sorted unique positive ``ids``, equal for ids joined by ``pairs``.

    Pairs naming an id outside ``ids`` are ignored.

    Examples
    --------
    >>> merge_labels(np.array([3, 10, 12, 40]), np.array([[10, 40]])).tolist()
    [1, 2, 3, 2]
    """
    ids = np.asarray(ids, np.int64)
    if ids.size == 0:
        return np.zeros(0, np.int64)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    # Labels seen only in a halo (their pixels belong to the neighbour's core) do not exist in the result.
    pairs = pairs[np.isin(pairs, ids).all(axis=1)]
    rows, cols = np.searchsorted(ids, pairs[:, 0]), np.searchsorted(ids, pairs[:, 1])
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(ids.size, ids.size))
    _, component = connected_components(graph, directed=False)
    # Number components in the order of their smallest id, so the result does not depend on the graph.
    first = np.full(component.max() + 1, ids.size)
    np.minimum.at(first, component, np.arange(ids.size))
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(1, first.size + 1)
    return rank[component]
