"""The :func:`superpixels` dispatcher: one entry point for every superpixel method."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_image, check_n_segments, check_nonnegative, to_float_rgb
from . import classical
from .connectivity import enforce_connectivity
from .strips import is_too_thin, strip_superpixels

__all__ = ["superpixels", "available_methods", "METHODS"]

#: method name -> (raw-label function, name of its compactness keyword or None)
_CLASSICAL: dict[str, tuple[Callable[..., np.ndarray], str | None]] = {
    "slic": (classical.slic_labels, "compactness"),
    "snic": (classical.snic_labels, "compactness"),
    "felzenszwalb": (classical.felzenszwalb_labels, None),
    "watershed": (classical.watershed_labels, "compactness"),
    "seeds": (classical.seeds_labels, None),
    "lsc": (classical.lsc_labels, "ratio"),
    "opencv_slic": (classical.opencv_slic_labels, "ruler"),
}
_OPENCV_METHODS = ("seeds", "lsc", "opencv_slic")

#: Every method name :func:`superpixels` knows (some need optional packages).
METHODS: tuple[str, ...] = (*_CLASSICAL, "lnsnet")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _has_ximgproc() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "ximgproc")


def available_methods(*, installed_only: bool = True) -> list[str]:
    """Names of the superpixel methods accepted by :func:`superpixels`.

    Parameters
    ----------
    installed_only : bool, optional
        If True (default), leave out methods whose optional dependency is
        missing: ``"snic"`` needs ``pysnic``; ``"seeds"``, ``"lsc"`` and
        ``"opencv_slic"`` need ``opencv-contrib`` (``clusterseg[opencv]``);
        ``"lnsnet"`` needs the module ``clusterseg.superpixels.lnsnet``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> "slic" in available_methods()
    True
    """
    if not installed_only:
        return list(METHODS)
    out = []
    opencv = _has_ximgproc()
    for name in METHODS:
        if name == "snic" and not _has_module("pysnic"):
            continue
        if name in _OPENCV_METHODS and not opencv:
            continue
        if name == "lnsnet" and not _has_module("clusterseg.superpixels.lnsnet"):
            continue
        out.append(name)
    return out


def superpixels(
    image: np.ndarray,
    n_segments: int = 200,
    *,
    method: str = "lnsnet",
    channel_axis: int | None = -1,
    compactness: float | None = None,
    min_size_factor: float | None = None,
    random_state: Any = None,
    **kwargs: Any,
) -> np.ndarray:
    """Over-segment an image into about ``n_segments`` connected superpixels.

    The image is validated, converted to float RGB in [0, 1] (greyscale is
    replicated, alpha dropped, integers scaled by their dtype maximum; see
    :func:`clusterseg._validation.to_float_rgb`), segmented by ``method``, and
    finished with :func:`~clusterseg.superpixels.enforce_connectivity`, which
    splits disconnected segments and merges fragments smaller than
    ``min_size_factor * H * W / n_segments`` pixels into their longest-border
    neighbour. The actual number of superpixels differs from ``n_segments``
    depending on the method; read comparisons against the actual count.
    Images thinner than half the side of a superpixel (e.g. 1 x 20000 at
    K=200) cannot hold 2-D superpixels: every method then returns
    ``n_segments`` strips across the long side, cut at colour edges
    (:func:`~clusterseg.superpixels.strips.strip_superpixels`).

    Parameters
    ----------
    image : (H, W), (H, W, 3) or (H, W, 4) ndarray
        Greyscale, RGB or RGBA image of dtype bool, integer or float (see
        ``channel_axis``).
    n_segments : int, optional
        Requested number of superpixels, ``1 <= n_segments <= H * W``.
    method : str, optional
        One of (default ``"lnsnet"``, measured best on BSDS500 and faster
        than SLIC; see ``benchmarks/results/superpixels_bsds_val.md``)

        * ``"slic"`` -- scikit-image SLIC, k-means in Lab+xy [1]_;
        * ``"snic"`` -- SNIC, non-iterative priority-queue clustering
          (``pysnic``, pure Python, ~2 s per BSDS image) [2]_;
        * ``"felzenszwalb"`` -- graph-based merging with the ``scale`` searched
          so that the count approaches ``n_segments`` [3]_;
        * ``"watershed"`` -- compact watershed on the colour Sobel gradient
          from grid markers [4]_;
        * ``"seeds"`` -- OpenCV SEEDS [5]_;
        * ``"lsc"`` -- OpenCV Linear Spectral Clustering [6]_;
        * ``"opencv_slic"`` -- OpenCV's SLIC (plain SLIC variant by default) [1]_;
        * ``"lnsnet"`` -- learned LNSNet superpixels, delegated to
          :func:`clusterseg.superpixels.lnsnet.lnsnet_superpixels` [7]_.

        The OpenCV methods need ``pip install clusterseg[opencv]``.
    channel_axis : int or None, optional
        Axis of the colour channels; ``None`` for a 2-D greyscale image.
    compactness : float, optional
        Shape regularity; ``None`` keeps the method's default. It is passed as
        ``compactness`` to slic (default 10), snic (10) and watershed (0.1, in
        gradient units per grid step), as ``ratio`` to lsc (0.075), as
        ``ruler`` to opencv_slic (10) and forwarded to lnsnet. felzenszwalb
        and seeds have no such parameter (``ValueError``).
    min_size_factor : float, optional
        Segments smaller than this fraction of the nominal superpixel size
        ``H * W / n_segments`` are merged into a neighbour (default 0.25,
        for lnsnet that of its config).
        lnsnet applies it in its own merging, which keeps the count within
        about +/-10 % of ``n_segments`` and may therefore keep a few smaller
        fragments.
    random_state : None, int or numpy.random.Generator, optional
        Has no effect: every method here, LNSNet inference included, is
        deterministic. Accepted so that code can switch between this function
        and :func:`clusterseg.segment` (whose methods do use it).
    **kwargs
        Further keyword arguments of the method's function in
        :mod:`clusterseg.superpixels.classical` (e.g. ``max_num_iter`` for
        slic, ``sigma`` or ``scale`` for felzenszwalb, ``algorithm`` for
        opencv_slic) or of ``lnsnet_superpixels`` (e.g. ``weights``).

    Returns
    -------
    labels : (H, W) ndarray of int32
        Labels ``0..n-1`` (every value present), each segment 4-connected.

    Raises
    ------
    TypeError
        If ``image`` is not a numpy array or ``n_segments`` is not a number.
    ValueError
        For an empty image, NaN/inf values, a wrong shape or dtype, a
        non-integer or out-of-range ``n_segments``, an unknown ``method`` (the
        message lists the available ones) or an unsupported ``compactness``.
    ImportError
        If the method's optional dependency (OpenCV contrib, pysnic) is missing.

    References
    ----------
    .. [1] Achanta, R. et al. "SLIC Superpixels Compared to State-of-the-Art
       Superpixel Methods", IEEE TPAMI 34(11), 2012.
    .. [2] Achanta, R., Suesstrunk, S. "Superpixels and Polygons using Simple
       Non-Iterative Clustering", CVPR 2017.
    .. [3] Felzenszwalb, P. F., Huttenlocher, D. P. "Efficient Graph-Based Image
       Segmentation", IJCV 59(2), 2004.
    .. [4] Neubert, P., Protzel, P. "Compact Watershed and Preemptive SLIC",
       ICPR 2014.
    .. [5] Van den Bergh, M. et al. "SEEDS: Superpixels Extracted via
       Energy-Driven Sampling", ECCV 2012.
    .. [6] Li, Z., Chen, J. "Superpixel Segmentation using Linear Spectral
       Clustering", CVPR 2015.
    .. [7] Zhu, L. et al. "Learning the Superpixel in a Non-iterative and
       Lifelong Manner", CVPR 2021.

    Examples
    --------
    >>> from skimage import data
    >>> labels = superpixels(data.astronaut()[::4, ::4], n_segments=100)
    >>> labels.shape, labels.dtype
    ((128, 128), dtype('int32'))
    >>> int(labels.min()), bool(labels.max() + 1 == len(set(labels.ravel())))
    (0, True)
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    key = method.lower()
    if key not in METHODS:
        raise ValueError(
            f"unknown superpixel method {method!r}; available: {', '.join(available_methods())}"
            f" (all known: {', '.join(METHODS)})"
        )
    rgb = to_float_rgb(check_image(image, channel_axis=channel_axis), channel_axis=channel_axis)
    height, width = rgb.shape[:2]
    n_pixels = height * width
    n_segments = check_n_segments(n_segments, n_pixels)
    explicit_min_size = min_size_factor is not None
    min_size_factor = check_nonnegative(0.25 if min_size_factor is None else min_size_factor, "min_size_factor")
    min_size = int(min_size_factor * n_pixels / n_segments)
    if compactness is not None:
        compactness = check_nonnegative(compactness, "compactness")

    if is_too_thin((height, width), n_segments):
        # No method can lay a 2-D seed grid here; deliver the count along the long side.
        return enforce_connectivity(strip_superpixels(rgb, n_segments), 0)
    if key == "lnsnet":
        # lazy: needs torch and the shipped weights
        lnsnet = importlib.import_module("clusterseg.superpixels.lnsnet")

        if compactness is not None:
            kwargs["compactness"] = compactness
        # LNSNet merges fragments itself, with count control (it may keep a few
        # fragments below min_size to stay near n_segments): merging them again
        # here would undo that, so only connected components are relabelled below.
        if explicit_min_size:  # else LNSNet's own default (or that of a config= passed in kwargs)
            kwargs["min_size_factor"] = min_size_factor
        raw = lnsnet.lnsnet_superpixels(rgb, n_segments, **kwargs)
        min_size = 0
    else:
        func, compact_kw = _CLASSICAL[key]
        if compactness is not None:
            if compact_kw is None:
                raise ValueError(f"method={key!r} has no compactness parameter")
            kwargs[compact_kw] = compactness
        if key == "felzenszwalb":
            # its scale search counts segments after the same fragment merging
            kwargs.setdefault("merge_size", min_size)
        raw = func(rgb, n_segments, **kwargs)

    raw = np.asarray(raw)
    if raw.shape != (height, width):
        raise RuntimeError(
            f"method {key!r} returned labels of shape {raw.shape}, expected {(height, width)}"
        )
    return enforce_connectivity(raw, min_size)
