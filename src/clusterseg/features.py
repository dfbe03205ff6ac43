"""Per-pixel input features: CIE-Lab colour plus normalised pixel coordinates.

These are the input features of LNSNet [1]_ (and a sensible default for any
method that clusters pixels jointly in colour and position): the image is
converted to CIE-Lab, two position channels (row and column) are appended and
every channel is standardised over the image (zero mean, unit variance), so that
fixed channel scalings do not matter.

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu. "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import numpy as np

from ._validation import to_float_rgb

__all__ = ["lab_xy_features", "lab_xy_from_lab", "rgb_to_lab", "position_channels", "standardize_channels", "normalize_percentile",
           "image_modality"]


def position_channels(shape: tuple[int, int], dtype=np.float32) -> np.ndarray:
    """Row and column coordinate channels ``row / H - 0.5`` and ``col / W - 0.5``.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    dtype : numpy dtype, optional
        Output dtype.

    Returns
    -------
    pos : (2, H, W) ndarray
        Channel 0 is the row coordinate, channel 1 the column coordinate.

    Examples
    --------
    >>> position_channels((2, 4))[1, 0]
    array([-0.5 , -0.25,  0.  ,  0.25], dtype=float32)
    """
    h, w = int(shape[0]), int(shape[1])
    rows = (np.arange(h, dtype=np.float64) / h - 0.5).astype(dtype)
    cols = (np.arange(w, dtype=np.float64) / w - 0.5).astype(dtype)
    pos = np.empty((2, h, w), dtype=dtype)
    pos[0] = rows[:, None]
    pos[1] = cols[None, :]
    return pos


def standardize_channels(features: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Z-score each channel of a (C, H, W) stack over the image, in place.

    Constant channels become all-zero (their standard deviation is replaced by 1).

    Parameters
    ----------
    features : (C, H, W) float ndarray
        Modified in place and returned.
    eps : float, optional
        Standard deviations below ``eps`` are treated as zero.

    Returns
    -------
    features : (C, H, W) ndarray
    """
    for c in range(features.shape[0]):
        ch = features[c]
        mean = float(ch.mean(dtype=np.float64))
        std = float(ch.std(dtype=np.float64))
        ch -= mean
        if std > eps:
            ch /= std
    return features


# sRGB (D65) -> XYZ, rows divided by the D65 white point (X_n, Y_n, Z_n) of the
# CIE 1931 2-degree observer: the constants of skimage.color.rgb2lab's defaults.
_RGB_TO_XYZ_WHITE = (
    (0.412453 / 0.95047, 0.357580 / 0.95047, 0.180423 / 0.95047),
    (0.212671, 0.715160, 0.072169),
    (0.019334 / 1.08883, 0.119193 / 1.08883, 0.950227 / 1.08883),
)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE-Lab (D65, 2-degree observer) of float RGB in [0, 1], computed in float32 with torch.

    The same conversion as :func:`skimage.color.rgb2lab` with its defaults
    (sRGB companding, then the CIE 1976 L*a*b* formulas; agrees to about 1e-4),
    written here because it is about twice as fast on two cores: with
    scikit-image's float64 version the colour conversion alone was about 15 %
    of an LNSNet call on a BSDS image.

    Parameters
    ----------
    rgb : (H, W, 3) float ndarray
        RGB in [0, 1].

    Returns
    -------
    lab : (H, W, 3) float32 ndarray
        ``L`` in [0, 100], ``a`` and ``b`` roughly in [-128, 127].

    Examples
    --------
    >>> lab = rgb_to_lab(np.ones((1, 1, 3)))
    >>> [round(float(v), 2) + 0.0 for v in lab[0, 0]]
    [100.0, 0.0, 0.0]
    """
    import torch

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got shape {rgb.shape}")
    # channel planes (3, N): each step below is a few contiguous vector passes (a (N, 3) @ (3, 3)
    # product or strided columns cost more than the whole conversion)
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).reshape(-1, 3).t().contiguous()
    linear = torch.where(t > 0.04045, ((t + 0.055) / 1.055).pow(2.4), t / 12.92)
    xyz = torch.stack([m[0] * linear[0] + m[1] * linear[1] + m[2] * linear[2] for m in _RGB_TO_XYZ_WHITE])
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856).pow(1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    lab = torch.empty(rgb.shape, dtype=torch.float32)
    flat = lab.view(-1, 3)
    torch.mul(f[1], 116.0, out=flat[:, 0]).sub_(16.0)
    torch.sub(f[0], f[1], out=flat[:, 1]).mul_(500.0)
    torch.sub(f[1], f[2], out=flat[:, 2]).mul_(200.0)
    return lab.numpy()


def lab_xy_features(
    image: np.ndarray,
    *,
    channel_axis: int | None = -1,
    standardize: bool = True,
) -> np.ndarray:
    """LNSNet input features ``[L, a, b, row, col]`` as a (5, H, W) float32 stack.

    The image is converted to float RGB in [0, 1] (greyscale is replicated,
    alpha dropped), then to CIE-Lab with :func:`rgb_to_lab` (the conversion of
    :func:`skimage.color.rgb2lab`) and scaled as ``L/128, a/256, b/256``. The
    position channels are ``row/H - 0.5`` and ``col/W - 0.5``. With
    ``standardize=True`` (default) every channel is then z-scored over the
    image, which is what LNSNet [1]_ feeds its network.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) array
        Greyscale, RGB or RGBA image (uint8, uint16, bool or float).
    channel_axis : int or None, optional
        Axis of the colour channels; ``None`` for greyscale.
    standardize : bool, optional
        Z-score every channel over the image.

    Returns
    -------
    features : (5, H, W) float32 ndarray

    References
    ----------
    .. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and
           Lifelong Manner", CVPR 2021.

    Examples
    --------
    >>> rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    >>> lab_xy_features(rgb).shape
    (5, 4, 6)
    """
    rgb = np.asarray(to_float_rgb(image, channel_axis=channel_axis), dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"image must be a non-empty 2-D colour image, got shape {rgb.shape}")
    return lab_xy_from_lab(rgb_to_lab(rgb), standardize=standardize)


def lab_xy_from_lab(lab: np.ndarray, *, standardize: bool = True) -> np.ndarray:
    """:func:`lab_xy_features` from an (H, W, 3) CIE-Lab image already converted (e.g. by :func:`rgb_to_lab`)."""
    h, w = lab.shape[:2]
    feats = np.empty((5, h, w), dtype=np.float32)
    feats[0] = lab[..., 0] / 128.0
    feats[1] = lab[..., 1] / 256.0
    feats[2] = lab[..., 2] / 256.0
    feats[3:] = position_channels((h, w))
    if standardize:
        standardize_channels(feats)
    return feats


def normalize_percentile(
    image: np.ndarray, low: float = 1.0, high: float = 99.8, *, eps: float = 1e-6, clip: bool = False
) -> np.ndarray:
    """Min-max normalisation between two percentiles (all channels together).

    ``(image - p_low) / (p_high - p_low)`` as float32, not clipped by default:
    the intensity normalisation of microscopy networks (CSBDeep, StarDist,
    EmbedSeg), robust to a few saturated or dead pixels and to the bit depth.
    When the two percentiles coincide (e.g. a few bright objects on a flat
    background that covers more than ``high`` percent of the pixels), the
    minimum and maximum are used instead, so the objects do not blow up to
    ``1 / eps``.

    Parameters
    ----------
    image : ndarray
        Any shape, real dtype.
    low, high : float
        Percentiles, ``0 <= low < high <= 100``.
    eps : float
        Lower bound of the denominator (a constant image maps to 0).
    clip : bool
        Clip the result to [0, 1].

    Returns
    -------
    ndarray of float32, same shape.

    Examples
    --------
    >>> out = normalize_percentile(np.arange(101.0), 0, 100)
    >>> float(out[0]), float(out[-1])
    (0.0, 1.0)
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    image = np.asarray(image, dtype=np.float32)
    if image.size == 0:
        raise ValueError("image is empty")
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        lo, hi = float(image.min()), float(image.max())
    out = ((image - lo) / max(float(hi - lo), eps)).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out


def image_modality(image: np.ndarray, *, channel_axis: int | None = -1, tolerance: float = 0.02) -> str:
    """``"grey"`` or ``"colour"``: whether the colour channels of an image carry different content.

    Microscopy collections such as DSB2018 mix grey fluorescence (and grey
    bright-field) images stored as RGB with equal channels, and colour
    bright-field / H&E images. An image is ``"grey"`` when it has one channel
    (or ``channel_axis`` is ``None``), or when its RGB channels differ by at
    most ``tolerance`` (as a fraction of the dtype's range; of the value range
    for floats) at 99 % of the pixels; a fourth (alpha) channel is ignored.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
    channel_axis : int or None
        Colour axis of ``image``.
    tolerance : float
        Largest channel spread, as a fraction of the range, of a grey pixel.

    Returns
    -------
    modality : {"grey", "colour"}

    Examples
    --------
    >>> grey = np.repeat(np.arange(12, dtype=np.uint8).reshape(3, 4, 1), 3, axis=-1)
    >>> image_modality(grey), image_modality(np.eye(3, dtype=np.uint8)[None].repeat(2, 0) * 255)
    ('grey', 'colour')
    """
    image = np.asarray(image)
    if channel_axis is None or image.ndim == 2:
        return "grey"
    image = np.moveaxis(image, channel_axis, -1)
    if image.shape[-1] == 1:
        return "grey"
    rgb = image[..., :3].astype(np.float64)
    scale = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else max(float(np.ptp(rgb)), 1e-12)
    spread = (rgb.max(axis=-1) - rgb.min(axis=-1)) / scale
    return "grey" if float(np.percentile(spread, 99)) <= tolerance else "colour"
