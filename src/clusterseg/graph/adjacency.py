"""Region adjacency of a label map (superpixel graph topology).

The region adjacency graph (RAG) has one node per label and an undirected edge
between two labels whenever two of their pixels touch, with 4-connectivity
(``connectivity=1``: horizontal and vertical pixel pairs) or 8-connectivity
(``connectivity=2``: diagonal pairs as well).

References
----------
.. [1] Tremeau, A., & Colantoni, P. (2000). Regions adjacency graph applied to
       color image segmentation. IEEE Transactions on Image Processing, 9(4).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from clusterseg._validation import as_int_labels

__all__ = ["check_label_map", "region_adjacency", "adjacency_matrix", "directed_edges"]

# pixel offsets (dy, dx) that enumerate every unordered pixel pair exactly once
_OFFSETS = {
    1: ((0, 1), (1, 0)),
    2: ((0, 1), (1, 0), (1, 1), (1, -1)),
}


def check_label_map(labels, *, name: str = "labels") -> np.ndarray:
    """Validate a 2-D non-negative integer label map and return it as int64.

    Raises
    ------
    ValueError
        If it is not 2-D, is empty, is not integer-valued or has negative values
        (see :func:`clusterseg._validation.as_int_labels`).
    """
    return as_int_labels(labels, name=name, ndim=2, non_negative=True)


def _pairs(labels: np.ndarray, connectivity: int):
    h, w = labels.shape
    firsts, seconds = [], []
    for dy, dx in _OFFSETS[connectivity]:
        if dx >= 0:
            a = labels[: h - dy, : w - dx]
            b = labels[dy:, dx:]
        else:
            a = labels[: h - dy, -dx:]
            b = labels[dy:, : w + dx]
        a = a.ravel()
        b = b.ravel()
        diff = a != b
        firsts.append(a[diff])
        seconds.append(b[diff])
    return np.concatenate(firsts), np.concatenate(seconds)


def region_adjacency(
    labels: np.ndarray,
    connectivity: int = 2,
    *,
    return_counts: bool = False,
):
    """Edges of the region adjacency graph of a label map.

    Parameters
    ----------
    labels : (H, W) array of int
        Label map with non-negative integer labels (e.g. superpixels).
    connectivity : {1, 2}, optional
        1 for 4-connectivity, 2 (default) for 8-connectivity.
    return_counts : bool, optional
        Also return, for every edge, the number of touching pixel pairs (a
        boundary-length measure).

    Returns
    -------
    edges : (E, 2) ndarray of int64
        Unique undirected edges ``(i, j)`` with ``i < j``, sorted
        lexicographically.
    counts : (E,) ndarray of int64
        Only if ``return_counts``: touching pixel pairs per edge.

    Examples
    --------
    >>> import numpy as np
    >>> region_adjacency(np.array([[0, 1], [2, 2]]), connectivity=1)
    array([[0, 1],
           [0, 2],
           [1, 2]])
    """
    labels = check_label_map(labels)
    if connectivity not in _OFFSETS:
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    a, b = _pairs(labels, connectivity)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    n = int(labels.max()) + 1
    codes, counts = np.unique(lo * n + hi, return_counts=True)
    edges = np.stack([codes // n, codes % n], axis=1).astype(np.int64)
    if return_counts:
        return edges, counts.astype(np.int64)
    return edges


def directed_edges(edges: np.ndarray) -> np.ndarray:
    """Both orientations of undirected edges: ``(E, 2) -> (2E, 2)``."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return np.concatenate([edges, edges[:, ::-1]], axis=0)


def adjacency_matrix(
    labels: np.ndarray,
    connectivity: int = 2,
    *,
    n_nodes: int | None = None,
    weighted: bool = False,
) -> sp.csr_matrix:
    """Symmetric sparse adjacency matrix of the region adjacency graph.

    Parameters
    ----------
    labels : (H, W) array of int
        Label map.
    connectivity : {1, 2}, optional
        1 for 4-connectivity, 2 (default) for 8-connectivity.
    n_nodes : int, optional
        Matrix size; defaults to ``labels.max() + 1``.
    weighted : bool, optional
        If True, entries are boundary lengths (touching pixel pairs) instead
        of ones.

    Returns
    -------
    A : (M, M) scipy.sparse.csr_matrix of float64
        Symmetric, zero diagonal.
    """
    labels = check_label_map(labels)
    m = int(labels.max()) + 1 if n_nodes is None else int(n_nodes)
    if m <= labels.max():
        raise ValueError(f"n_nodes={m} is smaller than labels.max() + 1 = {labels.max() + 1}")
    edges, counts = region_adjacency(labels, connectivity, return_counts=True)
    vals = counts.astype(np.float64) if weighted else np.ones(len(edges))
    a = sp.coo_matrix((vals, (edges[:, 0], edges[:, 1])), shape=(m, m))
    return (a + a.T).tocsr()
