"""Visualising label maps: random colours, mean colours, boundary overlays, strips.

Every function returns a ``uint8`` RGB array ready for
:func:`clusterseg.io.write_image` or :func:`clusterseg.io.write_gif`. Input
images are normalised with :func:`clusterseg._validation.to_float_rgb`
(greyscale replicated, alpha dropped, any supported dtype scaled to [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validation import check_labels, to_float_rgb

__all__ = [
    "label2rgb_mean",
    "label2rgb_random",
    "make_strip",
    "overlay_boundaries",
    "side_by_side",
]


def _to_uint8(image01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image01, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_same_shape(labels: np.ndarray, rgb: np.ndarray) -> None:
    if labels.shape != rgb.shape[:2]:
        raise ValueError(
            f"labels of shape {labels.shape} do not match the image's height and width "
            f"{rgb.shape[:2]}"
        )


def label2rgb_random(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Colour each label with a distinct pseudo-random colour.

    The colour of a label is a function of its *value* (and ``seed``) only,
    through a bijective 24-bit integer hash: two different labels (modulo
    2**24) never share a colour (they may still look alike), and a label keeps
    its colour whatever other labels are present -- so class ids of a video or
    volume segmented frame by frame keep their colours across frames.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label map, ``(H, W)`` (or ``(Z, H, W)``).
    seed : int, optional
        Seed of the colour generator.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``labels.shape + (3,)``.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = label2rgb_random(np.array([[0, 0, 1], [2, 2, 1]]))
    >>> rgb.shape, rgb.dtype
    ((2, 3, 3), dtype('uint8'))
    """
    check_labels(labels, ndim=(2, 3))
    values, inverse = np.unique(labels, return_inverse=True)
    codes = _hash24(values.astype(np.int64), seed)
    palette = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)
    return palette.astype(np.uint8)[inverse.reshape(labels.shape)]


def _hash24(values: np.ndarray, seed: int) -> np.ndarray:
    """Bijective mixing of 24-bit integers: odd multiplications and xor-shifts mod 2**24."""
    mask = (1 << 24) - 1
    offset = (int(seed) * 0x5BD1E9 + 0x3C6EF3) & mask
    x = (values * 0x9E3779 + offset) & mask
    x ^= x >> 11
    x = (x * 0xC2B2AF) & mask  # odd multiplier: a bijection mod 2**24
    x ^= x >> 13
    return x


def label2rgb_mean(
    labels: np.ndarray, image: np.ndarray, *, channel_axis: int | None = -1
) -> np.ndarray:
    """Paint each region with the mean colour of ``image`` over it.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label map ``(H, W)``.
    image : numpy.ndarray
        Image of the same height and width; any input accepted by
        :func:`clusterseg._validation.to_float_rgb`.
    channel_axis : int or None, optional
        Channel axis of ``image`` (``None`` for greyscale).

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB array ``(H, W, 3)``.
    """
    check_labels(labels)
    rgb = to_float_rgb(image, channel_axis=channel_axis)
    _check_same_shape(labels, rgb)
    _, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse).astype(np.float64)
    flat = rgb.reshape(-1, 3).astype(np.float64)
    means = np.stack(
        [np.bincount(inverse, weights=flat[:, c], minlength=counts.size) / counts for c in range(3)],
        axis=-1,
    )
    return _to_uint8(means[inverse].reshape(rgb.shape))


def _parse_color(color: Sequence[float]) -> tuple[float, float, float]:
    arr = np.asarray(color, dtype=np.float64)
    if arr.shape != (3,) or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"color must be 3 values in [0, 1] or [0, 255], got {color!r}")
    if arr.max() > 1.0:
        arr = arr / 255.0
    return tuple(float(c) for c in arr)  # type: ignore[return-value]


def overlay_boundaries(
    image: np.ndarray,
    labels: np.ndarray,
    color: Sequence[float] = (255, 255, 0),
    mode: str = "thick",
    *,
    channel_axis: int | None = -1,
) -> np.ndarray:
    """Draw the boundaries between labels on top of an image.

    Uses :func:`skimage.segmentation.mark_boundaries` on the image converted
    with :func:`clusterseg._validation.to_float_rgb`.

    Parameters
    ----------
    image : numpy.ndarray
        Any image accepted by :func:`clusterseg._validation.check_image`
        (greyscale, RGB or RGBA; any supported dtype).
    labels : numpy.ndarray
        Integer label map of the image's height and width.
    color : sequence of 3 numbers, optional
        Boundary colour, either in [0, 255] or, when every value is <= 1,
        in [0, 1] (so ``(255, 255, 0)`` and ``(1, 1, 0)`` are both yellow).
    mode : {"thick", "thin", "inner", "outer"}, optional
        Boundary style. ``"thick"`` marks the pixels on both sides of every
        boundary (2 px lines, :func:`skimage.segmentation.find_boundaries`);
        ``"thin"`` marks one pixel per boundary (a pixel whose right or lower
        neighbour has another label; 1 px lines). ``"inner"`` and ``"outer"``
        follow scikit-image and treat label 0 as background: they mark the
        pixels of non-zero regions touching another label, or the background
        pixels around them.
    channel_axis : int or None, optional
        Channel axis of ``image``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB array ``(H, W, 3)``.
    """
    from skimage.segmentation import mark_boundaries

    if mode not in ("thick", "thin", "inner", "outer"):
        raise ValueError(f"mode must be 'thick', 'thin', 'inner' or 'outer', got {mode!r}")
    check_labels(labels)
    rgb = to_float_rgb(image, channel_axis=channel_axis)
    _check_same_shape(labels, rgb)
    rgb_color = _parse_color(color)
    if mode == "thin":
        edge = np.zeros(labels.shape, dtype=bool)
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
        rgb[edge] = rgb_color
        return _to_uint8(rgb)
    marked = mark_boundaries(rgb, labels, color=rgb_color, mode=mode)
    return _to_uint8(marked)


def side_by_side(
    images: Sequence[np.ndarray], *, gap: int = 4, fill: int = 255, channel_axis: int | None = -1
) -> np.ndarray:
    """Place images next to each other, left to right, in one uint8 RGB strip.

    Images are converted with :func:`clusterseg._validation.to_float_rgb`,
    top-aligned, and separated by ``gap`` columns of value ``fill``; shorter
    images are padded at the bottom with ``fill``.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        At least one image.
    gap : int, optional
        Separator width in pixels.
    fill : int, optional
        Grey value (0-255) of separators and padding.
    channel_axis : int or None, optional
        Channel axis of every image.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(max H, sum W + gap * (n - 1), 3)``.
    """
    if gap < 0 or not 0 <= fill <= 255:
        raise ValueError(f"gap must be >= 0 and fill in [0, 255], got gap={gap}, fill={fill}")
    rgbs = [_to_uint8(to_float_rgb(im, channel_axis=channel_axis)) for im in images]
    if not rgbs:
        raise ValueError("side_by_side needs at least one image")
    height = max(im.shape[0] for im in rgbs)
    width = sum(im.shape[1] for im in rgbs) + gap * (len(rgbs) - 1)
    out = np.full((height, width, 3), fill, dtype=np.uint8)
    x = 0
    for im in rgbs:
        out[: im.shape[0], x : x + im.shape[1]] = im
        x += im.shape[1] + gap
    return out


def make_strip(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | None = None,
    *,
    color: Sequence[float] = (255, 255, 0),
    mode: str = "thick",
    gap: int = 4,
    channel_axis: int | None = -1,
) -> np.ndarray:
    """Strip of boundary overlays for several frames (or plain images).

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Frames.
    labels : sequence of numpy.ndarray, optional
        One label map per frame; if given, each frame is drawn with
        :func:`overlay_boundaries`.
    color, mode : optional
        Passed to :func:`overlay_boundaries`.
    gap : int, optional
        Separator width.
    channel_axis : int or None, optional
        Channel axis of the frames.

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB strip, see :func:`side_by_side`.
    """
    images = list(images)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(images):
            raise ValueError(f"got {len(images)} images but {len(labels)} label maps")
        images = [
            overlay_boundaries(im, lab, color=color, mode=mode, channel_axis=channel_axis)
            for im, lab in zip(images, labels)
        ]
        channel_axis = -1
    return side_by_side(images, gap=gap, channel_axis=channel_axis)
