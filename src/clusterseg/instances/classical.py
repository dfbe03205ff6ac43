"""Classical nucleus instance segmentation: Otsu threshold + distance-transform watershed.

This is the baseline against which the learned spatial-embedding model of
:mod:`clusterseg.instances` is measured on DSB2018. It is the textbook
pipeline of CellProfiler-style nucleus segmentation:

1. grey conversion and robust (percentile) intensity normalisation;
2. Gaussian smoothing;
3. Otsu threshold to a foreground mask, with automatic polarity (bright
   nuclei on a dark background in fluorescence, dark nuclei on a bright
   background in brightfield / H&E);
4. hole filling and removal of small objects;
5. Euclidean distance transform of the mask, one marker per local maximum
   (or per h-maximum);
6. marker-controlled watershed of the negated distance inside the mask,
   which splits touching, roughly convex nuclei.

Only scikit-image and SciPy primitives are used.

References
----------
.. [1] N. Otsu, "A threshold selection method from gray-level histograms",
       IEEE Trans. Systems, Man, and Cybernetics 9(1), 1979.
.. [2] S. Beucher and C. Lantuejoul, "Use of watersheds in contour
       detection", International Workshop on Image Processing, Rennes, 1979.
.. [3] J. C. Caicedo et al., "Nucleus segmentation across imaging
       experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .._validation import check_image, to_float_rgb
from ..features import normalize_percentile

__all__ = ["watershed_nuclei", "tune_watershed_nuclei", "DEFAULT_GRID"]

#: Parameter grid searched by :func:`tune_watershed_nuclei` by default.
DEFAULT_GRID: dict[str, tuple] = {
    "sigma": (0.0, 0.5, 1.0, 2.0),
    "min_distance": (3, 5, 7, 9),
    "min_size": (8, 16, 32, 64),
}

#: Percentiles mapped to 0 and 1 by the intensity normalisation.
_PERCENTILES = (1.0, 99.8)

_TUNABLE = frozenset(
    {"sigma", "threshold", "min_distance", "min_size", "invert", "h", "compactness"}
)


def _check_params(sigma, threshold, min_distance, min_size, invert, h, compactness) -> None:
    if not isinstance(sigma, Real) or not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise ValueError(f"threshold must be 'otsu' or a number in (0, 1), got {threshold!r}")
    elif not isinstance(threshold, Real) or not 0.0 < float(threshold) < 1.0:
        raise ValueError(
            "threshold must be 'otsu' or a number in (0, 1) (on the percentile-normalised, "
            f"smoothed intensities), got {threshold!r}"
        )
    if isinstance(min_distance, bool) or not isinstance(min_distance, (int, np.integer)) or min_distance < 1:
        raise ValueError(f"min_distance must be an integer >= 1, got {min_distance!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be an integer >= 0, got {min_size!r}")
    if invert not in ("auto", True, False):
        raise ValueError(f"invert must be 'auto', True or False, got {invert!r}")
    if h is not None and (not isinstance(h, Real) or not np.isfinite(h) or h <= 0):
        raise ValueError(f"h must be None or a finite number > 0 (pixels), got {h!r}")
    if not isinstance(compactness, Real) or not np.isfinite(compactness) or compactness < 0:
        raise ValueError(f"compactness must be a finite number >= 0, got {compactness!r}")


def _grey01(image: np.ndarray, channel_axis: int | None) -> tuple[np.ndarray, bool]:
    """Grey image percentile-normalised to [0, 1] (clipped), and whether it varies."""
    from skimage.color import rgb2gray

    grey = rgb2gray(to_float_rgb(image, channel_axis=channel_axis))
    if not grey.max() > grey.min():
        return np.zeros(grey.shape, dtype=np.float64), False
    return normalize_percentile(grey, *_PERCENTILES, clip=True).astype(np.float64), True


def _remove_small(mask_or_labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects with fewer than ``min_size`` pixels (skimage >= 0.26 ``max_size`` API)."""
    from skimage.morphology import remove_small_objects

    if min_size <= 1:
        return mask_or_labels
    if mask_or_labels.dtype != bool and mask_or_labels.max() <= 1:
        # a single label: skimage would warn and read it as a label image anyway
        kept = remove_small_objects(mask_or_labels > 0, max_size=min_size - 1)
        return kept.astype(mask_or_labels.dtype)
    return remove_small_objects(mask_or_labels, max_size=min_size - 1)


def watershed_nuclei(
    image: np.ndarray,
    *,
    channel_axis: int | None = -1,
    sigma: float = 1.0,
    threshold: str | float = "otsu",
    min_distance: int = 5,
    min_size: int = 16,
    invert: str | bool = "auto",
    h: float | None = None,
    compactness: float = 0.0,
) -> np.ndarray:
    """Segment nuclei with an Otsu threshold and a distance-transform watershed.

    The image is converted to grey (:func:`skimage.color.rgb2gray`), its
    1st and 99.8th intensity percentiles are mapped to 0 and 1 (clipped), it
    is smoothed with a Gaussian of standard deviation ``sigma`` and
    thresholded (Otsu [1]_ by default). With ``invert="auto"`` the
    foreground is the *minority* side of the threshold: bright objects when
    fewer pixels lie above it (fluorescence), dark objects otherwise
    (brightfield, H&E). Holes in the mask are filled and objects smaller
    than ``min_size`` removed. Markers are the local maxima of the Euclidean
    distance transform of the mask at least ``min_distance`` pixels apart
    (:func:`skimage.feature.peak_local_max`, searched per connected
    component), or its h-maxima when ``h`` is given; the marker-controlled
    watershed [2]_ of the negated distance inside the mask splits touching
    nuclei. Fragments smaller than ``min_size`` are dropped afterwards and
    a mask component that received no marker is kept as one object.

    Parameters
    ----------
    image : numpy.ndarray
        2-D greyscale or RGB(A) image (any dtype accepted by
        :func:`clusterseg._validation.check_image`).
    channel_axis : int or None, optional
        Axis of the colour channels (default last); ``None`` for greyscale.
    sigma : float, optional
        Standard deviation (pixels) of the Gaussian smoothing before
        thresholding; 0 disables it.
    threshold : "otsu" or float, optional
        ``"otsu"`` (default) or a fixed threshold in (0, 1) on the
        normalised, smoothed intensities.
    min_distance : int, optional
        Minimum distance (pixels) between two markers; larger values merge
        more (fewer splits of elongated nuclei). Ignored when ``h`` is given.
    min_size : int, optional
        Objects (mask components and final instances) with fewer pixels are
        removed.
    invert : "auto", bool, optional
        Polarity of the foreground: ``False`` for bright objects, ``True``
        for dark objects, ``"auto"`` to pick the minority side of the
        threshold.
    h : float or None, optional
        If given, markers are the h-maxima of the distance transform
        (:func:`skimage.morphology.h_maxima`) with this height in pixels,
        instead of peaks ``min_distance`` apart.
    compactness : float, optional
        Compactness of the watershed (0 = classical watershed).

    Returns
    -------
    labels : numpy.ndarray
        ``int32`` array of the image's height and width; 0 is background and
        the nuclei are labelled 1..n consecutively. All zeros when the image
        is constant or nothing survives.

    Raises
    ------
    TypeError
        If ``image`` is not a NumPy array.
    ValueError
        For an invalid image (empty, NaN, wrong shape) or parameter.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level
           histograms", IEEE Trans. Systems, Man, and Cybernetics 9(1), 1979.
    .. [2] S. Beucher and C. Lantuejoul, "Use of watersheds in contour
           detection", International Workshop on Image Processing, Rennes,
           1979.
    .. [3] J. C. Caicedo et al., "Nucleus segmentation across imaging
           experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :60]
    >>> discs = ((yy - 20) ** 2 + (xx - 18) ** 2 < 100) | ((yy - 20) ** 2 + (xx - 36) ** 2 < 100)
    >>> image = np.where(discs, 200, 20).astype(np.uint8)
    >>> labels = watershed_nuclei(image, sigma=0)
    >>> int(labels.max()), labels.dtype.name
    (2, 'int32')
    """
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import h_maxima
    from skimage.segmentation import relabel_sequential, watershed

    check_image(image, channel_axis=channel_axis)
    _check_params(sigma, threshold, min_distance, min_size, invert, h, compactness)
    grey, varies = _grey01(image, channel_axis)
    empty = np.zeros(grey.shape, dtype=np.int32)
    if not varies:
        return empty
    if sigma > 0:
        grey = gaussian(grey, sigma=float(sigma), preserve_range=True)
    if grey.max() <= grey.min():
        return empty
    t = threshold_otsu(grey) if threshold == "otsu" else float(threshold)
    above = grey > t
    if invert == "auto":
        dark = np.count_nonzero(above) > above.size / 2
    else:
        dark = bool(invert)
    mask = ~above if dark else above

    mask = ndi.binary_fill_holes(mask)
    mask = _remove_small(mask, int(min_size))
    if not mask.any():
        return empty
    components, _ = ndi.label(mask)
    distance = ndi.distance_transform_edt(mask)

    if h is None:
        peaks = peak_local_max(
            distance, min_distance=int(min_distance), labels=components, exclude_border=False
        )
        peak_mask = np.zeros(mask.shape, dtype=bool)
        peak_mask[tuple(peaks.T)] = True
    else:
        peak_mask = h_maxima(distance, float(h)).astype(bool) & mask
    # connected plateau pixels form one marker
    markers, n_markers = ndi.label(peak_mask, structure=np.ones((3, 3), dtype=bool))
    labels = watershed(-distance, markers, mask=mask, compactness=float(compactness))
    # mask components that received no marker become one object each
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + n_markers, labels)
    labels = _remove_small(labels, int(min_size))
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)


def _check_grid(grid: Mapping[str, Any] | None) -> dict[str, list]:
    if grid is None:
        return {k: list(v) for k, v in DEFAULT_GRID.items()}
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("grid must be a non-empty mapping {parameter name: sequence of values}")
    out = {}
    for key, values in grid.items():
        if key not in _TUNABLE:
            raise ValueError(
                f"grid has unknown parameter {key!r}; tunable parameters are {sorted(_TUNABLE)}"
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{key!r}] must be a non-empty sequence of values, got {values!r}")
        out[key] = list(values)
    return out


def tune_watershed_nuclei(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    channel_axis: int | None = -1,
    iou_threshold: float = 0.5,
    **fixed: Any,
) -> dict[str, Any]:
    """Grid-search the parameters of :func:`watershed_nuclei` on annotated images.

    Every combination of the grid values is run on every image (sequentially,
    no parallelism) and scored by the DSB2018 accuracy
    ``TP / (TP + FP + FN)`` at ``iou_threshold``
    (:func:`clusterseg.metrics.match_instances`), averaged over images (the
    per-image mean of the 2018 Data Science Bowl [1]_). Ties keep the first
    combination in grid order.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Images (greyscale or RGB), as accepted by :func:`watershed_nuclei`.
    labels : sequence of numpy.ndarray
        True instance label maps (0 = background), one per image.
    grid : mapping, optional
        ``{parameter: values}`` over parameters of :func:`watershed_nuclei`
        (``sigma``, ``threshold``, ``min_distance``, ``min_size``, ``invert``,
        ``h``, ``compactness``). Default :data:`DEFAULT_GRID`: sigma in
        {0, 0.5, 1, 2}, min_distance in {3, 5, 7, 9}, min_size in
        {8, 16, 32, 64} (64 combinations).
    channel_axis : int or None, optional
        Channel axis of the images.
    iou_threshold : float, optional
        IoU threshold of the matching (default 0.5).
    **fixed
        Other keyword arguments of :func:`watershed_nuclei`, held fixed.

    Returns
    -------
    best : dict
        The best value of every grid parameter, plus ``"score"``: the mean
        per-image DSB accuracy it reached.

    Raises
    ------
    ValueError
        If the image and label lists are empty or of different lengths, or
        the grid names an unknown parameter or is empty.

    References
    ----------
    .. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging
           experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :60]
    >>> truth = np.zeros((40, 60), dtype=np.int32)
    >>> truth[(yy - 20) ** 2 + (xx - 20) ** 2 < 80] = 1
    >>> truth[(yy - 20) ** 2 + (xx - 42) ** 2 < 80] = 2
    >>> image = np.where(truth > 0, 220, 30).astype(np.uint8)
    >>> best = tune_watershed_nuclei([image], [truth], {"sigma": [0, 1]})
    >>> best["score"]
    1.0
    """
    from ..metrics import match_instances

    images = list(images)
    labels = list(labels)
    if not images:
        raise ValueError("images is empty: need at least one annotated image")
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} label maps")
    grid = _check_grid(grid)
    overlap = set(grid) & set(fixed)
    if overlap:
        raise ValueError(f"parameters {sorted(overlap)} are both in grid and fixed")
    unknown = set(fixed) - _TUNABLE
    if unknown:
        raise ValueError(f"unknown watershed_nuclei parameters {sorted(unknown)}")

    keys = list(grid)
    best: dict[str, Any] | None = None
    best_score = -np.inf
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        scores = [
            match_instances(
                watershed_nuclei(im, channel_axis=channel_axis, **params, **fixed),
                gt,
                iou_threshold=iou_threshold,
            ).dsb_accuracy
            for im, gt in zip(images, labels)
        ]
        score = float(np.mean(scores))
        if score > best_score:
            best, best_score = params, score
    assert best is not None
    return {**best, "score": best_score}
