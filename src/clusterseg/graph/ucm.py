"""Boundary-driven region merging and ultrametric contour maps (UCM).

Adjacent regions are merged greedily, weakest boundary first, where the
strength of the boundary between two regions is the mean of a boundary map
along their shared border (plus, optionally, the distance of their mean
features). Every merge is recorded with its height; heights are made
monotone so that they form an ultrametric, and the hierarchy is returned as
an ultrametric contour map: thresholding it at ``t`` gives the segmentation
at that scale, and the partitions for increasing ``t`` are nested [1]_.

The map uses the layout of the BSDS500 benchmark tools ("ucm2"): shape
``(2H+1, 2W+1)``; pixel ``(i, j)`` sits at ``(2i+1, 2j+1)``, the boundary
between horizontally (vertically) adjacent pixels between them, and the even
positions are junctions. On this grid the partition at every threshold is
exact (a one-pixel-wide (H, W) boundary map cannot say on which side of it a
boundary pixel lies).

References
----------
.. [1] Arbelaez, P., Maire, M., Fowlkes, C., & Malik, J. (2011). Contour
       detection and hierarchical image segmentation. IEEE TPAMI, 33(5).
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .adjacency import check_label_map

_MIN_HEIGHT = 1e-9

__all__ = ["MergeTree", "boundary_merge", "ucm_to_labels", "border_statistics"]


@dataclass
class MergeTree:
    """Result of :func:`boundary_merge`.

    Attributes
    ----------
    base : (H, W) int64
        Base regions ``0..n-1``.
    merges : (m, 2) int64
        Merges in order: ``(a, b)`` means region ``b`` joined region ``a``
        (regions named by a base label; ``a`` names the union afterwards).
    heights : (m,) float64
        Non-decreasing merge heights.
    ucm : (2H+1, 2W+1) float64
        Ultrametric contour map (see the module docstring).
    """

    base: np.ndarray
    merges: np.ndarray
    heights: np.ndarray
    ucm: np.ndarray

    @property
    def n_base(self) -> int:
        return int(self.base.max()) + 1

    def labels(self, n_segments: int) -> np.ndarray:
        """Consecutive labels after the first ``n_base - n_segments`` merges (``n_segments`` regions, or
        the base if it has fewer).

        Levels by count follow the merge order, so they are nested and have
        exactly the requested count. Thresholds of :attr:`ucm` give the same
        partitions, except inside a plateau of the ultrametric (several
        merges at one height, see :func:`boundary_merge`), where a threshold
        can only give the coarser end.
        """
        if int(n_segments) < 1:
            raise ValueError(f"n_segments must be >= 1, got {n_segments}")
        n = self.n_base
        parent = np.arange(n)
        for a, b in self.merges[: max(0, n - int(n_segments))]:
            parent[b] = a
        for _ in range(64):  # path compression by repeated lookup
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        _, inv = np.unique(parent, return_inverse=True)
        return inv.astype(np.int32)[self.base]

    def levels(self, n_segments) -> dict[int, np.ndarray]:
        """``{k: labels(k)}`` for every requested count."""
        return {int(k): self.labels(int(k)) for k in n_segments}


def border_statistics(labels: np.ndarray, boundary: np.ndarray | None = None):
    """Shared borders of 4-adjacent regions.

    Returns
    -------
    edges : (E, 2) int64, ``a < b``
    length : (E,) float64, border length in pixel pairs
    strength_sum : (E,) float64, sum over the border of the mean boundary value of the two pixels
    """
    labels = np.asarray(labels, dtype=np.int64)  # lo * n below must not overflow
    n = int(labels.max()) + 1
    keys, vals = [], []
    b = None if boundary is None else np.asarray(boundary, dtype=np.float64)
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = labels[sl_a], labels[sl_b]
        diff = la != lb
        lo = np.minimum(la[diff], lb[diff])
        hi = np.maximum(la[diff], lb[diff])
        keys.append(lo * n + hi)
        vals.append(np.zeros(diff.sum()) if b is None else 0.5 * (b[sl_a][diff] + b[sl_b][diff]))
    keys = np.concatenate(keys)
    uniq, inv = np.unique(keys, return_inverse=True)
    length = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    strength = np.bincount(inv, weights=np.concatenate(vals), minlength=len(uniq))
    return np.stack([uniq // n, uniq % n], 1).astype(np.int64), length, strength


def _connected_pieces(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base regions and, for each, the input label it comes from.

    Labels that are consecutive and 4-connected are kept as they are;
    otherwise every 4-connected piece becomes a region, numbered in raster order.
    """
    from skimage.measure import label as cc_label

    n_labels = int(labels.max()) + 1
    pieces = cc_label(labels, connectivity=1, background=-1) - 1
    if int(pieces.max()) + 1 == n_labels and len(np.unique(labels)) == n_labels:
        return labels, np.arange(n_labels)
    origin = np.zeros(int(pieces.max()) + 1, dtype=np.int64)
    origin[pieces.ravel()] = labels.ravel()
    return pieces.astype(np.int64), origin


def _feature_distance(fa: np.ndarray, fb: np.ndarray, kind: str) -> float:
    if kind == "chi2":  # histograms: 0.5 * sum (p - q)^2 / (p + q)
        s = fa + fb
        nz = s > 0
        return float(0.5 * ((fa[nz] - fb[nz]) ** 2 / s[nz]).sum())
    return float(np.sqrt(((fa - fb) ** 2).sum()))


def _merge_cost(strength, length, fa, fb, sa, sb, feature_weight, area_scale, kind="euclidean"):
    cost = strength / length
    if fa is not None:
        cost += feature_weight * _feature_distance(fa, fb, kind)
    if area_scale > 0:
        # small regions merge first (their boundaries are least reliable)
        cost *= min(1.0, min(sa, sb) / area_scale) ** 0.5
    return cost


def boundary_merge(
    labels: np.ndarray,
    boundary: np.ndarray | None = None,
    node_features: np.ndarray | None = None,
    *,
    feature_weight: float = 1.0,
    feature_distance: str = "euclidean",
    area_scale: float = 0.0,
) -> MergeTree:
    """Merge adjacent regions, weakest boundary first, into a hierarchy with a UCM.

    The cost of merging regions A and B is::

        (mean(boundary along A|B) + feature_weight * ||f_A - f_B||) * min(1, min(|A|, |B|) / area_scale) ** 0.5

    with ``f`` the area-weighted mean of ``node_features`` (updated on every
    merge) and ``|A|`` areas in pixels. Merging can lower a cost (the mean
    boundary of a merged border can drop), so the height of a merge is its
    cost or, if higher, the height of the merge before it: heights never
    decrease along the merge sequence, which makes them an ultrametric (and
    makes runs of merges share one height where costs dropped).

    Parameters
    ----------
    labels : (H, W) int
        Base regions (e.g. superpixels). Each 4-connected piece of a label is
        one base region (``tree.base`` numbers them 0..n-1 in raster order),
        so that the UCM, which can only separate pixels by boundaries, and
        the merge tree describe the same regions.
    boundary : (H, W) float, optional
        Boundary strength per pixel (larger = more likely a boundary).
    node_features : (labels.max() + 1, D) float, optional
        One feature vector per label (shared by the pieces of a split label).
    feature_weight : float
        Weight of the feature distance.
    feature_distance : {"euclidean", "chi2"}
        Distance of the mean features: Euclidean, or the chi-squared
        distance ``0.5 * sum (p - q)^2 / (p + q)`` for histograms.
    area_scale : float
        Regions smaller than this (pixels) are merged earlier; 0 disables.

    Returns
    -------
    MergeTree
        ``tree.ucm`` is the ultrametric contour map, ``tree.labels(k)`` the level with k regions.

    Examples
    --------
    >>> lab = np.repeat(np.array([[0, 1, 2]]), 4, axis=0).repeat(2, axis=1)
    >>> edge = np.zeros(lab.shape); edge[:, 3:5] = 1.0  # strong boundary between 1 and 2
    >>> tree = boundary_merge(lab, edge)
    >>> tree.labels(2)[0]
    array([0, 0, 0, 0, 1, 1], dtype=int32)
    """
    if feature_distance not in ("euclidean", "chi2"):
        raise ValueError(f"feature_distance must be 'euclidean' or 'chi2', got {feature_distance!r}")
    labels = check_label_map(labels)
    base, origin = _connected_pieces(labels)
    n = int(base.max()) + 1
    if boundary is not None:
        boundary = np.asarray(boundary, dtype=np.float64)
        if boundary.shape != base.shape:
            raise ValueError(f"boundary has shape {boundary.shape}, labels {base.shape}")
    feats = None if node_features is None else np.asarray(node_features, dtype=np.float64)
    n_labels = int(labels.max()) + 1
    if feats is not None and (feats.ndim != 2 or len(feats) != n_labels):
        raise ValueError(f"node_features must be (labels.max() + 1 = {n_labels}, D), got {feats.shape}")
    if feats is not None:
        feats = feats[origin]  # one row per base region
    edges, length, strength = border_statistics(base, boundary)
    area = np.bincount(base.ravel(), minlength=n).astype(np.float64)
    cost = functools.partial(_merge_cost, feature_weight=feature_weight, area_scale=area_scale,
                             kind=feature_distance)
    merges, heights, edge_height = _greedy_merge(n, edges, length, strength, area, feats, cost)
    ucm = _ucm_grid(base, edges, edge_height)
    return MergeTree(base=base, merges=merges, heights=heights, ucm=ucm)


def _greedy_merge(n, edges, length, strength, area, feats, merge_cost):
    """Lazy-heap agglomeration; returns merges, heights and the height of every base edge."""
    nbrs: list[dict[int, list]] = [dict() for _ in range(n)]
    for e, (a, b) in enumerate(edges):
        rec = [strength[e], length[e], [e]]  # shared by both directions
        nbrs[a][b] = rec
        nbrs[b][a] = rec
    feats = None if feats is None else feats.copy()
    area = area.copy()
    version = [0] * n

    def entry(a, b):
        fa, fb = (None, None) if feats is None else (feats[a], feats[b])
        c = merge_cost(nbrs[a][b][0], nbrs[a][b][1], fa, fb, area[a], area[b])
        return (c, a, b, version[a], version[b])

    heap = [entry(int(a), int(b)) for a, b in edges]
    heapq.heapify(heap)
    edge_height = np.zeros(len(edges))
    merges, heights = [], []
    level = 0.0
    while heap:
        c, a, b, va, vb = heapq.heappop(heap)
        if version[a] != va or version[b] != vb or b not in nbrs[a]:
            continue
        if len(nbrs[a]) < len(nbrs[b]):
            a, b = b, a  # move the smaller neighbourhood into the larger
        level = max(level, c, _MIN_HEIGHT)  # ultrametric: never below an earlier merge; > 0 keeps t=0 the base
        edge_height[nbrs[a].pop(b)[2]] = level
        del nbrs[b][a]
        merges.append((a, b))
        heights.append(level)
        if feats is not None:
            feats[a] = (feats[a] * area[a] + feats[b] * area[b]) / (area[a] + area[b])
        area[a] += area[b]
        for c2, r2 in nbrs[b].items():
            del nbrs[c2][b]
            r1 = nbrs[a].get(c2)
            if r1 is None:
                nbrs[a][c2] = nbrs[c2][a] = r2
            else:
                r1[0] += r2[0]
                r1[1] += r2[1]
                r1[2].extend(r2[2])
        nbrs[b] = {}
        version[a] += 1
        version[b] = -1  # dead
        for c2 in nbrs[a]:
            heapq.heappush(heap, entry(a, c2))
    return np.asarray(merges, dtype=np.int64).reshape(-1, 2), np.asarray(heights), edge_height


def _ucm_grid(base: np.ndarray, edges: np.ndarray, edge_height: np.ndarray) -> np.ndarray:
    """Place every base-edge height on the doubled grid; junctions take the max of their four edges."""
    h, w = base.shape
    n = int(base.max()) + 1
    edge_keys = edges[:, 0] * n + edges[:, 1]  # sorted: border_statistics takes them from np.unique
    ucm = np.zeros((2 * h + 1, 2 * w + 1))

    def heights_between(la, lb):
        out = np.zeros(la.shape)
        diff = la != lb
        key = np.minimum(la[diff], lb[diff]) * n + np.maximum(la[diff], lb[diff])
        out[diff] = edge_height[np.searchsorted(edge_keys, key)]
        return out

    ucm[1::2, 2:-1:2] = heights_between(base[:, :-1], base[:, 1:])
    ucm[2:-1:2, 1::2] = heights_between(base[:-1, :], base[1:, :])
    j = ucm[2:-1:2, 2:-1:2]
    np.maximum.reduce([j, ucm[1:-2:2, 2:-1:2], ucm[3::2, 2:-1:2], ucm[2:-1:2, 1:-2:2], ucm[2:-1:2, 3::2]], out=j)
    top = edge_height.max() if len(edge_height) else 0.0
    ucm[0, :] = ucm[-1, :] = ucm[:, 0] = ucm[:, -1] = top  # the frame never joins regions
    return ucm


def ucm_to_labels(ucm: np.ndarray, threshold: float | None = None, *, n_segments: int | None = None) -> np.ndarray:
    """Segmentation of an ultrametric contour map at one scale.

    Parameters
    ----------
    ucm : (2H+1, 2W+1) float
        Ultrametric contour map in the BSDS "ucm2" layout (see
        :func:`boundary_merge`).
    threshold : float, optional
        Boundaries with value ``> threshold`` are kept (BSDS convention,
        regions are the components of ``ucm <= threshold``).
    n_segments : int, optional
        Instead of a threshold: the finest level with at most this many
        regions (several merges at one height can skip a count).

    Returns
    -------
    labels : (H, W) int32
        Consecutive labels from 0.
    """
    ucm = np.asarray(ucm, dtype=np.float64)
    if ucm.ndim != 2 or ucm.shape[0] % 2 == 0 or ucm.shape[1] % 2 == 0 or min(ucm.shape) < 3:
        raise ValueError(f"ucm must be a (2H+1, 2W+1) map (BSDS ucm2 layout), got shape {ucm.shape}")
    if (threshold is None) == (n_segments is None):
        raise ValueError("give exactly one of threshold and n_segments")
    if threshold is not None:
        return _components(ucm, float(threshold))
    if int(n_segments) < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    cuts = np.unique(ucm[1:-1, 1:-1])
    lo, hi = 0, len(cuts) - 1  # smallest threshold index giving <= n_segments regions
    while lo < hi:
        mid = (lo + hi) // 2
        if _components(ucm, cuts[mid]).max() + 1 <= n_segments:
            hi = mid
        else:
            lo = mid + 1
    return _components(ucm, cuts[lo])


def _components(ucm: np.ndarray, threshold: float) -> np.ndarray:
    lab, _ = ndi.label(ucm <= threshold)  # 4-connectivity: exact with max-valued junctions
    pix = lab[1::2, 1::2]
    _, inv = np.unique(pix, return_inverse=True)
    return inv.reshape(pix.shape).astype(np.int32)
