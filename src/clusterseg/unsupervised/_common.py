"""Helpers shared by the unsupervised pipelines (preprocessing, seeding, post-processing)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import numpy as np
import torch
from skimage.measure import label as cc_label
from skimage.transform import resize

from ..graph.adjacency import region_adjacency
from ..graph.pooling import pool_mean
from ..graph.spectral import merge_hierarchy

ProgressLike = Callable[[int, int], None] | bool | None


def as_rgb(image: np.ndarray, channel_axis: int | None = -1) -> np.ndarray:
    """Validated float32 RGB (H, W, 3) in [0, 1]."""
    from .._validation import to_float_rgb

    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    rgb = to_float_rgb(image, channel_axis=channel_axis)
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {rgb.shape[:2]}")
    return rgb


def check_k(n_segments) -> int:
    """K, the number of classes of DSC / SP-WNet: an integer >= 2."""
    if isinstance(n_segments, (bool, np.bool_)) or not isinstance(n_segments, (int, np.integer)):
        raise TypeError(f"n_segments must be an int, got {n_segments!r}")
    if n_segments < 2:
        raise ValueError(f"n_segments must be >= 2, got {n_segments}")
    return int(n_segments)


def default_min_size(shape: tuple[int, ...]) -> int:
    """Regions below 0.1 % of the image are merged by default (at least 1 pixel)."""
    return max(1, shape[0] * shape[1] // 1000)


def check_capacity(n_segments: int, shape: tuple[int, ...], n_superpixels: int, *, method: str,
                   min_side: int, min_pixels: int = 1) -> None:
    """Refuse, before any allocation, an image too small for ``method`` or more regions than it can give.

    Both methods label superpixels, so at most ``min(n_superpixels, pixels)``
    regions exist at the working resolution ``shape``.
    """
    h, w = shape[:2]
    if min(h, w) < min_side or h * w < min_pixels:
        need = f"at least {min_side} pixels per side" + (f" and {min_pixels} in all" if min_pixels > min_side**2 else "")
        raise ValueError(f"image of {h}x{w} pixels (working resolution) is too small for method {method!r}: "
                         f"it needs {need}")
    limit = min(int(n_superpixels), h * w)
    if n_segments > limit:
        raise ValueError(
            f"n_segments={n_segments} is more than method {method!r} can give on a {h}x{w} image: at most "
            f"{limit} (one region per superpixel, n_superpixels={n_superpixels}); ask for fewer segments"
        )


def downscale(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """Resize so that the longer side is at most ``max_side`` (anti-aliased)."""
    h, w = rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    shape = (max(2, round(h * s)), max(2, round(w * s)))
    return resize(rgb, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def upscale_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map."""
    if labels.shape == tuple(shape):
        return labels
    return resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(labels.dtype)


def compute_superpixels(rgb: np.ndarray, n_superpixels: int, method: str = "slic", random_state=0, **kwargs) -> np.ndarray:
    """Superpixels via :func:`clusterseg.superpixels.api.superpixels` (consecutive int64)."""
    from ..superpixels.api import superpixels

    n = int(min(max(n_superpixels, 1), rgb.shape[0] * rgb.shape[1]))
    sp = superpixels(rgb, n, method=method, random_state=random_state, **kwargs)
    _, inv = np.unique(sp, return_inverse=True)
    return inv.reshape(sp.shape).astype(np.int64)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive int32 labels 0..n-1 in order of first appearance value."""
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def merge_small_fragments(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Give connected fragments smaller than ``min_size`` the class of their longest-border neighbour.

    ``labels`` are class ids (a class may have several connected components);
    the result keeps class ids (a subset of the input ids), relabelled
    consecutively.
    """
    labels = np.asarray(labels)
    if min_size <= 1:
        return relabel(labels)
    cls = labels.astype(np.int64)
    for _ in range(20):
        comp = cc_label(cls, connectivity=1, background=-1) - 1
        comp = comp.astype(np.int64)
        sizes = np.bincount(comp.ravel())
        small = sizes < min_size
        if not small.any() or len(sizes) == 1:
            break
        comp_cls = np.zeros(len(sizes), dtype=np.int64)
        comp_cls[comp.ravel()] = cls.ravel()
        edges, counts = region_adjacency(comp, connectivity=1, return_counts=True)
        if len(edges) == 0:
            break
        # directed, candidate target must be a different component; prefer large ones
        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        cnt = np.concatenate([counts, counts]).astype(np.float64)
        keep = small[src]
        src, dst, cnt = src[keep], dst[keep], cnt[keep] + 1e6 * (~small[dst[keep]])
        order = np.lexsort((-cnt, src))
        src, dst = src[order], dst[order]
        first = np.r_[True, src[1:] != src[:-1]]
        new_cls = comp_cls.copy()
        new_cls[src[first]] = comp_cls[dst[first]]
        if np.array_equal(new_cls, comp_cls):
            break
        cls = new_cls[comp]
    return relabel(cls)


@contextlib.contextmanager
def seeded(random_state: int | None) -> Iterator[None]:
    """Fork torch's global RNG, seed it, and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        if random_state is not None:
            torch.manual_seed(int(random_state))
        yield


def make_progress(progress: ProgressLike, desc: str) -> Callable[[int, int], None]:
    """Normalise a progress argument to a ``callback(done, total)``."""
    if callable(progress):
        return progress
    if progress:
        def cb(done: int, total: int) -> None:
            sys.stderr.write(f"\r{desc}: {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        return cb
    return lambda done, total: None


def standardise(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float -> (1, 3, H, W) tensor with zero mean, unit std per channel."""
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    mu = x.mean(dim=(2, 3), keepdim=True)
    sd = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mu) / sd


def region_hierarchy(small_labels: np.ndarray, pixel_features: np.ndarray, full_shape, n_segments, min_size: int,
                     *, connected: bool = True) -> dict[int, np.ndarray]:
    """Coarse-to-fine levels from one label map by Ward merging on learned features.

    Parameters
    ----------
    small_labels : (h, w) int
        Finest result at the working resolution (class map).
    pixel_features : (D, h, w) float
        Learned per-pixel features; regions are compared by their means.
    full_shape : (H, W)
        Output size.
    n_segments : iterable of int
        Requested region counts.
    min_size : int
        Fragment size threshold at full resolution.
    connected : bool
        Start from the connected components of the class map (every level
        is then made of connected regions; BSDS500 scores are markedly
        better) instead of the classes themselves.

    Returns
    -------
    dict k -> (H, W) int32 label map.
    """
    lab = np.asarray(small_labels)
    if connected:
        lab = relabel(cc_label(lab, connectivity=1, background=-1))
        scale = lab.size / float(full_shape[0] * full_shape[1])
        lab = merge_small_fragments(lab, max(1, int(round(min_size * scale))))
    r = int(lab.max()) + 1
    feats = pool_mean(torch.from_numpy(np.ascontiguousarray(pixel_features, dtype=np.float32)),
                      lab.astype(np.int64), r).numpy()
    levels = merge_hierarchy(lab, feats, n_segments)
    return {k: merge_small_fragments(upscale_labels(v, full_shape), min_size) for k, v in levels.items()}
