"""Photometric and geometric augmentation for training on images of many modalities.

Microscopy users bring grey fluorescence (bright objects on black), bright-field
(dark objects on a bright background), H&E and other stains (purple nuclei on
pink tissue), at bit depths and object sizes that differ tenfold between data
sets. A network trained on one of these generalises to the others only if its
training crops cover them; :func:`augment_modality` draws such variations of a
normalised ``(C, H, W)`` image, and :func:`resize_pair` rescales an image and
its label map together.

Every function takes a :class:`numpy.random.Generator`, so an augmented crop
is a pure function of the generator's seed (exact resumption of training).

References
----------
.. [1] A. C. Ruifrok, D. A. Johnston, "Quantification of histochemical staining
       by color deconvolution", Analytical and Quantitative Cytology and
       Histology 23(4), 2001 (the haematoxylin and eosin optical densities).
.. [2] D. Tellez et al., "Whole-slide mitosis detection in H&E breast
       histology using PHH3 as a reference to train distilled stain-invariant
       convolutional networks", IEEE TMI 37(9), 2018 (stain colour jitter).
.. [3] M. Lalit, P. Tomancak, F. Jug, "EmbedSeg: Embedding-based instance
       segmentation for biomedical microscopy data", Medical Image Analysis
       81, 2022 (percentile normalisation of microscopy inputs).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .features import normalize_percentile

__all__ = ["ModalityAugmentation", "augment_modality", "render_stain", "colour_matrix", "resize_pair"]

# Optical densities per unit stain (RGB), Ruifrok & Johnston [1]_, normalised to unit length.
_HAEMATOXYLIN = np.array([0.650, 0.704, 0.286])
_EOSIN = np.array([0.072, 0.990, 0.105])


@dataclasses.dataclass(frozen=True)
class ModalityAugmentation:
    """Probabilities and ranges of :func:`augment_modality` (``p_*`` are probabilities).

    The defaults cover grey fluorescence, bright-field and stained tissue
    from a training set of any one of them.
    """

    p_stain: float = 0.25  # render a grey image as a stained bright-field image
    p_invert: float = 0.2  # dark objects on a bright background
    p_colour: float = 0.5  # hue rotation, saturation and channel mixing
    hue: float = 0.5  # radians, +-
    saturation: tuple[float, float] = (0.3, 1.6)
    mixing: float = 0.1  # std of the off-identity channel-mixing entries
    p_grey: float = 0.15  # convert to grey
    gamma: tuple[float, float] = (0.6, 1.6)
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.15
    p_blur: float = 0.25
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_noise: float = 0.3
    noise_std: tuple[float, float] = (0.01, 0.08)
    percentile_low: tuple[float, float] = (0.0, 3.0)
    percentile_high: tuple[float, float] = (98.5, 100.0)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name.startswith("p_") and not 0.0 <= getattr(self, field.name) <= 1.0:
                raise ValueError(f"{field.name} must be a probability in [0, 1], got {getattr(self, field.name)}")


def colour_matrix(hue: float, saturation: float, mixing: np.ndarray | None = None) -> np.ndarray:
    """3x3 RGB matrix: rotation by ``hue`` radians about the grey axis, then saturation scaling.

    Grey stays grey under the rotation (it is the rotation axis) and under
    the saturation scaling (which only scales the distance from grey).
    ``mixing`` (3x3) is added to the identity first.
    """
    axis = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(hue) * cross + (1 - np.cos(hue)) * (cross @ cross)
    grey = np.full((3, 3), 1 / 3)
    saturate = grey + saturation * (np.eye(3) - grey)
    base = np.eye(3) if mixing is None else np.eye(3) + mixing
    return saturate @ rotation @ base


def render_stain(intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stained bright-field rendering ``(3, H, W)`` in [0, 1] of a grey image whose objects are bright.

    Objects take haematoxylin in proportion to their intensity, the
    background a smooth random amount of eosin; transmitted light is
    ``exp(-optical density)`` (Beer-Lambert), with the stain vectors jittered.
    """
    h_vec = np.abs(_HAEMATOXYLIN + rng.normal(0, 0.05, 3))
    e_vec = np.abs(_EOSIN + rng.normal(0, 0.05, 3))
    density = rng.uniform(0.8, 2.5) * np.clip(intensity, 0, 1)
    eosin = rng.uniform(0.05, 0.6) * ndimage.gaussian_filter(rng.uniform(0.5, 1.5, intensity.shape), 8)
    optical = density[None] * h_vec[:, None, None] + eosin[None] * e_vec[:, None, None]
    return np.exp(-optical).astype(np.float32)


def _is_grey(image: np.ndarray) -> bool:
    return image.shape[0] == 1 or bool(np.ptp(image, axis=0).max() < 1e-3)


def _photometric(x: np.ndarray, rng: np.random.Generator, cfg: ModalityAugmentation) -> np.ndarray:
    """Gamma, contrast and brightness on a [0, 1] image."""
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(*cfg.gamma)
    mean = float(x.mean())
    return (x - mean) * rng.uniform(*cfg.contrast) + mean + rng.uniform(-cfg.brightness, cfg.brightness)


def augment_modality(
    image: np.ndarray, rng: np.random.Generator, config: ModalityAugmentation | None = None
) -> np.ndarray:
    """A random imaging-modality variant of a percentile-normalised ``(3, H, W)`` image.

    In order, each with its probability: a grey image rendered as stained
    bright-field (:func:`render_stain`) or else inverted; hue, saturation and
    channel mixing (:func:`colour_matrix`); conversion to grey; gamma,
    contrast and brightness; Gaussian blur; Gaussian noise; finally the
    percentile normalisation of inference again, with jittered percentiles.

    Parameters
    ----------
    image : ndarray (3, H, W)
        Roughly in [0, 1] (e.g. :func:`~clusterseg.features.normalize_percentile`).
    rng : numpy.random.Generator
        Source of every random draw.
    config : ModalityAugmentation, optional
        Probabilities and ranges.

    Returns
    -------
    ndarray of float32 (3, H, W)
    """
    cfg = config or ModalityAugmentation()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {image.shape}")
    x = np.clip(image.astype(np.float32), 0.0, 1.0)
    if _is_grey(x) and rng.random() < cfg.p_stain:
        x = render_stain(x.mean(axis=0), rng)
    elif rng.random() < cfg.p_invert:
        x = 1.0 - x
    if rng.random() < cfg.p_colour:
        matrix = colour_matrix(rng.uniform(-cfg.hue, cfg.hue), rng.uniform(*cfg.saturation),
                               rng.normal(0, cfg.mixing, (3, 3)))
        x = np.einsum("ij,jhw->ihw", matrix.astype(np.float32), x)
    if rng.random() < cfg.p_grey:
        x = np.broadcast_to(x.mean(axis=0, keepdims=True), x.shape)
    x = _photometric(x, rng, cfg)
    if rng.random() < cfg.p_blur:
        x = ndimage.gaussian_filter(x, (0, *(2 * [rng.uniform(*cfg.blur_sigma)])))
    if rng.random() < cfg.p_noise:
        x = x + rng.normal(0, rng.uniform(*cfg.noise_std), x.shape)
    low, high = rng.uniform(*cfg.percentile_low), rng.uniform(*cfg.percentile_high)
    return normalize_percentile(x, low, high)


def resize_pair(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a ``(C, h, w)`` image (bilinear, antialiased) and its ``(..., h, w)`` label maps (nearest) to ``size``."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                      antialias=size < image.shape[-1])[0].numpy()
    lead = labels.shape[:-2]  # e.g. (2,) for stacked instance and class maps
    y = torch.from_numpy(np.ascontiguousarray(labels).astype(np.float32)).reshape(-1, 1, *labels.shape[-2:])
    y = F.interpolate(y, size=(size, size), mode="nearest-exact")[:, 0].numpy().astype(labels.dtype)
    return x, y.reshape(*lead, size, size)
