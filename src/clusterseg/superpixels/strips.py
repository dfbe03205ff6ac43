"""Superpixels of images too thin to hold 2-D superpixels: strips across the long side.

A superpixel of a ``H x W`` image split into ``K`` parts is about
``sqrt(H W / K)`` pixels wide. When the image is thinner than half of that
(a 1-pixel scan line, a 3 x 20000 strip), no method can place a 2-D grid of
seeds (scikit-image SLIC returns one segment for any K on a 1 x 20000 image).
:func:`strip_superpixels` delivers the count along the long side instead: a
1-D grid of ``K`` intervals whose boundaries move to the strongest colour
change within a quarter interval of their regular positions.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["is_too_thin", "strip_superpixels"]


def is_too_thin(shape: tuple[int, int], n_segments: int) -> bool:
    """Whether an image of ``shape`` is thinner than half the side of ``n_segments`` square superpixels."""
    height, width = shape
    return 2 * min(height, width) < math.sqrt(height * width / n_segments)


def strip_superpixels(rgb: np.ndarray, n_segments: int) -> np.ndarray:
    """``n_segments`` strips across the long side of ``rgb`` (H, W, C), cut at colour edges.

    Returns int32 labels ``0..k-1`` with ``k = min(n_segments, long side)``.

    Examples
    --------
    >>> row = np.zeros((1, 12, 3)); row[:, 5:] = 1.0
    >>> strip_superpixels(row, 2)
    array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]], dtype=int32)
    """
    long_axis = 0 if rgb.shape[0] >= rgb.shape[1] else 1
    profile = rgb.mean(axis=1 - long_axis).reshape(rgb.shape[long_axis], -1)
    length = profile.shape[0]
    k = min(int(n_segments), length)
    edge = np.zeros(length)
    edge[1:] = np.linalg.norm(np.diff(profile, axis=0), axis=1)  # edge[i]: change between i - 1 and i
    step = length / k
    reach = int(step // 4)
    starts = np.zeros(length, np.int32)
    previous = 0
    for j in range(1, k):
        # Keep every interval at least one pixel long, with room for the ones still to come.
        low = max(previous + 1, round(j * step) - reach)
        high = max(low, min(length - (k - j), round(j * step) + reach))
        cut = low + int(np.argmax(edge[low : high + 1]))
        starts[cut] = 1
        previous = cut
    ids = np.cumsum(starts, dtype=np.int32)
    return np.broadcast_to(ids[:, None] if long_axis == 0 else ids[None, :], rgb.shape[:2]).copy()
