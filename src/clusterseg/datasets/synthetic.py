"""Rendered instance-segmentation data: touching, elongated, textured objects on clutter.

A stand-in for data nobody tuned the models for (plant rosettes as in the
CVPPP leaf-segmentation challenge [1]_: 10-20 elongated leaves of one colour
family, touching and overlapping, on soil with stones and debris). Every image
is a pure function of its seed, so a benchmark made from it is reproducible
without shipping data.

References
----------
.. [1] H. Scharr et al., "Leaf segmentation in plant phenotyping: a collation
       study", Machine Vision and Applications 27, 2016.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse, line

from .instances import InstanceSample

__all__ = ["render_rosette", "synthetic_rosettes"]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-12)


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Soil-like texture with stones and twigs (unlabelled clutter), float RGB."""
    base = rng.uniform(0.25, 0.55, 3) * np.array([1.0, 0.8, 0.6])
    image = base + 0.06 * _smooth_noise(rng, shape, 6)[..., None] + 0.03 * rng.standard_normal((*shape, 1))
    for _ in range(rng.integers(5, 15)):  # stones
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        rr, cc = ellipse(r, c, rng.uniform(2, 8), rng.uniform(2, 8), shape=shape, rotation=rng.uniform(0, np.pi))
        image[rr, cc] = rng.uniform(0.3, 0.8) * np.array([1.0, 0.95, 0.9])
    for _ in range(rng.integers(2, 6)):  # twigs, some green like the objects
        r0, c0, r1, c1 = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(0, shape[0]), rng.integers(0, shape[1])
        rr, cc = line(r0, c0, r1, c1)
        image[rr, cc] = rng.uniform(0.1, 0.5, 3)
    return image


def render_rosette(
    rng: np.random.Generator, shape: tuple[int, int] = (256, 256), n_objects: tuple[int, int] = (8, 16)
) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(H, W, 3)`` uint8 and its instance labels ``(H, W)`` int32.

    Elongated ellipses ("leaves") radiate from a centre, younger ones drawn
    over older ones (so objects touch and occlude); each has its own shade of
    one hue, a texture and a darker midrib. Objects whose visible part is
    smaller than 30 pixels are dropped; labels are 1..n.
    """
    h, w = shape
    image = _background(rng, shape)
    labels = np.zeros(shape, np.int32)
    centre = np.array([h, w]) / 2 + rng.uniform(-0.1, 0.1, 2) * np.array([h, w])
    hue = np.array([0.25, 0.55, 0.15]) + rng.uniform(-0.08, 0.08, 3)
    count = int(rng.integers(n_objects[0], n_objects[1] + 1))
    scale = min(h, w) * rng.uniform(0.18, 0.3)
    texture = _smooth_noise(rng, shape, 1.5)
    for k in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        length = scale * rng.uniform(0.5, 1.0) * (0.6 + 0.4 * (count - k) / count)  # older leaves longer
        width = length * rng.uniform(0.25, 0.45)
        direction = np.array([np.sin(angle), np.cos(angle)])
        r, c = centre + direction * length * 0.9
        rr, cc = ellipse(r, c, width, length, shape=shape, rotation=-angle)
        if rr.size == 0:
            continue
        shade = hue * rng.uniform(0.7, 1.3)
        image[rr, cc] = shade + 0.04 * texture[rr, cc, None]
        labels[rr, cc] = k + 1
        rib_end = (centre + direction * length * 1.7).astype(int)
        rib_r, rib_c = line(int(centre[0]), int(centre[1]), *np.clip(rib_end, 0, [h - 1, w - 1]))
        inside = labels[rib_r, rib_c] == k + 1
        image[rib_r[inside], rib_c[inside]] = shade * 0.7
    image = ndimage.gaussian_filter(image, (0.7, 0.7, 0))
    ids, sizes = np.unique(labels, return_counts=True)
    for i, size in zip(ids, sizes):
        if i and size < 30:
            labels[labels == i] = 0
    ids = np.unique(labels)
    lookup = np.zeros(int(ids.max()) + 1, np.int32)
    lookup[ids[ids > 0]] = np.arange(1, np.count_nonzero(ids) + 1)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), lookup[labels]


def synthetic_rosettes(
    n_images: int, *, seed: int = 0, shape: tuple[int, int] = (256, 256), n_objects: tuple[int, int] = (8, 16)
) -> list[InstanceSample]:
    """``n_images`` rendered samples ``(name, image, labels)``; image ``i`` depends only on ``(seed, i)``.

    Examples
    --------
    >>> samples = synthetic_rosettes(2, shape=(96, 96))
    >>> name, image, labels = samples[0]
    >>> image.shape, image.dtype, labels.dtype, int(labels.max()) >= 4
    ((96, 96, 3), dtype('uint8'), dtype('int32'), True)
    """
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    out = []
    for i in range(n_images):
        image, labels = render_rosette(np.random.default_rng([seed, i]), shape, n_objects)
        out.append(InstanceSample(f"rosette_{seed}_{i:04d}", image, labels))
    return out
