"""Contour (edge-probability) maps for LNSNet's gradient bi-direction layer.

Every function returns a float32 (H, W) map in [0, 1] where 1 means "edge"
(the ``B`` of Zhu et al. [1]_, Eq. 12). The paper reports that the choice of
contour detector (Sobel, Canny, PB, BDCN) hardly matters.

:func:`pb_contours` is a learning-free probability-of-boundary detector in
the manner of Martin et al. [2]_: the chi-squared distance between the
histograms of brightness, colour and texture "words" in the two halves of a
disc, maximised over orientations and averaged over scales. The texture
words may come from a learned embedding (e.g. DSC's SuperAE features); the
unsupervised hierarchies of :mod:`clusterseg.unsupervised` merge regions
along it.

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
.. [2] D. R. Martin, C. C. Fowlkes, J. Malik, "Learning to detect natural
       image boundaries using local brightness, color, and texture cues",
       IEEE TPAMI 26(5), 2004.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import feature, filters
from skimage.color import rgb2gray

__all__ = ["sobel_contours", "canny_contours", "folder_contours", "contour_map", "pb_contours", "pb_cues",
           "oriented_histogram_gradient", "quantize"]


def _grey(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        g = rgb.astype(np.float32)
    elif rgb.ndim == 3 and rgb.shape[-1] in (3, 4):
        g = rgb2gray(rgb[..., :3]).astype(np.float32)
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4), got shape {rgb.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("image contains NaN or infinite values")
    return g


def sobel_contours(rgb: np.ndarray, percentile: float = 99.0, sigma: float = 1.0) -> np.ndarray:
    """Sobel gradient magnitude of the (Gaussian-smoothed) grey image, scaled to [0, 1].

    The magnitude is divided by its ``percentile``-th percentile and clipped,
    so the strongest ~1 % of pixels are certain edges whatever the contrast.

    Parameters
    ----------
    rgb : (H, W[, 3]) array in [0, 1]
    percentile : float
        Percentile mapped to edge probability 1.
    sigma : float
        Gaussian pre-smoothing (0 disables it).

    Returns
    -------
    b : (H, W) float32 in [0, 1]
    """
    g = _grey(rgb)
    if sigma > 0:
        g = filters.gaussian(g, sigma=sigma)
    mag = filters.sobel(g).astype(np.float32)
    top = float(np.percentile(mag, percentile))
    if top <= 0:
        return np.zeros_like(mag)
    return np.clip(mag / top, 0.0, 1.0)


def canny_contours(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Binary Canny edges (:func:`skimage.feature.canny`) as a float32 map in {0, 1}."""
    return feature.canny(_grey(rgb), sigma=sigma).astype(np.float32)


def folder_contours(folder: str | Path, stem: str, shape: tuple[int, int], invert: bool = False) -> np.ndarray:
    """Read a precomputed contour map ``<folder>/<stem>.<png|jpg|tif|npy>``.

    Parameters
    ----------
    folder : path
        Directory of contour maps, one per training image, named like the image.
    stem : str
        Image file name without extension.
    shape : (H, W)
        Expected shape; a transposed map is transposed back.
    invert : bool
        Set for maps that store ``1 - p`` (e.g. BDCN's test script writes ``255 (1 - p)``).

    Returns
    -------
    b : (H, W) float32 in [0, 1]

    Raises
    ------
    FileNotFoundError
        If no map for ``stem`` exists.
    ValueError
        If the map does not match ``shape``.
    """
    folder = Path(folder)
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"):
        path = folder / f"{stem}{ext}"
        if path.exists():
            break
    else:
        raise FileNotFoundError(f"no contour map for {stem!r} in {folder}")
    if path.suffix == ".npy":
        b = np.load(path, allow_pickle=False)
    else:
        import imageio.v3 as iio

        b = iio.imread(path)
    b = np.asarray(b)
    if b.ndim == 3:
        b = b[..., :3].mean(-1)
    if b.dtype == np.uint8:
        b = b.astype(np.float32) / 255.0
    elif b.dtype == np.uint16:
        b = b.astype(np.float32) / 65535.0
    else:
        b = b.astype(np.float32)
        if b.size and b.max() > 1:
            b = b / b.max()
    if b.shape != tuple(shape):
        if b.T.shape == tuple(shape):
            b = b.T
        else:
            raise ValueError(f"contour map {path} has shape {b.shape}, expected {tuple(shape)}")
    b = np.clip(b, 0.0, 1.0)
    return (1.0 - b) if invert else b


def _half_disc_kernels(radius: int, n_orientations: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The disc, and per orientation the antisymmetric kernel (+1 on one half, -1 on the other, 0 on the line)."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float32)
    disc = (xx**2 + yy**2 <= radius * radius + 0.5).astype(np.float32)
    halves = []
    for i in range(n_orientations):
        theta = np.pi * i / n_orientations
        side = np.round(xx * np.cos(theta) + yy * np.sin(theta), 6)  # exact 0 on the line (cos(pi/2) != 0)
        halves.append((np.sign(side) * disc).astype(np.float32))
    return disc, halves


def oriented_histogram_gradient(words: np.ndarray, n_words: int | None = None, *, radii=(5, 10),
                                n_orientations: int = 8) -> np.ndarray:
    """Half-disc histogram gradient of a word map (the cue of Martin et al. [2]_).

    For each pixel, orientation and radius, the words under the two halves
    of a disc are histogrammed and compared with the chi-squared distance
    ``0.5 * sum (L - R)^2 / (L + R)``; the result is the maximum over
    orientations, averaged over radii. With ``L + R`` the whole disc (the
    dividing line shared equally), one disc filter per word and one
    antisymmetric filter per word and orientation suffice.

    Parameters
    ----------
    words : (H, W) int
        Quantised image, values in ``[0, n_words)`` (see :func:`quantize`).
    n_words : int, optional
        Number of words (default ``words.max() + 1``).
    radii : sequence of int
        Disc radii in pixels.
    n_orientations : int
        Orientations in ``[0, pi)``.

    Returns
    -------
    (H, W) float32 in [0, 1]
        0 in a uniform region; about 0.8 (radius 5) to 0.9 (radius 10) at
        an ideal step between disjoint word distributions (the pixels on the
        dividing line count half to each side).
    """
    import cv2

    words = np.asarray(words)
    if words.ndim != 2 or not np.issubdtype(words.dtype, np.integer):
        raise ValueError(f"words must be a 2-D integer map, got {words.dtype} of shape {words.shape}")
    n_words = int(words.max()) + 1 if n_words is None else int(n_words)
    if words.min() < 0 or words.max() >= n_words:
        raise ValueError(f"words must lie in [0, n_words={n_words}), got {words.min()}..{words.max()}")
    indicators = [(words == k).astype(np.float32) for k in range(n_words)]
    total = np.zeros(words.shape, np.float32)
    for r in radii:
        disc, halves = _half_disc_kernels(int(r), n_orientations)
        sums = [cv2.filter2D(ind, -1, disc, borderType=cv2.BORDER_REFLECT) for ind in indicators]
        best = np.zeros(words.shape, np.float32)
        for half in halves:
            chi = np.zeros(words.shape, np.float32)
            for ind, s in zip(indicators, sums):
                d = cv2.filter2D(ind, -1, half, borderType=cv2.BORDER_REFLECT)
                chi += d * d / np.maximum(s, 1e-3)
            np.maximum(best, chi, out=best)
        total += best / float(disc.sum())  # 0.5 * (2 / area) normalises the half histograms
    return np.clip(total / len(radii), 0.0, 1.0)


def quantize(features: np.ndarray, n_words: int, *, random_state: int | None = 0, max_samples: int = 20000) -> np.ndarray:
    """Words of a (C, H, W) feature map by k-means (fitted on a subsample, all pixels assigned).

    Channels are standardised first, so that no channel dominates by scale.

    Returns
    -------
    (H, W) int64 in ``[0, n_words)``
    """
    from scipy.cluster.vq import kmeans2, vq

    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 3:
        raise ValueError(f"features must be (C, H, W), got shape {f.shape}")
    x = f.reshape(len(f), -1).T
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    rng = np.random.default_rng(random_state)
    sample = x[rng.choice(len(x), min(len(x), max_samples), replace=False)]
    k = max(1, min(int(n_words), len(np.unique(sample, axis=0))))
    centres, _ = kmeans2(sample, k, minit="++", seed=rng, iter=10)
    return vq(x, centres)[0].reshape(f.shape[1:]).astype(np.int64)


def pb_cues(image: np.ndarray, texture: np.ndarray | None = None, *, channel_axis: int | None = -1,
            n_words: int = 16, radii=(5, 10), n_orientations: int = 8,
            random_state: int | None = 0) -> dict[str, np.ndarray]:
    """The cues of :func:`pb_contours` separately: ``{"brightness", "colour"[, "texture"]}`` -> (H, W) float32."""
    from ._validation import to_float_rgb
    from .features import rgb_to_lab

    rgb = to_float_rgb(image, channel_axis=channel_axis)
    lab = rgb_to_lab(rgb).transpose(2, 0, 1)
    words = {"brightness": np.clip((lab[0] / 100.0 * n_words).astype(np.int64), 0, n_words - 1),
             "colour": quantize(lab, n_words, random_state=random_state)}
    if texture is not None:
        words["texture"] = quantize(resize_features(texture, rgb.shape[:2]), n_words, random_state=random_state)
    return {k: oriented_histogram_gradient(w, n_words, radii=radii, n_orientations=n_orientations)
            for k, w in words.items()}


def pb_contours(image: np.ndarray, texture: np.ndarray | None = None, *, channel_axis: int | None = -1,
                n_words: int = 16, radii=(5, 10), n_orientations: int = 8, random_state: int | None = 0) -> np.ndarray:
    """Learning-free probability of boundary: brightness, colour and texture gradients [2]_.

    The mean of :func:`oriented_histogram_gradient` over three word maps:
    brightness (Lab L in ``n_words`` bins), colour (k-means words of Lab)
    and, when ``texture`` is given, texture words (k-means of those
    features, e.g. a learned per-pixel embedding, resized to the image).

    Parameters
    ----------
    image : (H, W) or (H, W, C) array
    texture : (D, h, w) array, optional
        Per-pixel features for the texture cue.
    channel_axis : int or None
    n_words : int
        Words per cue.
    radii, n_orientations
        See :func:`oriented_histogram_gradient`.
    random_state : int or None
        k-means seed.

    Returns
    -------
    (H, W) float32 in [0, 1]

    Examples
    --------
    >>> img = np.zeros((32, 32)); img[:, 16:] = 1.0
    >>> b = pb_contours(img)
    >>> bool(b[16, 15] > 0.5 > b[16, 4])
    True
    """
    cues = pb_cues(image, texture, channel_axis=channel_axis, n_words=n_words, radii=radii,
                   n_orientations=n_orientations, random_state=random_state)
    return (sum(cues.values()) / len(cues)).astype(np.float32)


def resize_features(features: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (C, h, w) feature map to (C, H, W) float32."""
    import cv2

    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 3:
        raise ValueError(f"features must be (C, H, W), got shape {f.shape}")
    if f.shape[1:] == tuple(shape):
        return f
    return np.stack([cv2.resize(c, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for c in f])


def contour_map(rgb: np.ndarray, contours: str | Path = "sobel", *, stem: str | None = None) -> np.ndarray:
    """Edge probability for ``rgb`` from ``"sobel"``, ``"canny"`` or a folder of maps.

    Parameters
    ----------
    rgb : (H, W, 3) float array in [0, 1]
    contours : {"sobel", "canny"} or path
        Detector name, or a directory with one map per image (see :func:`folder_contours`).
    stem : str, optional
        Image name, required for a folder.
    """
    if isinstance(contours, str) and contours in ("sobel", "canny"):
        return sobel_contours(rgb) if contours == "sobel" else canny_contours(rgb)
    folder = Path(contours)
    if not folder.is_dir():
        raise ValueError(f"contours must be 'sobel', 'canny' or an existing directory, got {contours!r}")
    if stem is None:
        raise ValueError("a contour folder needs the image name (stem)")
    return folder_contours(folder, stem, rgb.shape[:2])
