"""Contour (edge-probability) maps for LNSNet's gradient bi-direction layer.

Every function returns a float32 (H, W) map in [0, 1] where 1 means "edge"
(the ``B`` of Zhu et al. [1]_, Eq. 12). The paper reports that the choice of
contour detector (Sobel, Canny, PB, BDCN) hardly matters.

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import feature, filters
from skimage.color import rgb2gray

__all__ = ["sobel_contours", "canny_contours", "folder_contours", "contour_map"]


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
