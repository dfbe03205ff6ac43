"""Spectral normalised-cut partition and region merging on a superpixel graph."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.cluster.vq import kmeans2

from .adjacency import check_label_map, region_adjacency

__all__ = ["ncut_eigenvectors", "spectral_embedding", "spectral_ncut", "merge_hierarchy", "cut_hierarchy_costs"]


def ncut_eigenvectors(affinity, k: int, *, random_state: int | None = 0, dense_below: int = 4000):
    """The ``k`` smallest generalised eigenpairs of ``(D - W) y = l D y`` (the trivial one first).

    Computed from the symmetric normalised matrix ``D^-1/2 W D^-1/2``
    (its largest eigenvalues ``mu``, ``l = 1 - mu``) and mapped back with
    ``D^-1/2`` [1]_: densely for fewer than ``dense_below`` nodes, else with
    ARPACK from a seeded start vector (deterministic).

    Parameters
    ----------
    affinity : (M, M) scipy.sparse matrix or ndarray, symmetric, non-negative
    k : int
        Clipped to ``[1, M]`` (to ``M - 1`` on the sparse path).
    random_state : int or None
    dense_below : int

    Returns
    -------
    eigenvalues : (k,) float64, ascending
    vectors : (M, k) float64

    References
    ----------
    .. [1] Shi, J., & Malik, J. (2000). Normalized cuts and image segmentation.
           IEEE TPAMI, 22(8), 888-905.
    """
    w = sp.csr_matrix(affinity, dtype=np.float64)
    m = w.shape[0]
    if w.shape != (m, m):
        raise ValueError(f"affinity must be square, got {w.shape}")
    dinv = 1.0 / np.sqrt(np.asarray(w.sum(1)).ravel() + 1e-10)
    norm = sp.diags(dinv) @ w @ sp.diags(dinv)
    if m < dense_below:
        k = int(min(max(k, 1), m))
        mu, vecs = scipy.linalg.eigh(norm.toarray(), subset_by_index=(m - k, m - 1))
        mu, vecs = mu[::-1], vecs[:, ::-1]  # ascending -> descending
    else:
        from scipy.sparse.linalg import eigsh

        k = int(min(max(k, 1), m - 1))
        v0 = np.random.default_rng(random_state).standard_normal(m)
        mu, vecs = eigsh(norm, k=k, which="LA", tol=1e-4, v0=v0)
        order = np.argsort(-mu, kind="stable")
        mu, vecs = mu[order], vecs[:, order]
    return 1.0 - mu, vecs * dinv[:, None]


def spectral_embedding(affinity, n_components: int) -> np.ndarray:
    """First ``n_components`` generalised eigenvectors of ``(D - W) y = l D y`` (:func:`ncut_eigenvectors`).

    Parameters
    ----------
    affinity : (M, M) scipy.sparse matrix or ndarray, symmetric, non-negative
    n_components : int

    Returns
    -------
    (M, n_components) float64 array, rows normalised to unit length.
    """
    _, vecs = ncut_eigenvectors(affinity, n_components, dense_below=np.inf)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
    return vecs


def spectral_ncut(affinity, n_clusters: int, *, random_state: int = 0, embedding: np.ndarray | None = None) -> np.ndarray:
    """K-way normalised cut: k-means on the spectral embedding.

    Parameters
    ----------
    affinity : (M, M) sparse or dense symmetric matrix
    n_clusters : int
    random_state : int
        Seed of the k-means initialisation (k-means++).
    embedding : (M, >= n_clusters) array, optional
        Precomputed :func:`spectral_embedding` (to cut at several K cheaply).

    Returns
    -------
    (M,) int64 array of cluster ids in ``[0, n_clusters)`` (consecutive).
    """
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    emb = spectral_embedding(affinity, n_clusters) if embedding is None else embedding
    m = emb.shape[0]
    if n_clusters >= m:
        return np.arange(m, dtype=np.int64)
    x = emb[:, :n_clusters]
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    rng = np.random.default_rng(random_state)
    _, lab = kmeans2(x, n_clusters, minit="++", seed=rng)
    _, lab = np.unique(lab, return_inverse=True)
    return lab.astype(np.int64)


def merge_hierarchy(labels: np.ndarray, node_features: np.ndarray, n_segments, *, connectivity: int = 2,
                    sizes: np.ndarray | None = None, return_costs: bool = False):
    """Coarser segmentations by greedy Ward merging of adjacent regions.

    Starting from ``labels`` (r regions), the pair of adjacent regions with
    the smallest Ward cost ``n_a n_b / (n_a + n_b) ||mu_a - mu_b||^2`` on
    their (learned) features is merged repeatedly; a snapshot is kept each
    time the region count reaches a requested value. When no adjacent pair
    remains (disconnected regions), any pair may merge.

    Parameters
    ----------
    labels : (H, W) int array, values in ``[0, r)``
    node_features : (r, D) array
        Feature (e.g. mean learned embedding or class probability) per region.
    n_segments : int or iterable of int
        Requested region counts.
    connectivity : {1, 2}
    sizes : (r,) array, optional
        Region sizes (default: pixel counts from ``labels``).
    return_costs : bool
        Also return the Ward cost of every merge, with sizes as fractions of
        the image, as a dict ``k -> cost of the merge that produced k
        regions`` (used to cut the hierarchy at a cost threshold, the
        "scale" of :func:`cut_hierarchy_costs`).

    Returns
    -------
    levels : dict
        Each requested count k -> int32 (H, W) label map with ``min(k, r)``
        consecutive labels.
    costs : dict, only if ``return_costs``
    """
    labels = check_label_map(labels)
    targets = sorted({int(k) for k in np.atleast_1d(n_segments)}, reverse=True)
    if not targets or targets[-1] < 1:
        raise ValueError(f"n_segments must be positive integers, got {n_segments!r}")
    r = int(labels.max()) + 1
    feats = np.asarray(node_features, dtype=np.float64).reshape(r, -1).copy()
    n = np.bincount(labels.ravel(), minlength=r).astype(np.float64) if sizes is None else np.asarray(sizes, float).copy()
    parent = np.arange(r)
    alive = n > 0
    adj = np.zeros((r, r), dtype=bool)
    e = region_adjacency(labels, connectivity)
    adj[e[:, 0], e[:, 1]] = adj[e[:, 1], e[:, 0]] = True

    def snapshot():
        root = parent.copy()
        for i in range(r):
            while root[root[i]] != root[i]:
                root[i] = root[root[i]]
        _, lab = np.unique(root[labels], return_inverse=True)
        return lab.reshape(labels.shape).astype(np.int32)

    out: dict[int, np.ndarray] = {}
    costs: dict[int, float] = {}
    total = float(n.sum()) or 1.0
    count = int(alive.sum())
    for k in targets:
        while count > k:
            ids = np.flatnonzero(alive)
            f = feats[ids]
            d2 = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
            na, nb = n[ids][:, None], n[ids][None, :]
            cost = na * nb / (na + nb) * d2
            np.fill_diagonal(cost, np.inf)
            sub = adj[np.ix_(ids, ids)]
            if sub.any():
                cost = np.where(sub, cost, np.inf)
            a, b = np.unravel_index(np.argmin(cost), cost.shape)
            costs[count - 1] = float(cost[a, b]) / total
            a, b = ids[a], ids[b]
            feats[a] = (n[a] * feats[a] + n[b] * feats[b]) / (n[a] + n[b])
            n[a] += n[b]
            alive[b] = False
            parent[b] = a
            adj[a] |= adj[b]
            adj[:, a] |= adj[:, b]
            adj[a, a] = False
            adj[b, :] = adj[:, b] = False
            count -= 1
        out[k] = snapshot()
    return (out, costs) if return_costs else out


def cut_hierarchy_costs(costs: dict[int, float], n_regions: int, thresholds) -> list[int]:
    """Region count at each cost threshold: merge while the next merge costs at most ``t``.

    Parameters
    ----------
    costs : dict k -> cost
        From :func:`merge_hierarchy` with ``return_costs=True`` (all counts
        from ``n_regions - 1`` down to the smallest requested).
    n_regions : int
        Regions before any merge.
    thresholds : iterable of float

    Returns
    -------
    list of int, one region count per threshold.
    """
    out = []
    for t in thresholds:
        k = n_regions
        while k - 1 in costs and costs[k - 1] <= t:
            k -= 1
        out.append(k)
    return out
