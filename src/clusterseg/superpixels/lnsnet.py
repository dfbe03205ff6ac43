"""LNSNet superpixels (Zhu et al. [1]_) with exact counts and linear-time assignment.

:func:`lnsnet_superpixels` embeds the image with the feature embedder, places
``rows x cols ~= n_segments`` seeds on a square-cell grid, shifts them with the
seed estimation layer, assigns every pixel to the most similar seed among the
3x3 neighbouring cells (Student-t kernel, i.e. nearest in the embedding: the
paper's single pass), then by default refines the assignment with a few centre
updates (:func:`clusterseg.nn.lnsnet.cluster_pixels`; ``refine_steps=0`` keeps
the paper's method) and finally enforces connectivity, merging fragments so
that the number of superpixels stays close to ``n_segments``.

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu. "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from clusterseg.io.checkpoints import CheckpointError
from clusterseg.models.lnsnet import LNSNetConfig
from clusterseg.models.registry import WEIGHTS_DIR, model_info
from clusterseg.models.registry import load_model as registry_load
from clusterseg.nn.precision import autocast

__all__ = ["lnsnet_superpixels", "default_weights_path", "load_model"]

_DEFAULT_WEIGHTS = WEIGHTS_DIR / model_info("lnsnet-bsds500").weights
_TILED_PIXELS = 4_000_000  # above this many pixels the embedder runs in row tiles
# Centre updates after the single pass and the weights of their position and colour
# terms: chosen on 30 BSDS500 *train* images against SLIC at matched counts over
# refine_steps 2-8, spatial_weight 0.15-5 and colour_weight 0-0.05 (docs/lnsnet_training.md).
DEFAULT_REFINE_STEPS = LNSNetConfig.refine_steps
DEFAULT_SPATIAL_WEIGHT = LNSNetConfig.spatial_weight
DEFAULT_COLOUR_WEIGHT = LNSNetConfig.colour_weight


def default_weights_path() -> Path:
    """Path of the weights shipped with clusterseg (trained on BSDS500 train)."""
    return _DEFAULT_WEIGHTS


def load_model(weights=None):
    """Return an :class:`~clusterseg.nn.lnsnet.LNSNet` in eval mode.

    Parameters
    ----------
    weights : None, path or LNSNet
        ``None`` loads the shipped weights; a path loads a weights file or a
        training checkpoint; a module is used as is.

    Raises
    ------
    FileNotFoundError
        If the weights file does not exist.
    """
    from clusterseg.nn.lnsnet import LNSNet

    if isinstance(weights, LNSNet):
        return weights.eval()
    path = Path(weights) if weights is not None else _DEFAULT_WEIGHTS
    if not path.is_file():
        hint = (
            " (the default LNSNet weights are not installed; train some with "
            "`clusterseg train lnsnet` and pass weights=...)"
            if weights is None
            else ""
        )
        raise FileNotFoundError(f"LNSNet weights not found: {path}{hint}")
    model = registry_load(path)
    if not isinstance(model, LNSNet):
        raise CheckpointError(f"'{path}' holds a {type(model).__name__}, not LNSNet weights")
    return model


def _split_largest(labels: np.ndarray, n_new: int) -> np.ndarray:
    """Split the ``n_new`` largest segments in two along their longer axis (at the median pixel)."""
    from scipy import ndimage

    n = int(labels.max()) + 1
    sizes = np.bincount(labels.ravel(), minlength=n)
    order = np.argsort(sizes)[::-1][:n_new]
    out = labels.copy()
    boxes = ndimage.find_objects(labels + 1)
    next_label = n
    for lab in order:
        sl = boxes[lab]
        if sl is None or sizes[lab] < 2:
            continue
        rr, cc = np.nonzero(labels[sl] == lab)
        if sl[0].stop - sl[0].start >= sl[1].stop - sl[1].start:
            coord, cut = rr, np.median(rr)
        else:
            coord, cut = cc, np.median(cc)
        upper = coord > cut
        if not upper.any() or upper.all():
            continue
        sub = out[sl]
        sub[rr[upper], cc[upper]] = next_label
        next_label += 1
    return out


def _absorb_isolated_pixels(labels: np.ndarray) -> np.ndarray:
    """Give every pixel whose 4 neighbours all carry other labels the most common of their labels.

    The one-pass assignment leaves many single-pixel islands along boundaries
    (about a third of the raw components); relabelling them by a majority vote
    of their neighbours is O(N) and spares the connectivity pass most of its
    merges (ties go to the upper, then lower, left, right neighbour). Pixels on
    the image border are left alone.
    """
    padded = np.pad(labels, 1, mode="edge")
    around = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    isolated = (around != labels).all(0)
    if not isolated.any():
        return labels
    cand = around[:, isolated]  # (4, M)
    votes = (cand[:, None, :] == cand[None, :, :]).sum(1)
    out = labels.copy()
    out[isolated] = cand[votes.argmax(0), np.arange(cand.shape[1])]
    return out


def _connect(
    labels: np.ndarray,
    n_segments: int,
    min_size_factor: float,
    max_size_factor: float,
    count_range: tuple[float, float] = (0.9, 1.1),
) -> np.ndarray:
    """Connectivity post-processing with count control.

    0. Single-pixel islands take their neighbours' majority label
       (:func:`_absorb_isolated_pixels`).
    1. Fragments below ``min_size_factor * N / K`` pixels are merged into a
       neighbour (:func:`clusterseg.superpixels.connectivity.enforce_connectivity`).
    2. If fewer than ``count_range[0] * K`` segments remain (seeds that won no
       pixels, or whole small superpixels merged), the merge threshold is halved
       (down to 1/8 of it) and, if that is not enough, the largest segments are
       split in two along their longer axis.
    3. If more than ``count_range[1] * K`` segments remain, the smallest ones
       (exactly the excess) are merged in one more pass.
    """
    from clusterseg.superpixels.connectivity import enforce_connectivity

    labels = _absorb_isolated_pixels(labels)
    area = labels.size / max(1, n_segments)
    lo = int(np.floor(count_range[0] * n_segments))
    hi = max(1, int(np.ceil(count_range[1] * n_segments)))
    factor = min_size_factor
    for _ in range(4):
        min_size = max(1, int(factor * area))
        max_size = max(min_size + 1, int(max_size_factor * area))
        out = enforce_connectivity(labels, min_size=min_size, max_size=max_size)
        if int(out.max()) + 1 >= lo or min_size <= 1:
            break
        factor /= 2.0
    n = int(out.max()) + 1
    if n < lo:
        out = _split_largest(out, lo - n)
        out = enforce_connectivity(out, min_size=max(1, int(factor * area) // 2), max_size=max_size)
        n = int(out.max()) + 1
    for _ in range(3):
        if n <= hi:
            break
        sizes = np.bincount(out.ravel())
        excess = n - hi
        threshold = int(np.partition(sizes, excess - 1)[excess - 1])
        out = enforce_connectivity(out, min_size=threshold + 1, max_size=max_size)
        n = int(out.max()) + 1
    return out


def lnsnet_superpixels(
    image: np.ndarray,
    n_segments: int = 200,
    *,
    weights=None,
    config: LNSNetConfig | None = None,
    device: str | torch.device | None = None,
    channel_axis: int | None = -1,
    num_threads: int | None = None,
    random_state: int | None = None,
    compactness: float | None = None,
    **options,
) -> np.ndarray:
    """Superpixels from a trained LNSNet.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) array
        Greyscale, RGB or RGBA image; any dtype accepted by
        :func:`clusterseg._validation.to_float_rgb` (the dispatcher passes float
        RGB in [0, 1]).
    n_segments : int
        Requested number of superpixels ``K``. The seed grid has
        ``rows x cols ~= K`` square cells; the returned count is close to ``K``.
    weights : None, path or LNSNet
        Model weights; ``None`` uses the weights shipped with clusterseg.
    config : LNSNetConfig, optional
        Inference options (default ``LNSNetConfig()``).
    device : str or torch.device, optional
        Torch device (default CPU).
    channel_axis : int or None
        Colour axis of ``image``.
    num_threads : int, optional
        Torch intra-op threads used during the call (restored afterwards).
        Default: the current ``torch.get_num_threads()``. On a machine whose
        cores are busy with other jobs, ``num_threads=1`` avoids threads
        waiting for each other (several times slower than one thread there).
    random_state : int, optional
        Accepted for API compatibility and ignored: inference and test-time
        adaptation are deterministic.
    compactness : None
        Not supported (LNSNet learns its own trade-off); anything but ``None``
        raises ``ValueError``.
    **options
        Any :class:`~clusterseg.models.lnsnet.LNSNetConfig` field, overriding
        ``config`` (``refine_steps``, ``spatial_weight``, ``colour_weight``,
        ``assignment``, ``seed_layer``, ``adapt_steps``, ``adapt_lr``,
        ``contours``, ``min_size_factor``, ``max_size_factor``,
        ``enforce_connectivity``, ``precision``).

    Returns
    -------
    labels : (H, W) int32 ndarray
        Labels ``0..n-1``, every segment connected.

    Raises
    ------
    ValueError
        For an empty image, NaN/inf values, a bad ``n_segments`` or option.
    FileNotFoundError
        If ``weights`` (or the shipped weights) cannot be found.

    References
    ----------
    .. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and
           Lifelong Manner", CVPR 2021.

    Examples
    --------
    >>> from clusterseg.nn.lnsnet import LNSNet
    >>> img = np.random.default_rng(0).random((32, 48, 3))
    >>> labels = lnsnet_superpixels(img, 12, weights=LNSNet())
    >>> labels.shape, labels.dtype
    ((32, 48), dtype('int32'))
    """
    from clusterseg._validation import check_n_segments, to_float_rgb

    if compactness is not None:
        raise ValueError("method 'lnsnet' has no compactness parameter")
    cfg = LNSNetConfig.with_options(config, **options)
    rgb = to_float_rgb(image, channel_axis=channel_axis)
    h, w = rgb.shape[:2]
    n_segments = check_n_segments(n_segments, h * w)
    model = load_model(weights)
    if num_threads is None:
        num_threads = torch.get_num_threads()
    if int(num_threads) < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        return _run(model, rgb, n_segments, device, cfg)
    finally:
        torch.set_num_threads(previous_threads)


def _run(model, rgb, n_segments, device, cfg: LNSNetConfig) -> np.ndarray:
    from clusterseg.features import lab_xy_from_lab, rgb_to_lab
    from clusterseg.nn.lnsnet import cluster_pixels

    h, w = rgb.shape[:2]
    dev = torch.device(device) if device is not None else torch.device("cpu")
    lab = rgb_to_lab(rgb)
    x = torch.from_numpy(lab_xy_from_lab(lab)).to(dev)[None]
    # CIE-Lab for the colour term of the centre updates
    use_colour = cfg.refine_steps > 0 and cfg.colour_weight > 0
    colour = torch.from_numpy(lab).to(dev).permute(2, 0, 1)[None] if use_colour else None
    del lab
    if cfg.adapt_steps > 0:
        from clusterseg.contours import contour_map
        from clusterseg.models.lnsnet import adapt_lnsnet

        model = copy.deepcopy(model).to(dev)
        bnd = torch.from_numpy(contour_map(rgb, cfg.contours)).to(dev)
        with torch.enable_grad():
            adapt_lnsnet(model, x, bnd, n_segments, cfg.adapt_steps, lr=cfg.adapt_lr)
    elif next(model.parameters()).device != dev:  # a copy: the cached (shared) model stays where it is
        model = copy.deepcopy(model).to(dev)
    del rgb
    with torch.inference_mode():
        with autocast(dev, cfg.precision):  # the embedder's convolutions dominate the time
            if h * w > _TILED_PIXELS:
                z = model.fem.forward_tiled(x, tile_rows=max(16, 1_000_000 // w))
            else:
                z = model.fem.forward_inference(x)
        z = z.float()
        del x
        grid, rows, cols, seeds = model.place_seeds(z, n_segments, cfg.seed_layer)
        labels = cluster_pixels(z, seeds, grid, int(cfg.refine_steps), cfg.spatial_weight, cfg.assignment, rows,
                                cols, colour, cfg.colour_weight)
        del z  # the embedding is the largest buffer on big images
    labels = labels.to(torch.int32).cpu().numpy()
    if not cfg.enforce_connectivity:
        return labels
    return _connect(labels, n_segments, cfg.min_size_factor, cfg.max_size_factor)
