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

from pathlib import Path

import numpy as np
import torch

from clusterseg.io.checkpoints import CheckpointError
from clusterseg.models.lnsnet import LNSNetConfig
from clusterseg.models.lnsnet_model import LNSNetModel, predict_superpixels
from clusterseg.models.registry import WEIGHTS_DIR, model_info
from clusterseg.models.registry import load_model as registry_load

__all__ = ["lnsnet_superpixels", "default_weights_path", "load_model"]

_DEFAULT_WEIGHTS = WEIGHTS_DIR / model_info("lnsnet-bsds500").weights
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
    weights : None, path, LNSNet or LNSNetModel
        ``None`` loads the shipped weights; a path loads a weights file or a
        training checkpoint; a network (or a model's ``.net``) is used as is.

    Raises
    ------
    FileNotFoundError
        If the weights file does not exist.
    """
    from clusterseg.nn.lnsnet import LNSNet

    if isinstance(weights, LNSNet):
        return weights.eval()
    if isinstance(weights, LNSNetModel):
        return weights.net.eval()
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
    if not isinstance(model, LNSNetModel):
        raise CheckpointError(f"'{path}' holds a {type(model).__name__}, not LNSNet weights")
    return model.net


def lnsnet_superpixels(
    image: np.ndarray,
    n_segments: int = 200,
    *,
    weights=None,
    config: LNSNetConfig | None = None,
    device: str | torch.device | None = None,
    channel_axis: int | None = -1,
    num_threads: int | None = None,
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
    weights : None, path, LNSNet or LNSNetModel
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


#: The inference pipeline lives with the model (:mod:`clusterseg.models.lnsnet_model`); this
#: module-level name is what :func:`lnsnet_superpixels` calls.
_run = predict_superpixels
