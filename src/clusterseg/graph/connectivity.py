"""Connected-component relabelling and small-fragment merging for label maps.

Every superpixel method in :mod:`clusterseg.superpixels` ends with
:func:`enforce_connectivity`, so that the returned label map always consists of
spatially connected segments numbered ``0..n-1``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from skimage.measure import label as _cc_label

from .._jit import available as _jit_available
from .._jit import jit

__all__ = ["enforce_connectivity"]


def _face_pairs(comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component ids of all face-adjacent pixel pairs that straddle a boundary."""
    firsts, seconds = [], []
    for axis in range(comp.ndim):
        lo = [slice(None)] * comp.ndim
        hi = [slice(None)] * comp.ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        a = comp[tuple(lo)]
        b = comp[tuple(hi)]
        differ = a != b
        firsts.append(a[differ])
        seconds.append(b[differ])
    return np.concatenate(firsts), np.concatenate(seconds)


def _pixel_borders(comp, n):  # pragma: no cover - compiled
    """``(u, v, length)`` of every pair of face-adjacent components of a 2-D ``comp`` map, ``u < v``,
    in increasing ``(u, v)`` order (as :func:`_border_lengths` of :func:`_face_pairs`): the pairs
    are bucketed by ``u`` with a counting sort and each short bucket is sorted on its own."""
    h, w = comp.shape
    count = np.zeros(n + 1, np.int64)
    for r in range(h):
        for c in range(w):
            a = comp[r, c]
            if c + 1 < w and comp[r, c + 1] != a:
                count[min(a, comp[r, c + 1]) + 1] += 1
            if r + 1 < h and comp[r + 1, c] != a:
                count[min(a, comp[r + 1, c]) + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    partner = np.empty(start[-1], np.int64)
    for r in range(h):
        for c in range(w):
            a = comp[r, c]
            if c + 1 < w and comp[r, c + 1] != a:
                lo, hi = min(a, comp[r, c + 1]), max(a, comp[r, c + 1])
                partner[fill[lo]] = hi
                fill[lo] += 1
            if r + 1 < h and comp[r + 1, c] != a:
                lo, hi = min(a, comp[r + 1, c]), max(a, comp[r + 1, c])
                partner[fill[lo]] = hi
                fill[lo] += 1
    u = np.empty(partner.size, np.int64)
    v = np.empty(partner.size, np.int64)
    length = np.empty(partner.size, np.float64)
    m = 0
    for a in range(n):
        lo, hi = start[a], start[a + 1]
        if hi - lo > 64:  # a long border (one segment around many others)
            partner[lo:hi].sort()
        for i in range(lo + 1, hi):  # insertion sort: most buckets hold a few dozen pairs
            x = partner[i]
            j = i - 1
            while j >= lo and partner[j] > x:
                partner[j + 1] = partner[j]
                j -= 1
            partner[j + 1] = x
        for i in range(lo, hi):
            if i > lo and partner[i] == partner[i - 1]:
                length[m - 1] += 1.0
            else:
                u[m], v[m], length[m] = a, partner[i], 1.0
                m += 1
    return u[:m], v[:m], length[:m]


def _border_lengths(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected adjacency ``(u, v, length)`` with ``u < v`` from (possibly repeated) pairs."""
    keep = a != b
    a, b = a[keep], b[keep]
    if weights is not None:
        weights = weights[keep]
    u = np.minimum(a, b).astype(np.int64)
    v = np.maximum(a, b).astype(np.int64)
    key = u * n + v
    uniq, inverse = np.unique(key, return_inverse=True)
    length = np.bincount(inverse, weights=weights, minlength=uniq.size)
    return uniq // n, uniq % n, length


def enforce_connectivity(
    labels: np.ndarray,
    min_size: int = 0,
    max_size: int | None = None,
    *,
    connectivity: int = 1,
) -> np.ndarray:
    """Split disconnected segments and merge small fragments into a neighbour.

    Each label of ``labels`` is first split into its connected components. Every
    component with fewer than ``min_size`` pixels is then merged into the
    adjacent component with which it shares the **longest border** (ties go to the
    neighbour that comes first in raster order). Merging is done
    in vectorised rounds (Boruvka style): in each round every still-too-small
    segment picks its neighbour, the resulting merge graph is contracted with
    :func:`scipy.sparse.csgraph.connected_components`, border lengths are
    re-accumulated, and the next round handles the segments that are still too
    small. Each round at least halves the number of small segments, so the cost is
    ``O(N log N)`` in the number of pixels (a 4000x3000 map takes seconds).

    Parameters
    ----------
    labels : (H, W) or (P, R, C) array of int or bool
        Input label map. Any integer values are allowed (negative too); pixels
        with equal values that touch (see ``connectivity``) belong to the same
        segment.
    min_size : int, optional
        Components with fewer pixels are merged into a neighbour. ``0`` or ``1``
        only relabels connected components. A component without any neighbour
        (e.g. a single-segment image) is kept whatever its size.
    max_size : int, optional
        Soft upper bound for merges. A small fragment prefers neighbours whose
        size plus its own does not exceed ``max_size`` and falls back to the
        longest-border neighbour only when no such neighbour exists. Components
        that are already larger than ``max_size`` are never split (unlike
        :func:`skimage.segmentation.slic`, where ``max_size_factor`` only bounds
        the search, here it steers which neighbour absorbs a fragment). Because
        several fragments may join the same neighbour in one round, the bound is
        not strict.
    connectivity : int, optional
        Neighbourhood for connected components, as in
        :func:`skimage.measure.label`: ``1`` = 4-connectivity in 2D (faces),
        ``labels.ndim`` = 8-connectivity in 2D. Merging always uses face
        adjacency to measure border lengths.

    Returns
    -------
    out : ndarray of int32, same shape as ``labels``
        Consecutive labels ``0..n-1`` in raster order of their first pixel; every
        segment is connected.

    Raises
    ------
    ValueError
        If ``labels`` is empty, not 2D/3D, not integer, or ``min_size``/``max_size``
        are negative.

    References
    ----------
    .. [1] Achanta, R., Shaji, A., Smith, K., Lucchi, A., Fua, P., Suesstrunk, S.
       "SLIC Superpixels Compared to State-of-the-Art Superpixel Methods",
       IEEE TPAMI 34(11), 2012 (post-processing step that enforces connectivity).
    .. [2] Boruvka, O. "O jistem problemu minimalnim", 1926 (parallel
       contraction rounds).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[0, 0, 1, 0],
    ...                    [0, 0, 1, 0],
    ...                    [1, 1, 1, 0]])
    >>> enforce_connectivity(labels)  # label 0 is in two pieces
    array([[0, 0, 1, 2],
           [0, 0, 1, 2],
           [1, 1, 1, 2]], dtype=int32)
    >>> enforce_connectivity(labels, min_size=4)  # the 3-pixel piece is merged
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [1, 1, 1, 1]], dtype=int32)
    """
    labels, min_size = _check_arguments(labels, min_size, max_size, connectivity)
    comp = _components(labels, connectivity)
    n = int(comp.max()) + 1
    sizes = np.bincount(comp.ravel(), minlength=n).astype(np.int64)
    if min_size <= 1 or n == 1 or sizes.min() >= min_size:
        return comp.astype(np.int32)
    if comp.ndim == 2 and _jit_available():
        u, v, length = jit(_pixel_borders)(comp, n)
    else:
        u, v, length = _border_lengths(*_face_pairs(comp), None, n)
    # group[i]: current segment of original component i (segment ids are the
    # smallest original component id of the group, i.e. raster order is kept).
    group = np.arange(n, dtype=np.int64)
    seg_size = sizes.copy()  # indexed by segment id; 0 for merged-away ids
    while u.size:
        chosen = _choose_targets(u, v, length, seg_size, min_size, max_size)
        if chosen is None:
            break
        new_id = _contract(*chosen, n)  # segment id -> new segment id
        # seg_size is 0 for ids that are no longer segment representatives
        seg_size = np.bincount(new_id, weights=seg_size, minlength=n).astype(np.int64)
        group = new_id[group]
        u, v, length = _border_lengths(new_id[u], new_id[v], length, n)
    # consecutive relabelling; group ids are increasing with raster order of first pixel
    _, final = np.unique(group, return_inverse=True)
    return final.astype(np.int32)[comp]


def _check_arguments(labels, min_size, max_size, connectivity) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be a 2D or 3D array, got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError(f"labels is empty (shape {labels.shape})")
    if labels.dtype == bool:
        labels = labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    if int(min_size) < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    if max_size is not None and int(max_size) < 0:
        raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
    if not 1 <= connectivity <= labels.ndim:
        raise ValueError(f"connectivity must be in 1..{labels.ndim}, got {connectivity}")
    return labels, int(min_size)


def _components(labels: np.ndarray, connectivity: int) -> np.ndarray:
    """Connected components of equal-valued pixels, numbered 0..C-1 in raster order (int64)."""
    # skimage.measure.label treats the ``background`` value specially, so map labels
    # to 0..m-1 first and declare -1 (absent) as background.
    lo, hi = int(labels.min()), int(labels.max())
    if lo >= 0 and hi < np.iinfo(np.int32).max:
        dense = labels.astype(np.int32, copy=False)
    else:
        _, dense = np.unique(labels, return_inverse=True)
        dense = dense.reshape(labels.shape).astype(np.int32, copy=False)
    comp = _cc_label(dense, background=-1, connectivity=connectivity).astype(np.int64, copy=False)
    comp -= 1
    return comp


def _choose_targets(u, v, length, seg_size, min_size, max_size):
    """One Boruvka round: the neighbour that each too-small segment joins, or None when none is small."""
    small = seg_size < min_size
    # directed candidates: source -> target for every small source
    # (v, u) first: with u < v sorted, a stable sort keeps each source's
    # neighbours in increasing id order, which makes tie-breaking raster order
    src = np.concatenate([v, u])
    dst = np.concatenate([u, v])
    w = np.concatenate([length, length])
    cand = small[src]
    if not cand.any():
        return None
    src, dst, w = src[cand], dst[cand], w[cand]
    # best neighbour per source: one that fits under max_size first, then the
    # longest shared border; remaining ties go deterministically to the
    # neighbour listed first (lowest id among those on the same side)
    score = w.astype(np.int64)
    top = int(score.max()) + 1
    if max_size is not None:
        fits = (seg_size[src] + seg_size[dst]) <= max_size
        score = score + fits * top
    span = 2 * top
    order = np.argsort(src * span + (span - 1 - score), kind="stable")
    src_sorted = src[order]
    first = np.ones(src_sorted.size, dtype=bool)
    first[1:] = src_sorted[1:] != src_sorted[:-1]
    return src_sorted[first], dst[order][first]


def _contract(chosen_src: np.ndarray, chosen_dst: np.ndarray, n: int) -> np.ndarray:
    """New id of every segment after merging the chosen pairs (cycles are harmless): its group's smallest id."""
    graph = sparse.coo_matrix((np.ones(chosen_src.size, dtype=np.int8), (chosen_src, chosen_dst)), shape=(n, n))
    _, cc = connected_components(graph, directed=False)
    rep = np.full(cc.max() + 1, n, dtype=np.int64)
    np.minimum.at(rep, cc, np.arange(n))
    return rep[cc]
