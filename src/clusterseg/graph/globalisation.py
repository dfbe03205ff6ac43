"""Spectral globalisation of a boundary map: the "sPb" signal of Arbelaez et al. [1]_.

A local boundary map fires on texture as much as on object outlines. Its
globalised version keeps the outlines that partition the image as a whole:
pixels within a small radius are linked with the *intervening contour*
affinity of Fowlkes et al. [2]_ (high when no strong boundary crosses the
straight line between them), the generalised eigenvectors of the normalised
cut problem ``(D - W) v = lambda D v`` are computed (Shi & Malik [3]_), and
the gradient magnitudes of the eigenvectors, weighted by
``1 / sqrt(lambda)``, are summed.

:func:`pmi_boundary` runs the same spectral step on affinities learned from
the image itself, the pointwise mutual information of Isola et al. [4]_:
colours that often sit next to each other in this image (the stripes of a
zebra) are linked strongly even where they differ, so texture does not cut.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
       hierarchical image segmentation", IEEE TPAMI 33(5), 2011 (Sec. 3.2).
.. [2] C. Fowlkes, D. Martin, J. Malik, "Learning affinity functions for
       image segmentation: combining patch-based and gradient-based
       approaches", CVPR 2003.
.. [3] J. Shi, J. Malik, "Normalized cuts and image segmentation", IEEE
       TPAMI 22(8), 2000.
.. [4] P. Isola, D. Zoran, D. Krishnan, E. H. Adelson, "Crisp boundary
       detection using pointwise mutual information", ECCV 2014.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse

from .spectral import ncut_eigenvectors

__all__ = ["intervening_contour_affinity", "pmi_affinity", "pmi_boundary", "spectral_boundary"]


def _half_offsets(radius: int) -> list[tuple[int, int]]:
    """Offsets (dy, dx) within ``radius``, one of each +/- pair (the affinity is symmetric)."""
    return [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1)
            if (dy > 0 or dx > 0) and dy * dy + dx * dx <= radius * radius]


def _neighbour_pairs(shape: tuple[int, int], radius: int):
    """For every offset of :func:`_half_offsets` that fits in ``shape``: ``(dy, dx, a, c)`` with the flat
    indices ``a`` of the pixels that have a neighbour at ``+(dy, dx)`` and ``c`` of those neighbours
    (``a`` in raster order of the pixels ``[: H - dy, x0:x1]``)."""
    h, w = shape
    index = np.arange(h * w).reshape(h, w)
    for dy, dx in _half_offsets(int(radius)):
        if dy >= h or abs(dx) >= w:
            continue
        x0, x1 = max(0, -dx), w - max(0, dx)
        yield dy, dx, index[: h - dy, x0:x1].ravel(), index[dy:, x0 + dx:x1 + dx].ravel()


def _symmetric_affinity(n: int, pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> sparse.csr_matrix:
    """(n, n) matrix with ``W[a, c] = W[c, a] = v`` for every ``(a, c, v)`` of ``pairs``."""
    if not pairs:
        return sparse.csr_matrix((n, n))
    rows = np.concatenate([np.concatenate([a, c]) for a, c, _ in pairs])
    cols = np.concatenate([np.concatenate([c, a]) for a, c, _ in pairs])
    values = np.concatenate([np.concatenate([v, v]) for _, _, v in pairs])
    return sparse.csr_matrix((values, (rows, cols)), shape=(n, n))


def _max_along_line(padded: np.ndarray, radius: int, shape: tuple[int, int], dy: int, dx: int) -> np.ndarray:
    """For every pixel p, the maximum of the boundary on the rasterised segment from p to p + (dy, dx)."""
    h, w = shape
    out = np.zeros(shape, padded.dtype)
    for t in np.linspace(0.0, 1.0, max(abs(dy), abs(dx)) + 1):
        oy, ox = radius + int(round(t * dy)), radius + int(round(t * dx))
        np.maximum(out, padded[oy:oy + h, ox:ox + w], out=out)
    return out


def intervening_contour_affinity(boundary: np.ndarray, radius: int = 3, rho: float = 0.1) -> sparse.csr_matrix:
    """Pixel affinities ``W_ij = exp(-max_{p on segment ij} boundary(p) / rho)`` for ``|i - j| <= radius``.

    Parameters
    ----------
    boundary : (H, W) float array
        Boundary strength, about 0 (none) to 1 (strong).
    radius : int
        Neighbourhood radius in pixels.
    rho : float
        Scale of the boundary strength.

    Returns
    -------
    scipy.sparse.csr_matrix, (H*W, H*W)
        Symmetric, entries in ``(0, 1]``, zero diagonal; pixel ``(y, x)`` is
        index ``y * W + x``.
    """
    b = np.asarray(boundary, np.float64)
    if b.ndim != 2:
        raise ValueError(f"boundary must be a 2-D map, got shape {b.shape}")
    if radius < 1 or rho <= 0:
        raise ValueError(f"radius must be >= 1 and rho > 0, got radius={radius}, rho={rho}")
    padded = np.pad(b, radius, mode="edge")
    pairs = []
    for dy, dx, a, c in _neighbour_pairs(b.shape, radius):
        strongest = _max_along_line(padded, int(radius), b.shape, dy, dx).ravel()
        pairs.append((a, c, np.exp(-strongest[a] / rho)))
    return _symmetric_affinity(b.size, pairs)


def spectral_boundary(boundary: np.ndarray, n_vectors: int = 16, *, downsample: int = 2, radius: int = 3,
                      rho: float = 0.1, sigma: float = 1.0, random_state: int | None = 0) -> np.ndarray:
    """Globalised boundary ("sPb" of [1]_) of a local boundary map.

    Parameters
    ----------
    boundary : (H, W) float array
        Local boundary strength (e.g. :func:`clusterseg.contours.pb_contours`).
    n_vectors : int
        Non-trivial eigenvectors used.
    downsample : int
        The pixel graph is built on the map reduced by this factor (area
        average), which keeps it small (the paper's radius 5 at full
        resolution is about radius 3 here at factor 2); the eigenvectors are
        resized back.
    radius, rho
        See :func:`intervening_contour_affinity`.
    sigma : float
        Gaussian derivative scale of the eigenvector gradients (full-resolution pixels).
    random_state : int or None
        Start vector of the eigensolver.

    Returns
    -------
    (H, W) float32, >= 0
        ``sum_k |grad v_k| / sqrt(lambda_k)`` with each ``v_k`` scaled to a
        maximum magnitude of 1; not normalised (its scale varies from image
        to image).

    Examples
    --------
    >>> b = np.zeros((40, 60), np.float32); b[:, 29:31] = 1.0
    >>> s = spectral_boundary(b, n_vectors=2)
    >>> bool(s[20, 30] > 5 * s[20, 10])
    True
    """
    b = np.asarray(boundary, np.float32)
    if b.ndim != 2:
        raise ValueError(f"boundary must be a 2-D map, got shape {b.shape}")
    if n_vectors < 1 or downsample < 1:
        raise ValueError(f"n_vectors and downsample must be >= 1, got {n_vectors} and {downsample}")
    small = _reduced(b, downsample)
    return _eigenvector_gradients(intervening_contour_affinity(small, radius, rho), small.shape[:2], b.shape,
                                  n_vectors, sigma, random_state)


def _reduced(image: np.ndarray, downsample: int) -> np.ndarray:
    """``image`` (H, W[, C]) reduced by ``downsample`` by area averaging (at least one pixel)."""
    import cv2

    h, w = max(1, image.shape[0] // downsample), max(1, image.shape[1] // downsample)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != image.shape[:2] else image


def _eigenvector_gradients(affinity: sparse.csr_matrix, small: tuple[int, int], full: tuple[int, int],
                           n_vectors: int, sigma: float, random_state: int | None) -> np.ndarray:
    """``sum_k |grad v_k| / sqrt(lambda_k)`` over up to ``n_vectors`` non-trivial NCut eigenvectors of the
    pixel graph ``affinity`` on the grid ``small``, resized to ``full``; each ``v_k`` scaled to max 1."""
    import cv2

    out = np.zeros(full, np.float32)
    k = min(int(n_vectors) + 1, small[0] * small[1] - 1)  # + the trivial vector
    if k < 2:
        return out
    eigenvalues, vectors = ncut_eigenvectors(affinity, k, random_state=random_state, dense_below=2 * k + 3)
    for lam, v in zip(eigenvalues[1:], vectors[:, 1:].T):  # the first is constant: no boundary
        v = v.reshape(small).astype(np.float32)
        v /= max(float(np.abs(v).max()), 1e-12)
        if small != tuple(full):
            v = cv2.resize(v, (full[1], full[0]), interpolation=cv2.INTER_LINEAR)
        out += ndi.gaussian_gradient_magnitude(v, sigma) / np.sqrt(max(float(lam), 1e-6))
    return out


def pmi_affinity(words: np.ndarray, n_words: int | None = None, radius: int = 5, rho: float = 1.25,
                 prior: float = 1.0) -> sparse.csr_matrix:
    """Pixel affinities from the pointwise mutual information of neighbouring colour words ([4]_).

    ``P(A, B)`` is the frequency with which words ``A`` and ``B`` occur at two
    pixels at most ``radius`` apart in this image (symmetric counts plus
    ``prior`` per pair), ``P(A)`` its marginal, and
    ``W_ij = exp(PMI_rho(w_i, w_j))`` with
    ``PMI_rho(A, B) = log(P(A, B)^rho / (P(A) P(B)))``, scaled so that the
    largest value is 1. ``rho > 1`` favours pairs that are frequent, not only
    surprising. The paper estimates the density of continuous colour pairs
    with a kernel density estimate; counting pairs of k-means colour words is
    the discrete form of the same statistic, fast enough to run per image.

    Parameters
    ----------
    words : (H, W) int array
        Word of every pixel, in ``[0, n_words)``.
    n_words : int, optional
        Number of words (default ``words.max() + 1``).
    radius : int
        Pixels at most this far apart are linked.
    rho : float
        Exponent of the joint probability (1.25 in the paper).
    prior : float
        Pseudo-count added to every word pair.

    Returns
    -------
    scipy.sparse.csr_matrix, (H*W, H*W)
        Symmetric, entries in ``(0, 1]``, zero diagonal; pixel ``(y, x)`` is
        index ``y * W + x``.
    """
    words = np.asarray(words)
    if words.ndim != 2 or not np.issubdtype(words.dtype, np.integer):
        raise ValueError(f"words must be a 2-D integer map, got {words.dtype} of shape {words.shape}")
    if radius < 1 or rho <= 0 or prior <= 0:
        raise ValueError(f"radius must be >= 1, rho and prior > 0; got {radius}, {rho}, {prior}")
    q = int(words.max()) + 1 if n_words is None else int(n_words)
    if words.min() < 0 or words.max() >= q:
        raise ValueError(f"words must lie in [0, {q})")
    flat = words.ravel().astype(np.int64)
    pairs = [(a, c) for _, _, a, c in _neighbour_pairs(words.shape, radius)]
    counts = np.full(q * q, float(prior))
    for a, c in pairs:
        counts += np.bincount(flat[a] * q + flat[c], minlength=q * q)
        counts += np.bincount(flat[c] * q + flat[a], minlength=q * q)
    joint = counts.reshape(q, q) / counts.sum()
    marginal = joint.sum(1)
    pmi = rho * np.log(joint) - np.log(marginal)[:, None] - np.log(marginal)[None, :]
    pmi = 0.5 * (pmi + pmi.T)  # exactly symmetric (the two sums round differently)
    table = np.exp(pmi - pmi.max())
    return _symmetric_affinity(words.size, [(a, c, table[flat[a], flat[c]]) for a, c in pairs])


def pmi_boundary(rgb: np.ndarray, n_words: int = 32, *, downsample: int = 2, radius: int = 5, rho: float = 1.25,
                 n_vectors: int = 16, sigma: float = 1.0, random_state: int | None = 0) -> np.ndarray:
    """Boundary of an RGB image from the spectral step on :func:`pmi_affinity` of its colour words.

    The image is reduced by ``downsample`` (area average), its CIE-Lab colours
    are quantised into ``n_words`` k-means words, the pixels within ``radius``
    (reduced pixels) are linked by their words' PMI, and the gradients of the
    NCut eigenvectors are summed as in :func:`spectral_boundary`.

    Parameters
    ----------
    rgb : (H, W, 3) float array in [0, 1]
    n_words : int
        Colour words.
    downsample, n_vectors, sigma, random_state
        See :func:`spectral_boundary`.
    radius, rho
        See :func:`pmi_affinity`.

    Returns
    -------
    (H, W) float32, >= 0
        Not normalised (its scale varies from image to image).

    Examples
    --------
    >>> rgb = np.zeros((40, 60, 3)); rgb[:, 30:] = (0.9, 0.2, 0.1)
    >>> rgb[::2, :30, 1] = 0.8  # a striped texture on the left
    >>> s = pmi_boundary(rgb, n_words=4, n_vectors=2)
    >>> bool(s[20, 30] > 3 * s[20, 12])
    True
    """
    from ..contours import quantize
    from ..features import rgb_to_lab

    image = np.asarray(rgb, np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got shape {image.shape}")
    if n_vectors < 1 or downsample < 1 or n_words < 1:
        raise ValueError("n_words, n_vectors and downsample must be >= 1")
    small = _reduced(image, downsample)
    words = quantize(rgb_to_lab(small).transpose(2, 0, 1), n_words, random_state=random_state)
    return _eigenvector_gradients(pmi_affinity(words, n_words, radius, rho), words.shape, image.shape[:2],
                                  n_vectors, sigma, random_state)
