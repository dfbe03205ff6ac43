"""Edge weights and affinity matrices on a superpixel graph.

Two weightings are provided:

* SP-WNet [1]_: ``A_jl = exp(tau * d_jl)`` with ``d_jl`` the Euclidean
  distance between mean colours and ``tau = -1`` (:func:`exp_weights`).
* Deep Superpixel Cut [2]_: the slides leave the similarity matrix ``W``
  undefined; clusterseg uses a Gaussian kernel on region-adjacency edges,
  ``W_ab = exp(-||g_a - g_b||^2 / (2 sigma^2))`` with ``sigma`` the median edge
  distance by default (:func:`gaussian_weights`), and zero elsewhere.

References
----------
.. [1] Leng, K., Atwood, R., Kockelmann, W., Chekrygina, D., & Thiyagalingam,
       J. (2024). Unsupervised Few-Shot Image Segmentation with Dense Feature
       Learning and Sparse Clustering. VISAPP 2024.
.. [2] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
       Unsupervised Image Segmentation. arXiv:2103.06031.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "mean_colour",
    "edge_distances",
    "gaussian_weights",
    "exp_weights",
    "affinity_matrix",
]


def mean_colour(image: np.ndarray, labels: np.ndarray, n_nodes: int | None = None) -> np.ndarray:
    """Mean colour (or any channel vector) of every region.

    Parameters
    ----------
    image : (H, W, C) or (H, W) array
    labels : (H, W) int array, values in ``[0, M)``
    n_nodes : int, optional

    Returns
    -------
    (M, C) float64 array (zero for empty regions).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    labels = np.asarray(labels)
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in shape")
    idx = labels.reshape(-1).astype(np.int64)
    m = int(idx.max()) + 1 if n_nodes is None else int(n_nodes)
    counts = np.bincount(idx, minlength=m).astype(np.float64)
    flat = image.reshape(-1, image.shape[-1])
    sums = np.stack([np.bincount(idx, weights=flat[:, c], minlength=m) for c in range(flat.shape[1])], axis=1)
    return sums / np.maximum(counts, 1)[:, None]


def edge_distances(node_features, edges):
    """Euclidean distance between the features of the two ends of each edge.

    Parameters
    ----------
    node_features : (M, C) array or tensor
    edges : (E, 2) int array or tensor

    Returns
    -------
    (E,) array or tensor (same kind as ``node_features``).
    """
    if isinstance(node_features, torch.Tensor):
        e = torch.as_tensor(np.asarray(edges) if not isinstance(edges, torch.Tensor) else edges,
                            dtype=torch.int64, device=node_features.device)
        return torch.linalg.vector_norm(node_features[e[:, 0]] - node_features[e[:, 1]], dim=1)
    f = np.asarray(node_features, dtype=np.float64)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return np.linalg.norm(f[e[:, 0]] - f[e[:, 1]], axis=1)


def gaussian_weights(distances, sigma: float | None = None):
    """Gaussian edge weights ``exp(-d^2 / (2 sigma^2))``.

    ``sigma=None`` uses the median of the non-zero distances (1.0 when all
    distances are zero), which makes the weights scale-free.
    """
    is_t = isinstance(distances, torch.Tensor)
    d = distances if is_t else np.asarray(distances, dtype=np.float64)
    if sigma is None:
        dn = d.detach().cpu().numpy() if is_t else d
        nz = dn[dn > 0]
        sigma = float(np.median(nz)) if nz.size else 1.0
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if is_t:
        return torch.exp(-(d**2) / (2 * sigma**2))
    return np.exp(-(d**2) / (2 * sigma**2))


def exp_weights(distances, tau: float = -1.0):
    """SP-WNet edge weights ``exp(tau * d)`` (``tau = -1`` in the paper)."""
    if isinstance(distances, torch.Tensor):
        return torch.exp(tau * distances)
    return np.exp(tau * np.asarray(distances, dtype=np.float64))


def affinity_matrix(edges, weights, n_nodes: int, *, layout: str = "sparse", dtype=torch.float32, device=None):
    """Symmetric affinity matrix from undirected edges and their weights.

    Parameters
    ----------
    edges : (E, 2) int array or tensor
        Undirected edges, each listed once.
    weights : (E,) array or tensor
        Edge weights; torch weights keep their autograd graph (``"dense"`` and
        ``"sparse"`` layouts).
    n_nodes : int
        Number of nodes M.
    layout : {"sparse", "dense", "scipy"}
        ``"sparse"``: coalesced ``torch.sparse_coo_tensor``; ``"dense"``: a
        dense tensor (fine for a few thousand nodes); ``"scipy"``:
        ``scipy.sparse.csr_matrix`` (float64).

    Returns
    -------
    (M, M) affinity matrix with ``W[i, j] = W[j, i] = w_e`` and a zero diagonal.
    """
    e = np.asarray(edges.cpu() if isinstance(edges, torch.Tensor) else edges, dtype=np.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n_nodes):
        raise ValueError(f"edge endpoints must lie in [0, {n_nodes})")
    if np.any(e[:, 0] == e[:, 1]):
        raise ValueError("edges must not contain self-loops")
    if layout == "scipy":
        w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights, float)
        if w.shape != (len(e),):
            raise ValueError(f"weights must have shape ({len(e)},), got {w.shape}")
        a = sp.coo_matrix((w.astype(np.float64), (e[:, 0], e[:, 1])), shape=(n_nodes, n_nodes))
        return (a + a.T).tocsr()
    w = weights if isinstance(weights, torch.Tensor) else torch.as_tensor(np.asarray(weights, float))
    w = w.to(dtype=dtype if not isinstance(weights, torch.Tensor) else weights.dtype, device=device or w.device)
    if w.shape != (len(e),):
        raise ValueError(f"weights must have shape ({len(e)},), got {tuple(w.shape)}")
    idx = torch.as_tensor(np.concatenate([e, e[:, ::-1]], axis=0).T.copy(), device=w.device)
    vals = torch.cat([w, w])
    if layout == "dense":
        out = w.new_zeros((n_nodes, n_nodes))
        return out.index_put((idx[0], idx[1]), vals, accumulate=True)
    if layout == "sparse":
        return torch.sparse_coo_tensor(idx, vals, (n_nodes, n_nodes), check_invariants=False).coalesce()
    raise ValueError(f"layout must be 'sparse', 'dense' or 'scipy', got {layout!r}")
