"""High-level API: ``segment``, ``segment_hierarchy`` and ``segment_sequence``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._common import (
    ProgressLike,
    as_rgb,
    check_k,
    default_min_size,
    make_progress,
    merge_small_fragments,
    region_hierarchy,
    relabel,
    upscale_labels,
)
from .dsc import deep_superpixel_cut
from .hierarchy import HierarchyOptions, boundary_hierarchy
from .spwnet import SPWNetModel

__all__ = ["segment", "segment_hierarchy", "segment_sequence", "iter_segment_sequence", "fit_sequence_model", "METHODS"]

METHODS = ("dsc", "spwnet")

#: SP-WNet defaults for single-image mode (CPU-sized network).
_SPWNET_IMAGE_DEFAULTS = dict(ch_mul=8, n_blocks=3, max_side=224, n_superpixels=600, patch_sizes=(32, 48), epochs=6)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _levels(small_labels, pixel_features, full_shape, ks, min_size, connected=True):
    return region_hierarchy(small_labels, pixel_features, full_shape, ks, min_size, connected=connected)


@dataclass
class _Output:
    """One optimisation's result, with what the hierarchies need."""

    labels: np.ndarray  # (H, W) final class map
    small_labels: np.ndarray  # class map at the working resolution
    features: np.ndarray  # (D, h, w) per-pixel features for Ward merging
    embedding: np.ndarray  # (D', h, w) learned embedding (texture cue)
    probabilities: np.ndarray  # (K, h, w)
    min_size: int


def _run(image, n_segments, method, channel_axis, superpixel_method, n_superpixels, max_iter, random_state,
         progress, kwargs) -> _Output:
    """Run one optimisation of ``method`` on one image."""
    rgb = as_rgb(image, channel_axis)
    full_shape = rgb.shape[:2]
    min_size = kwargs.pop("min_size", None)
    min_size = default_min_size(full_shape) if min_size is None else int(min_size)
    if method == "dsc":
        opts = dict(kwargs)
        if n_superpixels is not None:
            opts["n_superpixels"] = n_superpixels
        if max_iter is not None:
            opts["max_iter"] = max_iter
        if superpixel_method is not None:
            opts["superpixel_method"] = superpixel_method
        res = deep_superpixel_cut(rgb, n_segments, min_size=min_size,
                                  random_state=random_state, progress=progress, **opts)
        feats = res.node_features[res.superpixels].transpose(2, 0, 1)
        return _Output(res.labels, res.small_labels, feats, res.embedding, res.probabilities, min_size)
    opts = dict(_SPWNET_IMAGE_DEFAULTS)
    opts.update(kwargs)
    epochs = opts.pop("epochs")
    if max_iter is not None:
        epochs = max(1, int(max_iter) // opts.get("n_batches", 8))
    if n_superpixels is not None:
        opts["n_superpixels"] = n_superpixels
    if superpixel_method is not None:
        opts["superpixel_method"] = superpixel_method
    model = SPWNetModel(n_segments, random_state=random_state, **opts)
    model.fit([rgb], epochs=epochs, progress=progress)
    logits, small_rgb = model.predict_logits(rgb)
    small = relabel(model.labels_from_logits(logits, small_rgb))
    labels = merge_small_fragments(upscale_labels(small, full_shape), min_size)
    probs = torch.softmax(torch.from_numpy(logits), 0).numpy()
    return _Output(labels, small, probs, logits, probs, min_size)


def segment(
    image: np.ndarray,
    n_segments: int = 8,
    *,
    method: str = "dsc",
    channel_axis: int | None = -1,
    superpixel_method: str | None = None,
    n_superpixels: int | None = None,
    max_iter: int | None = None,
    random_state: int | None = 0,
    return_hierarchy: bool = False,
    progress: ProgressLike = False,
    **kwargs: Any,
):
    """Unsupervised segmentation of one image into at most ``n_segments`` regions.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Greyscale, RGB or RGBA image.
    n_segments : int
        K, the number of classes to partition into (>= 2). The result has at
        most K labels (fewer when the optimisation merges classes).
    method : {"dsc", "spwnet"}
        ``"dsc"``: Deep Superpixel Cut [1]_ (per-image SuperAE + DSC,
        :func:`~clusterseg.unsupervised.dsc.deep_superpixel_cut`);
        ``"spwnet"``: SP-WNet [2]_ trained on patches of this image
        (:class:`~clusterseg.unsupervised.spwnet.SPWNetModel`).
    channel_axis : int or None
    superpixel_method : str, optional
        Over-segmentation the graph is built on (any
        :func:`clusterseg.superpixels.superpixels` method; default: the
        method's config, ``"slic"``).
    n_superpixels : int, optional
        Superpixels at the working resolution (DSC default 400, SP-WNet 600).
    max_iter : int, optional
        DSC: maximum partition iterations (default 128, early stopping when
        labels are stable); SP-WNet: training steps (default 48 = 6 epochs x
        8 steps; single-image defaults are CPU-sized: ``ch_mul=8,
        n_blocks=3, max_side=224, patch_sizes=(32, 48)``).
    random_state : int or None
        Seed (torch's global RNG state is restored afterwards).
    return_hierarchy : bool
        Also return ``{k: labels}`` for every ``k`` from 1 to the number of
        connected regions of the result, obtained from the same optimisation
        by Ward-merging adjacent regions on their learned features (see
        :func:`segment_hierarchy`).
    progress : callable(done, total) or bool
        Progress callback for the optimisation; ``True`` prints to stderr.
    **kwargs
        Method options (see the functions above), e.g. ``beta``, ``ae_iter``,
        ``affinity``, ``max_side``, ``min_size``.

    Returns
    -------
    labels : (H, W) int32 ndarray
        Consecutive labels ``0..n-1`` with ``n <= n_segments``.
    hierarchy : dict, only if ``return_hierarchy``

    References
    ----------
    .. [1] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
           Unsupervised Image Segmentation. arXiv:2103.06031.
    .. [2] Leng, K., et al. (2024). Unsupervised Few-Shot Image Segmentation
           with Dense Feature Learning and Sparse Clustering. VISAPP 2024.

    Examples
    --------
    >>> from skimage.data import coffee
    >>> labels = segment(coffee()[::4, ::4], n_segments=6)  # doctest: +SKIP
    >>> labels.dtype, labels.max() < 6  # doctest: +SKIP
    (dtype('int32'), True)
    """
    _check_method(method)
    n_segments = check_k(n_segments)
    out = _run(image, n_segments, method, channel_axis, superpixel_method, n_superpixels, max_iter, random_state,
               progress, dict(kwargs))
    if not return_hierarchy:
        return out.labels
    from skimage.measure import label as cc_label

    n = int(cc_label(out.small_labels, connectivity=1, background=-1).max())
    levels = _levels(out.small_labels, out.features, out.labels.shape, range(1, n + 1), out.min_size)
    return out.labels, {k: v for k, v in levels.items() if k == 1 or v.max() + 1 == k}


def segment_hierarchy(
    image: np.ndarray,
    n_segments: Iterable[int] = (2, 3, 4, 6, 8, 12, 16),
    *,
    method: str = "dsc",
    max_segments: int | None = None,
    hierarchy: str = "boundary",
    hierarchy_options: HierarchyOptions | None = None,
    return_ucm: bool = False,
    channel_axis: int | None = -1,
    random_state: int | None = 0,
    progress: ProgressLike = False,
    **kwargs: Any,
):
    """Several segmentations, coarse to fine, from one optimisation.

    The method runs once with ``K = max_segments`` (default: the largest
    requested count, at least 16 for the boundary hierarchy). Two ways to
    build the levels from its output:

    ``hierarchy="boundary"`` (default)
        Fine regions are merged greedily, weakest boundary first; the
        boundary map combines learning-free brightness / colour half-disc
        gradients with a texture gradient of the method's learned embedding
        and the gradient of its class probabilities, and the merge cost adds
        the colour-histogram distance of the two regions
        (:func:`~clusterseg.unsupervised.hierarchy.boundary_hierarchy`).
        The merge heights form an ultrametric contour map (``return_ucm``);
        ``ucm_to_labels(ucm, t)`` gives the level at any threshold.
    ``hierarchy="ward"``
        The connected regions of the class map are merged by the Ward
        criterion on their mean learned features.

    Parameters
    ----------
    image : ndarray
    n_segments : iterable of int
        Requested region counts.
    method : {"dsc", "spwnet"}
    max_segments : int, optional
        K of the single optimisation.
    hierarchy : {"boundary", "ward"}
    hierarchy_options : HierarchyOptions, optional
        Levers of the boundary hierarchy.
    return_ucm : bool
        Also return the ultrametric contour map, ``(2H+1, 2W+1)`` float in
        the BSDS500 "ucm2" layout (boundary hierarchy only).
    **kwargs
        Passed to :func:`segment`.

    Returns
    -------
    levels : dict
        k -> (H, W) int32 label map with at most k labels (``min(k, regions
        found)``). Boundary levels follow the merge order (nested, exactly k
        regions; a UCM threshold gives the same partition except where
        several merges share one height, see
        :meth:`~clusterseg.graph.ucm.MergeTree.labels`); Ward levels get a
        final fragment merge.
    ucm : (2H+1, 2W+1) float64 ndarray, only if ``return_ucm``

    References
    ----------
    .. [1] Arbelaez, P., Maire, M., Fowlkes, C., & Malik, J. (2011). Contour
           detection and hierarchical image segmentation. IEEE TPAMI, 33(5).

    Examples
    --------
    >>> from skimage.data import coffee
    >>> levels, ucm = segment_hierarchy(coffee()[::4, ::4], (2, 4), return_ucm=True)  # doctest: +SKIP
    >>> ucm_to_labels(ucm, 0.5).shape  # doctest: +SKIP
    (100, 150)
    """
    ks = sorted({int(k) for k in n_segments})
    if not ks or ks[0] < 1:
        raise ValueError(f"n_segments must be positive integers, got {n_segments!r}")
    if hierarchy not in ("boundary", "ward"):
        raise ValueError(f"hierarchy must be 'boundary' or 'ward', got {hierarchy!r}")
    if return_ucm and hierarchy != "boundary":
        raise ValueError("return_ucm needs hierarchy='boundary' (Ward levels are not an ultrametric)")
    default_k = max(ks[-1], 16) if hierarchy == "boundary" else ks[-1]
    kmax = check_k(max(max_segments or default_k, 2))
    _check_method(method)
    rgb = as_rgb(image, channel_axis)
    out = _run(rgb, kmax, method, -1, kwargs.pop("superpixel_method", None), kwargs.pop("n_superpixels", None),
               kwargs.pop("max_iter", None), random_state, progress, dict(kwargs))
    if hierarchy == "ward":
        return _levels(out.small_labels, out.features, rgb.shape[:2], ks, out.min_size)
    tree = boundary_hierarchy(rgb, out.embedding, out.probabilities, hierarchy_options, random_state=random_state)
    levels = tree.levels(ks)
    return (levels, tree.ucm) if return_ucm else levels


# --------------------------------------------------------------------- sequences
def _as_sequence(frames_or_volume, axis: int, channel_axis: int | None):
    """Return (indexable frames, per-frame channel_axis); all frames checked to have one size."""
    if isinstance(frames_or_volume, (str, os.PathLike)):
        frames_or_volume = _open_sequence(Path(frames_or_volume))
        if not isinstance(frames_or_volume, np.ndarray):
            return frames_or_volume, -1
    if isinstance(frames_or_volume, np.ndarray):
        arr = frames_or_volume
        if arr.ndim == 3:  # greyscale volume / video
            return np.moveaxis(arr, axis, 0), None
        if arr.ndim == 4:  # colour frames, channels last
            if axis % 4 == 3:
                raise ValueError("axis must not be the channel axis (the last one) of a 4-D array")
            return np.moveaxis(arr, axis, 0), -1
        raise ValueError(f"frames_or_volume must be a 3-D (Z, H, W) or 4-D (T, H, W, C) array, got shape {arr.shape}")
    if isinstance(frames_or_volume, Sequence):
        if len(frames_or_volume) == 0:
            raise ValueError("frames_or_volume is empty")
        _check_frame_sizes(frames_or_volume)
        return frames_or_volume, channel_axis
    raise TypeError(f"frames_or_volume must be an array, a sequence of arrays or a path, got {type(frames_or_volume).__name__}")


def _open_sequence(p: Path):
    """A folder / glob of frames (lazy, sizes checked), a video's frames or a volume array."""
    from ..io import IMAGE_EXTENSIONS, read_frames, read_video, read_volume

    if p.is_dir() or any(ch in str(p) for ch in "*?["):
        frames = read_frames(p)
        frames.check_same_size()
        return frames
    if not p.exists():
        raise FileNotFoundError(f"No such file or folder: '{p}'")
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff", ".npy"):
        return read_volume(p)
    if suffix in IMAGE_EXTENSIONS:
        raise ValueError(f"'{p}' is a single image, not a sequence: segment_sequence needs a folder of frames, "
                         "a video file or a volume (.tif / .npy stack); use clusterseg.segment for one image")
    return read_video(p)


def _check_frame_sizes(frames: Sequence) -> None:
    """All frames of one size, checked before any training (headers only for lazy frame folders)."""
    from ..io import FrameSequence

    if isinstance(frames, FrameSequence):
        frames.check_same_size()
        return
    first = np.shape(frames[0])
    for i, frame in enumerate(frames):
        if np.shape(frame) != first:
            raise ValueError(f"frame {i} has shape {np.shape(frame)}, but frame 0 has {first}; "
                             "all frames must have one size")


def _train_indices(train_on, n: int) -> list[int]:
    if isinstance(train_on, (int, np.integer)) and not isinstance(train_on, bool):
        if train_on < 1:
            raise ValueError(f"train_on must be >= 1, got {train_on}")
        k = min(int(train_on), n)
        return sorted({int(round(i)) for i in np.linspace(0, n - 1, k + 2)[1:-1]}) if k < n else list(range(n))
    idx = [int(i) for i in train_on]
    if not idx:
        raise ValueError("train_on is empty")
    bad = [i for i in idx if not -n <= i < n]
    if bad:
        raise ValueError(f"train_on indices {bad} are out of range for {n} frames")
    return [i % n for i in idx]


def fit_sequence_model(
    frames_or_volume,
    n_segments: int = 32,
    *,
    train_on: int | Sequence[int] = 4,
    axis: int = 0,
    channel_axis: int | None = -1,
    epochs: int = 10,
    progress: ProgressLike = False,
    random_state: int | None = 0,
    **model_kwargs: Any,
) -> SPWNetModel:
    """Train an SP-WNet on a few frames / slices of a sequence (see :func:`segment_sequence`).

    Returns
    -------
    SPWNetModel
        Fitted; save it with :meth:`SPWNetModel.save` and apply it with
        ``segment_sequence(..., model=model)`` or :meth:`SPWNetModel.predict`.
    """
    frames, ch_axis = _as_sequence(frames_or_volume, axis, channel_axis)
    model = SPWNetModel(check_k(n_segments), random_state=random_state, **model_kwargs)
    idx = _train_indices(train_on, len(frames))
    return model.fit([frames[i] for i in idx], epochs=epochs, channel_axis=ch_axis, progress=progress)


def iter_segment_sequence(
    frames_or_volume,
    n_segments: int = 32,
    *,
    train_on: int | Sequence[int] = 4,
    method: str = "spwnet",
    axis: int = 0,
    channel_axis: int | None = -1,
    model: SPWNetModel | None = None,
    epochs: int = 10,
    full_resolution: bool = True,
    progress: ProgressLike = False,
    fit_progress: ProgressLike = False,
    random_state: int | None = 0,
    **model_kwargs: Any,
) -> Iterator[tuple[int, np.ndarray]]:
    """Generator form of :func:`segment_sequence`: yields ``(index, labels)`` per frame.

    Frames are read and segmented one at a time (a lazy frame folder is
    never held in memory). Pass a fitted ``model`` to skip training.
    """
    if method != "spwnet":
        raise ValueError(f"segment_sequence supports method='spwnet' only, got {method!r}")
    frames, ch_axis = _as_sequence(frames_or_volume, axis, channel_axis)
    n = len(frames)
    if n == 0:
        raise ValueError("frames_or_volume is empty")
    if model is None:
        model = fit_sequence_model(frames, n_segments, train_on=train_on, channel_axis=ch_axis, epochs=epochs,
                                   progress=fit_progress, random_state=random_state, **model_kwargs)
    cb = make_progress(progress, "frames")
    for i in range(n):
        yield i, model.predict(frames[i], channel_axis=ch_axis, full_resolution=full_resolution)
        cb(i + 1, n)


def segment_sequence(
    frames_or_volume,
    n_segments: int = 32,
    *,
    train_on: int | Sequence[int] = 4,
    method: str = "spwnet",
    axis: int = 0,
    channel_axis: int | None = -1,
    model: SPWNetModel | None = None,
    epochs: int = 10,
    full_resolution: bool = True,
    return_model: bool = False,
    progress: ProgressLike = False,
    fit_progress: ProgressLike = False,
    random_state: int | None = 0,
    **model_kwargs: Any,
):
    """Segment every frame of a video or slice of a volume with one SP-WNet.

    An :class:`~clusterseg.unsupervised.spwnet.SPWNetModel` is trained on a
    few frames (``train_on``) and applied to all of them, so that class ids
    (0..K-1) mean the same thing in every frame / slice.

    Parameters
    ----------
    frames_or_volume : ndarray, sequence of ndarrays or path
        ``(T, H, W, C)`` colour frames, ``(Z, H, W)`` greyscale volume, a list
        of images, a folder / glob of frames, a TIFF or ``.npy`` stack, or a
        video file readable by imageio.
    n_segments : int
        Number of classes K.
    train_on : int or sequence of int
        Number of evenly spaced training frames, or their indices.
    method : {"spwnet"}
    axis : int
        Slicing axis of an array / stack.
    channel_axis : int or None
        Channel axis of the frames when a sequence of arrays is passed.
    model : SPWNetModel, optional
        A fitted model to apply (training is skipped).
    epochs : int
        Training epochs (x ``n_batches`` steps).
    full_resolution : bool
        Labels at the input size (else at the model's working resolution).
    return_model : bool
        Also return the trained model.
    progress : callable(done, total) or bool
        Progress over frames (``True`` prints to stderr).
    fit_progress : callable(done, total) or bool
        Progress over training steps.
    random_state : int or None
    **model_kwargs
        :class:`~clusterseg.unsupervised.spwnet.SPWNetConfig` options.

    Returns
    -------
    labels : (T, H, W) int32 ndarray
        Frame-stacked class maps (slices stacked along axis 0).
    model : SPWNetModel, only if ``return_model``
    """
    if method != "spwnet":
        raise ValueError(f"segment_sequence supports method='spwnet' only, got {method!r}")
    frames, ch_axis = _as_sequence(frames_or_volume, axis, channel_axis)
    if model is None:
        model = fit_sequence_model(frames, n_segments, train_on=train_on, channel_axis=ch_axis, epochs=epochs,
                                   progress=fit_progress, random_state=random_state, **model_kwargs)
    out = np.stack([lab for _, lab in iter_segment_sequence(frames, n_segments, method=method, model=model,
                                                             channel_axis=ch_axis, full_resolution=full_resolution,
                                                             progress=progress)])
    return (out, model) if return_model else out
