"""Clustering of spatial embeddings into instances (Neven et al. [1]_, Sec. 3.4).

Objects are grown from seeds: the unclustered foreground pixel with the
highest seed score becomes a centre (its embedding) with its own bandwidth;
every foreground pixel whose embedding lies inside the centre's Gaussian
(``phi > 0.5``) joins the proposal, which is accepted when it is large enough
and mostly unclustered; its pixels are then marked clustered either way. The
search for the pixels near a centre uses a k-d tree of the embeddings
(:class:`scipy.spatial.cKDTree`), so the cost grows with the object sizes,
not with (pixels x objects).

References
----------
.. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..nn.spatial_embedding import LOG2, SIGMA_SCALE

__all__ = ["ClusteringParams", "cluster_embeddings"]


@dataclass(frozen=True)
class ClusteringParams:
    """Thresholds of :func:`cluster_embeddings`.

    Attributes
    ----------
    fg_threshold : float
        Pixels with seed score above it are foreground (paper: 0.5).
    seed_threshold : float
        Stop when the best unclustered seed score falls below it (paper: 0.9).
    min_size : int
        Minimum pixels of an accepted object (paper: 128 for cars).
    min_unclustered : float
        Minimum fraction of a proposal's pixels still unclustered (paper: 0.5).
    """

    fg_threshold: float = 0.5
    seed_threshold: float = 0.9
    min_size: int = 16
    min_unclustered: float = 0.5

    def __post_init__(self) -> None:
        for name in ("fg_threshold", "seed_threshold", "min_unclustered"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if int(self.min_size) < 1:
            raise ValueError(f"min_size must be >= 1, got {self.min_size}")


def _checked(name: str, array, ndim: int) -> np.ndarray:
    out = np.asarray(array)
    if not np.issubdtype(out.dtype, np.floating):
        out = out.astype(np.float64)
    if out.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def cluster_embeddings(
    embedding: np.ndarray,
    sigma: np.ndarray,
    seed: np.ndarray,
    params: ClusteringParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group pixels into instances around high-seed pixels.

    Parameters
    ----------
    embedding : ndarray (2, H, W)
        Spatial embeddings (x, y) in coordinate units.
    sigma : ndarray (n_sigma, H, W)
        Raw bandwidths; ``s = exp(10 sigma)``, one channel (isotropic) or two
        (x, y).
    seed : ndarray (H, W)
        Seed scores in [0, 1] of one class.
    params : ClusteringParams, optional
        Thresholds (defaults of :class:`ClusteringParams`).

    Returns
    -------
    labels : ndarray of int32 (H, W)
        0 = background, objects 1..n in order of decreasing score; later
        proposals overwrite earlier ones where they overlap (as in [1]_), and
        objects left with no pixel are dropped.
    scores : ndarray of float (n + 1,)
        ``scores[l]`` is the seed score of object ``l``; ``scores[0]`` is NaN.
    """
    params = params or ClusteringParams()
    # Full maps stay in their dtype (float32 from the network); only the
    # foreground pixels are converted to float64 below.
    embedding = _checked("embedding", embedding, 3)
    sigma = _checked("sigma", sigma, 3)
    seed = _checked("seed", seed, 2)
    shape = seed.shape
    if embedding.shape != (2, *shape) or sigma.shape[1:] != shape or sigma.shape[0] not in (1, 2):
        raise ValueError(
            f"embedding {embedding.shape}, sigma {sigma.shape} and seed {seed.shape} do not match "
            "(expected (2, H, W), (1 or 2, H, W), (H, W))"
        )
    labels = np.zeros(shape, np.int32)
    fg = np.flatnonzero(seed.reshape(-1) > params.fg_threshold)
    min_size = int(params.min_size)
    if fg.size < min_size:
        return labels, np.full(1, np.nan)
    points = embedding.reshape(2, -1)[:, fg].T.astype(np.float64)  # (M, 2)
    scale = np.exp(SIGMA_SCALE * sigma.reshape(sigma.shape[0], -1)[:, fg].T.astype(np.float64))  # (M, n_sigma)
    if scale.shape[1] == 1:
        scale = np.repeat(scale, 2, axis=1)
    scores_fg = seed.reshape(-1)[fg].astype(np.float64)
    tree = cKDTree(points)
    unclustered = np.ones(fg.size, bool)
    n_unclustered = fg.size
    assigned = np.zeros(fg.size, np.int64)
    scores = [np.nan]
    for i in np.argsort(-scores_fg, kind="stable"):
        if scores_fg[i] < params.seed_threshold or n_unclustered < min_size:
            break
        if not unclustered[i]:
            continue
        centre, s = points[i], scale[i]
        radius = np.sqrt(LOG2 / s.min())
        near = np.asarray(tree.query_ball_point(centre, radius), dtype=np.int64)
        inside = near[((points[near] - centre) ** 2 * s).sum(axis=1) < LOG2]
        if inside.size == 0:  # only with a non-finite bandwidth; never stall
            inside = np.array([i])
        if inside.size >= min_size and unclustered[inside].mean() > params.min_unclustered:
            assigned[inside] = len(scores)
            scores.append(float(scores_fg[i]))
        n_unclustered -= int(unclustered[inside].sum())
        unclustered[inside] = False
    # Drop objects entirely overwritten and renumber 1..n.
    present = np.unique(assigned)
    present = present[present > 0]
    relabel = np.zeros(len(scores), np.int32)
    relabel[present] = np.arange(1, present.size + 1, dtype=np.int32)
    labels.reshape(-1)[fg] = relabel[assigned]
    return labels, np.concatenate([[np.nan], np.asarray(scores)[present]])
