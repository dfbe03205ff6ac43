"""Boundary-driven hierarchies on top of DSC / SP-WNet: an ultrametric contour map per image.

The learned output of a method (DSC: the SuperAE embedding and the class
probabilities; SP-WNet: the W-Net class logits and probabilities) enters in
two places:

1. **Boundary map**: the learning-free brightness and colour half-disc
   gradients of Martin et al. [1]_ plus a *texture* gradient whose words are
   k-means clusters of the learned per-pixel embedding
   (:func:`clusterseg.contours.pb_contours`), plus the gradient magnitude of
   the class probabilities, plus (``pmi_weight``, on by default) the boundary
   of the spectral step on pointwise-mutual-information affinities of the
   image's colour words (Isola et al. [3]_,
   :func:`clusterseg.graph.globalisation.pmi_boundary`), which keeps
   outlines that partition the whole image and ignores colours that
   alternate within a texture; optionally (``spectral_weight``) the spectral
   globalisation of the local map itself (the "sPb" of [2]_).
2. **Merging**: fine regions (the watershed basins of that map, so that
   region borders lie on its ridges, as in the oriented watershed of [2]_)
   are merged greedily, weakest boundary first, where the cost of a merge is
   the mean boundary along the shared border plus the chi-squared distance
   of the two regions' colour-word histograms, reduced for small regions
   (:func:`clusterseg.graph.ucm.boundary_merge`).

The merge heights form an ultrametric contour map (UCM) whose thresholds
give nested segmentations; a threshold carries over from image to image
(both terms are bounded and absolute: no per-image normalisation), which is
what the BSDS ODS protocol needs.

References
----------
.. [1] D. R. Martin, C. C. Fowlkes, J. Malik, "Learning to detect natural
       image boundaries using local brightness, color, and texture cues",
       IEEE TPAMI 26(5), 2004.
.. [2] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and
       hierarchical image segmentation", IEEE TPAMI 33(5), 2011.
.. [3] P. Isola, D. Zoran, D. Krishnan, E. H. Adelson, "Crisp boundary
       detection using pointwise mutual information", ECCV 2014.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..contours import pb_cues, quantize, resize_features
from ..features import rgb_to_lab
from ..graph.globalisation import pmi_boundary, spectral_boundary
from ..graph.ucm import MergeTree, boundary_merge

__all__ = ["HierarchyOptions", "boundary_cues", "boundary_hierarchy", "combine_cues", "probability_gradient"]


@dataclass(frozen=True)
class HierarchyOptions:
    """Levers of :func:`boundary_hierarchy` (defaults measured on 24 BSDS500 train images).

    Attributes
    ----------
    texture : bool
        Texture cue from the learned embedding in the boundary map.
    probability_weight : float
        Weight of the class-probability gradient in the boundary map.
    histogram_weight : float
        Weight of the colour-histogram chi-squared distance in the merge cost.
    area_fraction : float
        Regions smaller than this fraction of the image merge earlier (0 off).
    n_words : int
        Words per cue of the boundary map.
    histogram_words : int
        Colour words of the region histograms.
    spectral_weight : float
        Weight of the globalised boundary (:func:`clusterseg.graph.globalisation.spectral_boundary`
        of the local map, divided by its 99th percentile in the image and
        clipped at 1.5) added to the local map (0: off, the default). With
        ``histogram_weight=0.5`` it raised PRI ODS on 24 train images (0.831
        -> 0.841) but, in a fresh run on the 100 val images, moved PRI ODS by
        +0.003 (DSC) and -0.003 (SP-WNet) and worsened the OIS numbers, for
        4 s more per image (docs/unsupervised_hierarchy.md).
    n_eigenvectors : int
        Eigenvectors of the globalisation (and of the PMI boundary).
    pmi_weight : float
        Weight of the PMI boundary of the image (:func:`clusterseg.graph.globalisation.pmi_boundary`:
        the spectral step on colour-word affinities learned from the image
        itself, Isola et al. 2014), divided by its 99th percentile in the
        image and clipped at 1.5, added to the local map (0: off). 0.5 with
        32 words and radius 7 was best on the 24 train images; on the 100
        val images it raised DSC from SC 0.575 / PRI 0.793 / VI 1.686 (ODS)
        to 0.601 / 0.807 / 1.594 (docs/unsupervised_hierarchy.md), for
        about 3.5 s per image.
    pmi_words, pmi_radius : int
        Colour words and link radius (half-resolution pixels) of the PMI boundary.
    """

    texture: bool = True
    probability_weight: float = 1.0 / 3.0
    histogram_weight: float = 1.0 / 3.0
    area_fraction: float = 0.02
    n_words: int = 16
    histogram_words: int = 32
    spectral_weight: float = 0.0
    n_eigenvectors: int = 16
    pmi_weight: float = 0.5
    pmi_words: int = 32
    pmi_radius: int = 7

    def __post_init__(self) -> None:
        for name in ("probability_weight", "histogram_weight", "area_fraction", "spectral_weight", "pmi_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"HierarchyOptions.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("n_words", "histogram_words", "n_eigenvectors", "pmi_words", "pmi_radius"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"HierarchyOptions.{name} must be >= 1, got {getattr(self, name)}")


def probability_gradient(probabilities: np.ndarray, shape: tuple[int, int], sigmas=(1.0, 2.0)) -> np.ndarray:
    """Gaussian gradient magnitude of (K, h, w) class probabilities at ``shape``, averaged over ``sigmas``."""
    p = resize_features(probabilities, shape)
    out = np.zeros(shape, np.float64)
    for s in sigmas:
        out += np.sqrt(sum(ndi.gaussian_gradient_magnitude(c, s) ** 2 for c in p))
    return (out / len(sigmas)).astype(np.float32)


def boundary_cues(rgb: np.ndarray, embedding: np.ndarray | None = None, probabilities: np.ndarray | None = None,
                  options: HierarchyOptions | None = None, *, random_state: int | None = 0) -> dict[str, np.ndarray]:
    """Boundary cues of one image: ``brightness``, ``colour``, ``texture`` (with an embedding),
    ``probability`` (with probabilities) and ``pmi`` (with ``pmi_weight > 0``), each (H, W) float32."""
    opt = options or HierarchyOptions()
    cues = pb_cues(rgb, embedding, n_words=opt.n_words, random_state=random_state)
    if probabilities is not None:
        cues["probability"] = probability_gradient(probabilities, rgb.shape[:2])
    if opt.pmi_weight:
        cues["pmi"] = pmi_boundary(rgb, opt.pmi_words, radius=opt.pmi_radius, n_vectors=opt.n_eigenvectors,
                                   random_state=random_state)
    return cues


def combine_cues(cues: dict[str, np.ndarray], options: HierarchyOptions | None = None, *,
                 random_state: int | None = 0) -> np.ndarray:
    """Boundary map: mean of the half-disc cues (texture if enabled) + weighted probability gradient,
    then, with ``spectral_weight``, + the weighted globalisation of that local map and, with
    ``pmi_weight``, + the weighted ``pmi`` cue (which :func:`boundary_cues` adds with the same options)."""
    opt = options or HierarchyOptions()
    names = ["brightness", "colour"] + (["texture"] if opt.texture and "texture" in cues else [])
    boundary = sum(cues[k] for k in names) / len(names)
    if "probability" in cues and opt.probability_weight:
        boundary = boundary + opt.probability_weight * cues["probability"]
    if opt.spectral_weight:
        globalised = spectral_boundary(boundary, opt.n_eigenvectors, random_state=random_state)
        boundary = boundary + opt.spectral_weight * _relative(globalised)
    if opt.pmi_weight:
        if "pmi" not in cues:
            raise ValueError("pmi_weight > 0 needs the 'pmi' cue: compute the cues with the same options")
        boundary = boundary + opt.pmi_weight * _relative(cues["pmi"])
    return boundary


def _relative(signal: np.ndarray) -> np.ndarray:
    """A spectral boundary over its 99th percentile, clipped at 1.5: its magnitude varies between
    images (the local map's does not)."""
    scale = float(np.percentile(signal, 99))
    return np.clip(signal / scale, 0.0, 1.5) if scale > 0 else np.zeros_like(signal)


def boundary_hierarchy(
    rgb: np.ndarray,
    embedding: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    options: HierarchyOptions | None = None,
    *,
    base_labels: np.ndarray | None = None,
    cues: dict[str, np.ndarray] | None = None,
    random_state: int | None = 0,
) -> MergeTree:
    """Merge tree and UCM of one image from a method's learned output.

    Parameters
    ----------
    rgb : (H, W, 3) float array in [0, 1]
    embedding : (D, h, w) array, optional
        Learned per-pixel features (any resolution; resized).
    probabilities : (K, h, w) array, optional
        Learned class probabilities (any resolution; resized).
    options : HierarchyOptions, optional
    base_labels : (H, W) int, optional
        Finest regions (default: watershed basins of the boundary map).
    cues : dict, optional
        Precomputed :func:`boundary_cues` (to compare options cheaply).
    random_state : int or None
        k-means seed.

    Returns
    -------
    MergeTree
        ``.ucm`` (2H+1, 2W+1) and ``.labels(k)``.
    """
    opt = options or HierarchyOptions()
    shape = rgb.shape[:2]
    if cues is None:
        cues = boundary_cues(rgb, embedding, probabilities, opt, random_state=random_state)
    boundary = combine_cues(cues, opt, random_state=random_state)
    base = _watershed_basins(boundary) if base_labels is None else np.asarray(base_labels)
    if base.shape != tuple(shape):  # gaps and split labels are boundary_merge's to renumber
        raise ValueError(f"base_labels has shape {base.shape}, the image {tuple(shape)}")
    words = quantize(rgb_to_lab(rgb).transpose(2, 0, 1), opt.histogram_words, random_state=random_state)
    hist = _region_histograms(base, words, opt.histogram_words)
    return boundary_merge(base, boundary, hist, feature_weight=opt.histogram_weight, feature_distance="chi2",
                          area_scale=opt.area_fraction * shape[0] * shape[1])


def _watershed_basins(boundary: np.ndarray) -> np.ndarray:
    from skimage.segmentation import watershed

    return (watershed(boundary, connectivity=1) - 1).astype(np.int64)


def _region_histograms(labels: np.ndarray, words: np.ndarray, n_words: int) -> np.ndarray:
    """Normalised word histogram of every region, (n, n_words)."""
    n = int(labels.max()) + 1
    hist = np.bincount(labels.ravel() * n_words + words.ravel(), minlength=n * n_words).reshape(n, n_words)
    return hist / np.maximum(hist.sum(1, keepdims=True), 1)
