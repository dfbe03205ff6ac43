"""The spatial-embedding instance segmentation model: network, input normalisation, inference.

:class:`SpatialEmbeddingModel` bundles a :class:`~clusterseg.nn.erfnet.BranchedERFNet`
with everything needed to use it on a new image: the input normalisation
(percentiles), the coordinate units, the clustering thresholds, tiled
inference for large images and test-time augmentation. It saves to and loads
from a plain checkpoint dict (``torch.load(weights_only=True)``).

References
----------
.. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
.. [2] M. Lalit, P. Tomancak, F. Jug, "EmbedSeg: Embedding-based instance
       segmentation for biomedical microscopy data", Medical Image Analysis
       81, 2022 (tiling, test-time augmentation, percentile normalisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import check_image, to_float_rgb
from ..features import image_modality, normalize_percentile
from ..nn.d4 import apply_d4, d4_transforms, invert_d4
from ..nn.erfnet import BranchedERFNet
from ..nn.precision import autocast
from ..io.checkpoints import CheckpointError, build_checked, load_checkpoint, model_checkpoint, save_checkpoint
from .instance_clustering import ClusteringParams, cluster_embeddings
from ..nn.spatial_embedding import DEFAULT_PIXEL_SIZE, add_coordinates, coordinate_grid, sigma_for_radius

__all__ = ["SpatialEmbeddingModel", "prepare_image", "d4_transforms"]

CHECKPOINT_FORMAT = "clusterseg.spatial_embedding"
#: Imaging modalities that may have their own clustering thresholds (:func:`image_modality`).
MODALITIES = ("grey", "colour")


def prepare_image(
    image: np.ndarray,
    *,
    channel_axis: int | None = -1,
    percentiles: tuple[float, float] = (1.0, 99.8),
    invert: bool | str = False,
    intensity_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Network input ``(3, H, W)`` float32: RGB (grey replicated, alpha dropped), percentile-normalised.

    ``intensity_range=(low, high)`` (in the [0, 1] units of
    :func:`~clusterseg._validation.to_float_rgb`) replaces the image's own
    percentiles, so that the chunks of a large image are normalised alike.

    ``invert=True`` flips intensities (``1 - x``) so that dark objects on a
    bright background (bright-field, H&E) look like fluorescence;
    ``invert="auto"`` does so when the background is bright (median
    normalised intensity above 0.5).
    """
    if invert not in (True, False, "auto"):
        raise ValueError(f"invert must be True, False or 'auto', got {invert!r}")
    check_image(image, channel_axis=channel_axis)
    rgb = to_float_rgb(image, channel_axis=channel_axis)
    if intensity_range is None:
        x = normalize_percentile(rgb, *percentiles).transpose(2, 0, 1)
    else:
        low, high = (float(v) for v in intensity_range)
        x = ((rgb - low) / max(high - low, 1e-6)).astype(np.float32).transpose(2, 0, 1)
    if invert is True or (invert == "auto" and float(np.median(x.mean(axis=0))) > 0.5):
        x = 1.0 - x
    return np.ascontiguousarray(x)


def _vector_map(k: int, flip: bool, device) -> torch.Tensor:
    """2x2 matrix taking an (x, y) displacement in the transformed frame to the original frame.

    Found by transforming the coordinate image itself, so no sign convention
    is hand-derived: the columns are the original-frame steps of one pixel
    along the transformed x and y axes.
    """
    coords = coordinate_grid(3, 3, pixel_size=1.0, device=device)[None]
    t = apply_d4(coords, k, flip)[0]
    return torch.stack([t[:, 0, 1] - t[:, 0, 0], t[:, 1, 0] - t[:, 0, 0]], dim=1)


@dataclasses.dataclass
class _Maps:
    offset: torch.Tensor  # (2, H, W) tanh(offset)
    sigma: torch.Tensor  # (n_sigma, H, W)
    seed: torch.Tensor  # (n_classes, H, W)


class SpatialEmbeddingModel(nn.Module):
    """Branched ERFNet predicting offsets, bandwidths and seed maps [1]_.

    Parameters
    ----------
    n_sigma : int
        Bandwidth channels: 1 (isotropic) or 2 (separate x / y).
    n_classes : int
        Seed maps (one per object class).
    width : float
        Channel multiplier of the ERFNet (1.0 = the paper's size).
    pixel_size : float
        Coordinate units per pixel.
    percentiles : tuple of float
        Input normalisation percentiles.
    clustering : ClusteringParams or dict, optional
        Default inference thresholds saved with the model.
    modality_clustering : dict, optional
        Thresholds for images of one imaging modality (``"grey"`` or
        ``"colour"``, :func:`~clusterseg.features.image_modality`), used
        instead of ``clustering`` for such images: a stained bright-field image
        gives less confident seeds than a fluorescence one.
    metadata : dict, optional
        Free-form provenance (training data, command, scores) saved with it.

    Shapes
    ------
    ``forward``: ``(B, 3, H, W) -> (B, 2 + n_sigma + n_classes, H, W)`` raw
    output (offsets before ``tanh``, raw sigma, seed logits).
    """

    def __init__(
        self,
        *,
        n_sigma: int = 2,
        n_classes: int = 1,
        width: float = 1.0,
        pixel_size: float = DEFAULT_PIXEL_SIZE,
        percentiles: tuple[float, float] = (1.0, 99.8),
        clustering: ClusteringParams | dict | None = None,
        modality_clustering: dict[str, ClusteringParams | dict] | None = None,
        metadata: dict | None = None,
    ) -> None:
        super().__init__()
        if n_sigma not in (1, 2):
            raise ValueError(f"n_sigma must be 1 or 2, got {n_sigma}")
        if int(n_classes) < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        self.n_sigma, self.n_classes, self.width = int(n_sigma), int(n_classes), float(width)
        self.pixel_size = float(pixel_size)
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))
        if isinstance(clustering, dict):
            clustering = ClusteringParams(**clustering)
        self.clustering = clustering or ClusteringParams()
        self.modality_clustering = {}
        for modality, params in (modality_clustering or {}).items():
            if modality not in MODALITIES:
                raise ValueError(f"modality_clustering keys must be in {MODALITIES}, got {modality!r}")
            self.modality_clustering[modality] = ClusteringParams(**params) if isinstance(params, dict) else params
        self.metadata = dict(metadata or {})
        self.net = BranchedERFNet((2 + self.n_sigma, self.n_classes), 3, width=self.width)
        self._init_output()

    def _init_output(self, sigma_bias: float = 1.0) -> None:
        # Paper's init: zero offsets, sigma bias 1 (s = e^10, about 5.7 px at
        # pixel_size 1/1024), so training starts from small round blobs.
        last = self.net.decoders[0].output_conv
        with torch.no_grad():
            last.weight[:, : 2 + self.n_sigma].zero_()
            last.bias[:2].zero_()
            last.bias[2 : 2 + self.n_sigma].fill_(sigma_bias)

    def init_bandwidth(self, radius: float) -> None:
        """Start training from Gaussians with ``phi = 0.5`` at ``radius`` pixels (the paper's: about 5.7).

        Resets the offset and bandwidth outputs to the paper's initialisation
        (zero weights) with this bandwidth as their bias, so an untrained network
        predicts it everywhere. Objects much larger than the initial Gaussian
        give the instance loss no gradient beyond it (``phi`` ~ 0 there), so
        :func:`~clusterseg.training.instances.suggest_config` matches it to the
        objects of the data.
        """
        self._init_output(sigma_for_radius(radius, self.pixel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw maps ``(B, 2 + n_sigma + n_classes, H, W)`` of a normalised ``(B, 3, H, W)`` batch."""
        if x.device.type == "cpu" and x.ndim == 4:
            # oneDNN's convolutions run 1.2-1.4x faster (training and inference, bf16 and float32)
            # on channels-last activations; the layout propagates through the network, and the
            # outputs equal the contiguous path's (float32: within 1e-6).
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # ------------------------------------------------------------------ I/O
    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-friendly): the model's configuration, as saved with it."""
        return {
            "n_sigma": self.n_sigma,
            "n_classes": self.n_classes,
            "width": self.width,
            "pixel_size": self.pixel_size,
            "percentiles": list(self.percentiles),
            "clustering": dataclasses.asdict(self.clustering),
            "modality_clustering": {k: dataclasses.asdict(v) for k, v in self.modality_clustering.items()},
        }

    def checkpoint(self) -> dict[str, Any]:
        """Plain dict holding the weights, the configuration and the metadata."""
        return model_checkpoint(CHECKPOINT_FORMAT, 1, self.config, self.state_dict(), self.metadata)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model to ``path`` atomically (refuses to replace a file unless ``overwrite``)."""
        return save_checkpoint(self.checkpoint(), path, overwrite=overwrite)

    @classmethod
    def from_checkpoint(cls, obj: dict[str, Any], *, source: str = "checkpoint") -> SpatialEmbeddingModel:
        """Rebuild a model from :meth:`checkpoint`'s dict."""
        if obj.get("format") != CHECKPOINT_FORMAT or "state_dict" not in obj or "config" not in obj:
            raise CheckpointError(f"{source} is not a clusterseg spatial-embedding model")
        config = dict(obj["config"])
        config["percentiles"] = tuple(config.get("percentiles", (1.0, 99.8)))
        return build_checked(lambda: cls(**config, metadata=obj.get("metadata")), obj["state_dict"], source).eval()

    @classmethod
    def from_pretrained(cls, name: str = "dsb2018-nuclei") -> SpatialEmbeddingModel:
        """A fresh (uncached, safe to fine-tune) copy of a shipped model, by registry name."""
        from .registry import model_info, weights_path

        if model_info(name).loader != "clusterseg.models.spatial_embedding:SpatialEmbeddingModel.load":
            raise ValueError(f"{name!r} is not a spatial-embedding model")
        return cls.load(weights_path(name))

    @classmethod
    def load(cls, path: str | Path) -> SpatialEmbeddingModel:
        """Load a model saved with :meth:`save` (or the ``model`` of a training checkpoint)."""
        obj = load_checkpoint(path)
        if "model" in obj and isinstance(obj["model"], dict):  # a training run's checkpoint
            obj = obj["model"]
        return cls.from_checkpoint(obj, source=str(path))

    # ------------------------------------------------------------ inference
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _tile_maps(self, x: torch.Tensor, tta: bool, precision: str = "float32") -> _Maps:
        """Averaged maps of one ``(3, h, w)`` tile (offsets in the original frame)."""
        transforms = d4_transforms() if tta and min(x.shape[-2:]) >= 2 else [(0, False)]
        acc = None
        for k, flip in transforms:
            with autocast(x.device, precision):
                raw = self(apply_d4(x[None], k, flip))[0].float()
            offset = torch.einsum("ij,jhw->ihw", _vector_map(k, flip, raw.device), torch.tanh(raw[:2]))
            sigma = raw[2 : 2 + self.n_sigma]
            if self.n_sigma == 2 and k % 2 == 1:  # x and y bandwidths swap under a quarter turn
                sigma = sigma.flip(0)
            seed = torch.sigmoid(raw[2 + self.n_sigma :])
            maps = [invert_d4(offset, k, flip), invert_d4(sigma, k, flip), invert_d4(seed, k, flip)]
            acc = maps if acc is None else [a + m for a, m in zip(acc, maps)]
        return _Maps(*(a / len(transforms) for a in acc))

    @staticmethod
    def _tiles(size: int, tile: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
        """(read_start, read_stop, keep_start, keep_stop) along one axis."""
        if size <= tile:
            yield 0, size, 0, size
            return
        step = tile - 2 * margin
        starts = list(range(0, size - tile, step)) + [size - tile]
        for n, start in enumerate(starts):
            keep_start = 0 if n == 0 else start + margin
            keep_stop = size if n == len(starts) - 1 else start + tile - margin
            if n + 1 < len(starts):
                keep_stop = min(keep_stop, starts[n + 1] + margin)
            yield start, start + tile, keep_start, keep_stop

    @torch.no_grad()
    def predict_maps(
        self,
        image: np.ndarray,
        *,
        channel_axis: int | None = -1,
        tta: bool = False,
        tile_size: int = 1024,
        tile_overlap: int = 64,
        precision: str = "auto",
        invert: bool | str = False,
        intensity_range: tuple[float, float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Dense maps of an image: ``embedding`` (2, H, W), ``sigma`` (n_sigma, H, W), ``seed`` (n_classes, H, W).

        Images larger than ``tile_size`` are processed in overlapping tiles;
        each tile keeps only its centre (``tile_overlap`` pixels from inner
        borders are discarded), and embeddings are expressed in the full
        image's coordinates, so objects crossing tile borders are clustered
        as one. Peak memory of the network is bounded by the tile size.
        ``precision="auto"`` runs the network under bfloat16 autocast where
        the hardware supports it natively (:mod:`clusterseg.nn.precision`),
        ``"float32"`` forces full precision. ``invert`` and ``intensity_range``: see
        :func:`prepare_image`.
        """
        x = torch.from_numpy(prepare_image(image, channel_axis=channel_axis, percentiles=self.percentiles,
                                           invert=invert, intensity_range=intensity_range))
        return self.predict_prepared(x, tta=tta, tile_size=tile_size, tile_overlap=tile_overlap,
                                     precision=precision)

    @torch.no_grad()
    def predict_prepared(
        self, x: torch.Tensor, *, tta: bool = False, tile_size: int = 1024, tile_overlap: int = 64,
        precision: str = "auto",
    ) -> dict[str, np.ndarray]:
        """:meth:`predict_maps` of an already normalised ``(3, H, W)`` input (see :func:`prepare_image`)."""
        if tile_size < 64 or tile_size % 8:
            raise ValueError(f"tile_size must be a multiple of 8 and >= 64, got {tile_size}")
        if not 0 <= 2 * tile_overlap < tile_size:
            raise ValueError(f"tile_overlap must be in [0, tile_size / 2), got {tile_overlap}")
        was_training = self.training
        self.eval()
        h, w = x.shape[-2:]
        offset = np.zeros((2, h, w), np.float32)
        sigma = np.zeros((self.n_sigma, h, w), np.float32)
        seed = np.zeros((self.n_classes, h, w), np.float32)
        try:
            for r0, r1, kr0, kr1 in self._tiles(h, tile_size, tile_overlap):
                for c0, c1, kc0, kc1 in self._tiles(w, tile_size, tile_overlap):
                    maps = self._tile_maps(x[:, r0:r1, c0:c1].to(self.device), tta, precision)
                    rows, cols = slice(kr0 - r0, kr1 - r0), slice(kc0 - c0, kc1 - c0)
                    offset[:, kr0:kr1, kc0:kc1] = maps.offset[:, rows, cols].cpu().numpy()
                    sigma[:, kr0:kr1, kc0:kc1] = maps.sigma[:, rows, cols].cpu().numpy()
                    seed[:, kr0:kr1, kc0:kc1] = maps.seed[:, rows, cols].cpu().numpy()
        finally:
            self.train(was_training)
        return {"embedding": add_coordinates(offset, pixel_size=self.pixel_size), "sigma": sigma, "seed": seed}

    def clustering_for(self, modality: str | None) -> ClusteringParams:
        """The clustering thresholds for images of ``modality`` (``None``: the general ones)."""
        if modality is not None and modality not in MODALITIES:
            raise ValueError(f"modality must be 'auto', None or one of {MODALITIES}, got {modality!r}")
        return self.modality_clustering.get(modality, self.clustering)

    def predict(self, image: np.ndarray, **options: Any) -> np.ndarray:
        """Instance labels of one image (the model protocol); :meth:`segment` also returns their scores."""
        return self.segment(image, **options)[0]

    def segment(
        self,
        image: np.ndarray,
        *,
        channel_axis: int | None = -1,
        tta: bool = False,
        tile_size: int = 1024,
        tile_overlap: int = 64,
        class_index: int = 0,
        precision: str = "auto",
        invert: bool | str = False,
        intensity_range: tuple[float, float] | None = None,
        modality: str | None = "auto",
        **clustering: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Instance labels ``(H, W)`` int32 and per-label scores of one image.

        ``clustering`` overrides fields of the model's
        :class:`~clusterseg.models.instance_clustering.ClusteringParams`: those
        of the image's modality (:meth:`clustering_for`; ``modality="auto"``
        detects it, ``"grey"`` / ``"colour"`` name it, ``None`` uses the
        model's general thresholds).
        """
        if not 0 <= class_index < self.n_classes:
            raise ValueError(f"class_index must be in [0, {self.n_classes}), got {class_index}")
        unknown = set(clustering) - {f.name for f in dataclasses.fields(ClusteringParams)}
        if unknown:
            raise TypeError(f"unknown clustering parameters: {sorted(unknown)}")
        if modality == "auto":
            modality = image_modality(image, channel_axis=channel_axis)
        params = dataclasses.replace(self.clustering_for(modality), **clustering)
        maps = self.predict_maps(image, channel_axis=channel_axis, tta=tta, tile_size=tile_size,
                                 tile_overlap=tile_overlap, precision=precision, invert=invert,
                                 intensity_range=intensity_range)
        return cluster_embeddings(maps["embedding"], maps["sigma"], maps["seed"][class_index], params)
