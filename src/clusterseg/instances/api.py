"""``clusterseg.instances``: instance segmentation of one image with a trained model.

Torch is imported on first call, so that ``import clusterseg`` stays light.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..models.spatial_embedding import SpatialEmbeddingModel

from ..models.registry import WEIGHTS_DIR, list_models, load_model, model_info

__all__ = ["InstanceResult", "instances", "load_instance_model", "PRETRAINED_MODELS"]

#: Models shipped inside the package: name -> weights file (from :func:`clusterseg.models.list_models`).
PRETRAINED_MODELS = {name: WEIGHTS_DIR / model_info(name).weights
                     for name in list_models(task="instances", kind="pretrained")}


@dataclasses.dataclass
class InstanceResult:
    """Output of :func:`instances`; unpacks as ``labels, scores = result``.

    Attributes
    ----------
    labels : ndarray of int32 (H, W)
        0 = background, objects 1..n.
    scores : ndarray of float (n + 1,)
        ``scores[l]`` = confidence (seed score) of object ``l``; ``scores[0]``
        is NaN.
    """

    labels: np.ndarray
    scores: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.labels, self.scores))

    @property
    def n_instances(self) -> int:
        return int(self.scores.size - 1)


def load_instance_model(model: str | Path | SpatialEmbeddingModel = "dsb2018-nuclei") -> SpatialEmbeddingModel:
    """Resolve a shipped model name, a checkpoint path or a model object.

    Loaded checkpoints are cached (keyed by path and modification time);
    do not modify the returned model in place, copy it first.
    """
    from ..models.spatial_embedding import SpatialEmbeddingModel

    if isinstance(model, SpatialEmbeddingModel):
        return model
    if not isinstance(model, (str, Path)):
        raise TypeError(f"model must be a name, a path or a SpatialEmbeddingModel, got {type(model).__name__}")
    path = PRETRAINED_MODELS.get(str(model), Path(model))
    if str(model) in PRETRAINED_MODELS and not path.is_file():
        raise FileNotFoundError(f"the shipped model {model!r} is missing from the installation ({path})")
    if not path.is_file():
        raise FileNotFoundError(
            f"model {str(model)!r} is neither a shipped model ({', '.join(PRETRAINED_MODELS)}) nor an existing file"
        )
    from ..io.checkpoints import CheckpointError

    loaded = load_model(path)
    if not isinstance(loaded, SpatialEmbeddingModel):
        raise CheckpointError(f"'{path}' holds a {type(loaded).__name__}, not a spatial-embedding model")
    return loaded


def instances(
    image: np.ndarray,
    model: str | Path | SpatialEmbeddingModel = "dsb2018-nuclei",
    *,
    channel_axis: int | None = -1,
    tta: bool = False,
    tile_size: int = 1024,
    tile_overlap: int = 64,
    device: str | None = None,
    precision: str = "auto",
    invert: bool | str = False,
    modality: str | None = "auto",
    **clustering: Any,
) -> InstanceResult:
    """Segment object instances with spatial embeddings and learned bandwidths.

    A branched ERFNet predicts, for every pixel, an offset to its object's
    centre, a clustering bandwidth and a seed score; objects are then grown
    from the highest seeds, each with its own Gaussian bandwidth, as in Neven
    et al. [1]_.

    Parameters
    ----------
    image : ndarray
        2-D greyscale or colour image (uint8, uint16 or float; RGBA alpha is
        dropped). Any size: large images are processed in overlapping tiles
        and objects crossing tile borders are clustered once.
    model : str, path or SpatialEmbeddingModel, optional
        A shipped model name (``"dsb2018-nuclei"``: nuclei in fluorescence
        and brightfield microscopy, trained on DSB2018), a checkpoint written
        by ``clusterseg train instances`` / :meth:`SpatialEmbeddingModel.save`,
        or a model object.
    channel_axis : int or None, optional
        Axis of the colour channels; ``None`` for greyscale.
    tta : bool, optional
        Average the network outputs over the 8 flips / quarter turns
        (offsets and bandwidths transformed back), about 8x slower.
    tile_size, tile_overlap : int, optional
        Tile side (multiple of 8) and the margin discarded at inner tile
        borders.
    device : str, optional
        ``"cpu"``, ``"cuda"``...; default: CUDA when available.
    precision : {"auto", "float32", "bfloat16"}, optional
        ``"auto"`` runs the network under bfloat16 autocast where the
        hardware supports it natively (CPUs with AVX512-BF16 or AMX, recent
        GPUs), about twice as fast, else in float32.
    invert : bool or "auto", optional
        Flip intensities before the network (dark objects on a bright
        background made to look like fluorescence); ``"auto"`` when the
        background is bright.
    modality : {"auto", "grey", "colour"} or None, optional
        Which of the model's clustering thresholds to use: a model may carry
        its own for grey (fluorescence) and colour (stained bright-field)
        images, tuned on validation images of each; ``"auto"`` detects the
        modality (:func:`~clusterseg.features.image_modality`), ``None`` uses
        the general thresholds.
    **clustering
        Overrides of the model's clustering thresholds: ``fg_threshold``,
        ``seed_threshold``, ``min_size``, ``min_unclustered`` (see
        :class:`~clusterseg.models.instance_clustering.ClusteringParams`).

    Returns
    -------
    InstanceResult
        ``labels`` (int32, 0 = background, no limit on the number of objects)
        and ``scores``; unpacks as ``labels, scores``.

    References
    ----------
    .. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
           segmentation by jointly optimizing spatial embeddings and
           clustering bandwidth", CVPR 2019.

    Examples
    --------
    >>> import numpy as np, clusterseg
    >>> from skimage.draw import disk
    >>> image = np.zeros((128, 128), np.uint8)
    >>> for r, c in [(30, 30), (30, 90), (90, 60)]:
    ...     image[disk((r, c), 12)] = 200
    >>> labels, scores = clusterseg.instances(image, channel_axis=None)
    >>> labels.shape, labels.dtype
    ((128, 128), dtype('int32'))
    """
    import torch

    net = load_instance_model(model)
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if net.device != target:  # a copy: the cached (shared) model stays where it is
        net = copy.deepcopy(net).to(target)
    labels, scores = net.segment(image, channel_axis=channel_axis, tta=tta, tile_size=tile_size,
                                 tile_overlap=tile_overlap, precision=precision, invert=invert,
                                 modality=modality, **clustering)
    return InstanceResult(labels, scores)
