"""LNSNet inference: the pipeline from an image to connected superpixels, and :class:`LNSNetModel`.

:class:`LNSNetModel` gives LNSNet the model protocol of :mod:`clusterseg.models`
(``from_pretrained``, ``load``, ``save``, ``predict``, ``config``);
:func:`clusterseg.superpixels.superpixels` with ``method="lnsnet"`` is the
scikit-image-style wrapper over the same pipeline.

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and
       Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..nn.lnsnet import LNSNet
from ..nn.precision import autocast, resolve_precision
from .lnsnet import LNSNetConfig, lnsnet_from_payload, save_lnsnet_weights

__all__ = ["LNSNetModel", "predict_superpixels"]

_TILED_PIXELS = 4_000_000  # above this many pixels the embedder runs in row tiles


class LNSNetModel:
    """An LNSNet network with its inference options: the model protocol of :mod:`clusterseg.models`.

    Parameters
    ----------
    net : LNSNet, optional
        The network (default: untrained).
    config : LNSNetConfig, optional
        Inference options used by :meth:`predict` (default ``LNSNetConfig()``).

    Examples
    --------
    >>> model = LNSNetModel.from_pretrained("lnsnet-bsds500")
    >>> img = np.random.default_rng(0).random((32, 48, 3))
    >>> model.predict(img, 12).shape
    (32, 48)
    """

    def __init__(self, net: LNSNet | None = None, config: LNSNetConfig | None = None) -> None:
        self.net = (net if net is not None else LNSNet()).eval()
        self.config = config or LNSNetConfig()

    @classmethod
    def from_pretrained(cls, name: str = "lnsnet-bsds500", **options) -> LNSNetModel:
        """A fresh copy of a shipped LNSNet, by registry name; ``options`` set :attr:`config`."""
        from .registry import model_info, weights_path

        if model_info(name).loader != "clusterseg.models.lnsnet_model:LNSNetModel.load":
            raise ValueError(f"{name!r} is not an LNSNet model")
        return cls.load(weights_path(name), **options)

    @classmethod
    def load(cls, path: str | Path, **options) -> LNSNetModel:
        """An LNSNet weights file or training checkpoint; the inference options saved with it
        (:meth:`save`), then ``options``, set :attr:`config`."""
        from ..io.checkpoints import load_checkpoint

        payload = load_checkpoint(path)
        metadata = payload.get("metadata")
        saved = metadata.get("inference_config") if isinstance(metadata, dict) else None
        return cls(lnsnet_from_payload(payload, path), LNSNetConfig.with_options(None, **{**(saved or {}), **options}))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the weights and the inference options atomically (refuses to replace a file unless ``overwrite``)."""
        return save_lnsnet_weights(self.net, path, {"inference_config": dataclasses.asdict(self.config)},
                                   overwrite=overwrite)

    def predict(self, image: np.ndarray, n_segments: int = 200, *, channel_axis: int | None = -1,
                device: str | torch.device | None = None, **options) -> np.ndarray:
        """Superpixel labels of one image; ``options`` override :attr:`config` for this call."""
        from .._validation import check_n_segments, to_float_rgb

        cfg = LNSNetConfig.with_options(self.config, **options)
        rgb = to_float_rgb(image, channel_axis=channel_axis)
        n_segments = check_n_segments(n_segments, rgb.shape[0] * rgb.shape[1])
        return predict_superpixels(self.net, rgb, n_segments, device, cfg)


def predict_superpixels(model: LNSNet, rgb: np.ndarray, n_segments: int, device, cfg: LNSNetConfig) -> np.ndarray:
    """LNSNet superpixels of a float RGB image in [0, 1] (checked by the caller) with options ``cfg``."""
    from ..features import lab_xy_from_lab, rgb_to_lab
    from ..nn import lnsnet_kernels
    from ..nn.lnsnet_assignment import cluster_pixels

    h, w = rgb.shape[:2]
    dev = torch.device(device) if device is not None else torch.device("cpu")
    compiled = dev.type == "cpu" and lnsnet_kernels.available()
    lab = lnsnet_kernels.rgb_to_lab_tables(rgb) if compiled else rgb_to_lab(rgb)
    if compiled:  # channels-last in one pass, as the embedder reads it
        x = lnsnet_kernels.lab_xy_input(lab)
    else:
        x = torch.from_numpy(lab_xy_from_lab(lab)).to(dev)[None]
    # CIE-Lab for the colour term of the centre updates
    use_colour = cfg.refine_steps > 0 and cfg.colour_weight > 0
    colour = torch.from_numpy(lab).to(dev).permute(2, 0, 1)[None] if use_colour else None
    del lab
    if cfg.adapt_steps > 0:
        from ..contours import contour_map
        from .lnsnet import adapt_lnsnet

        model = copy.deepcopy(model).to(dev)
        bnd = torch.from_numpy(contour_map(rgb, cfg.contours)).to(dev)
        with torch.enable_grad():
            adapt_lnsnet(model, x, bnd, n_segments, cfg.adapt_steps, lr=cfg.adapt_lr)
    elif next(model.parameters()).device != dev:  # a copy: the cached (shared) model stays where it is
        model = copy.deepcopy(model).to(dev)
    del rgb
    with torch.inference_mode():
        if h * w > _TILED_PIXELS:
            # plain autocast would round the position channels too: bfloat16 only when asked for
            with autocast(dev, "float32" if cfg.precision == "auto" else cfg.precision):
                z = model.fem.forward_tiled(x, tile_rows=max(16, 1_000_000 // w)).float()
        else:
            bf16 = resolve_precision(cfg.precision, dev) == "bfloat16"
            z = model.fem.forward_inference(x, torch.bfloat16 if bf16 else torch.float32)
        del x
        grid, rows, cols, seeds = model.place_seeds(z, n_segments, cfg.seed_layer)
        labels = cluster_pixels(z, seeds, grid, int(cfg.refine_steps), cfg.spatial_weight, cfg.assignment, rows,
                                cols, colour, cfg.colour_weight)
        del z  # the embedding is the largest buffer on big images
    labels = labels.to(torch.int32).cpu().numpy()
    if not cfg.enforce_connectivity:
        return labels
    return _connect(labels, n_segments, cfg.min_size_factor, cfg.max_size_factor)


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
    from ..nn import lnsnet_kernels

    if lnsnet_kernels.available():
        return lnsnet_kernels.absorb_isolated_pixels(labels)
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
       neighbour (:func:`clusterseg.graph.connectivity.enforce_connectivity`).
    2. If fewer than ``count_range[0] * K`` segments remain (seeds that won no
       pixels, or whole small superpixels merged), the merge threshold is halved
       (down to 1/8 of it) and, if that is not enough, the largest segments are
       split in two along their longer axis.
    3. If more than ``count_range[1] * K`` segments remain, the smallest ones
       (exactly the excess) are merged in one more pass.
    """
    from ..graph.connectivity import enforce_connectivity

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
