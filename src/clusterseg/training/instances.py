"""Supervised training of spatial-embedding instance segmentation (Neven et al. [1]_).

Crops (half centred on a random object, half random) with random flips and
quarter turns, Adam with weight decay and the poly schedule
``lr * (1 - epoch / epochs) ** 0.9``, validation after every ``val_every``
epochs by the DSB accuracy ``TP / (TP + FP + FN)`` at IoU 0.5 of the full
pipeline (network + clustering), the best model kept, a CSV log, a
checkpoint after every epoch and exact resumption: crops are drawn from a
generator seeded by ``(seed, epoch, index)``, so an interrupted run resumed
from its last checkpoint sees the same data as an uninterrupted one.

After training, the clustering thresholds of the best model are tuned on the
validation images and saved with it.

References
----------
.. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
.. [2] M. Lalit, P. Tomancak, F. Jug, "EmbedSeg: Embedding-based instance
       segmentation for biomedical microscopy data", Medical Image Analysis
       81, 2022 (object-centred crops, percentile normalisation, D4
       augmentation).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..augment import augment_modality, resize_pair
from ..features import image_modality
from ..nn.d4 import apply_d4
from ..models.instance_clustering import ClusteringParams, cluster_embeddings
from ..instances.loss import SpatialEmbeddingLoss
from ..models.spatial_embedding import SpatialEmbeddingModel, prepare_image
from ..metrics.instances import dsb_score
from .._progress import progress_bar
from ..nn.precision import autocast, resolve_precision
from .runlog import TrainingDiverged, append_row, start_log
from ..io.checkpoints import check_resume_config, load_checkpoint, save_checkpoint

__all__ = ["InstanceTrainingConfig", "PreparedSample", "prepare_samples", "InstanceCrops", "suggest_config",
           "train_instances", "tune_clustering", "evaluate_dsb", "validation_score", "DEFAULT_CLUSTERING_GRID",
           "tune_modality_clustering", "MODALITY_CLUSTERING_GRID", "tune_model_clustering"]

#: Thresholds searched by :func:`tune_clustering` (96 combinations).
DEFAULT_CLUSTERING_GRID: dict[str, tuple] = {
    "fg_threshold": (0.3, 0.4, 0.5, 0.6),
    "seed_threshold": (0.6, 0.7, 0.8, 0.9),
    "min_size": (8, 16, 32),
    "min_unclustered": (0.3, 0.5),
}

#: Thresholds searched per imaging modality by :func:`tune_modality_clustering` (the others stay
#: the general ones: on 9 colour validation images the full grid over-fits).
MODALITY_CLUSTERING_GRID: dict[str, tuple] = {
    "fg_threshold": (0.3, 0.4, 0.5, 0.6),
    "seed_threshold": (0.6, 0.7, 0.8, 0.9),
}

LOG_FIELDS = ["epoch", "lr", "loss", "instance", "variance", "seed", "val_dsb50", "seconds"]


@dataclasses.dataclass
class InstanceTrainingConfig:
    """Hyper-parameters of :func:`train_instances` (paper defaults where they exist)."""

    epochs: int = 50
    crop: int = 256
    batch_size: int = 4
    samples_per_epoch: int | None = None  # default: one crop per training image
    lr: float = 5e-4
    weight_decay: float = 1e-4
    width: float = 0.5
    n_sigma: int = 2
    w_instance: float = 1.0
    w_var: float = 10.0
    w_seed: float = 1.0
    foreground_weight: float = 10.0
    object_crop_fraction: float = 0.5
    # 0 draws images uniformly; 1 gives every imaging modality (grey, colour) the same share of
    # crops; in between, a modality of n images gets a share proportional to n ** (1 - balance).
    modality_balance: float = 0.0
    augment: bool = True  # imaging-modality augmentation (clusterseg.augment.augment_modality)
    scale_range: tuple[float, float] = (0.5, 2.0)  # zoom factors drawn log-uniformly
    p_scale: float = 0.5  # probability of a zoomed crop
    precision: str = "auto"  # bfloat16 autocast where the hardware supports it, else float32
    initial_weights: str | None = None  # fine-tune a saved model (name or path) instead of starting afresh
    # Radius in pixels of the untrained network's Gaussians (phi = 0.5); None: the paper's bias (5.7 px).
    initial_bandwidth: float | None = None
    val_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.crop < 16 or self.crop % 8:
            raise ValueError(f"crop must be a multiple of 8 and >= 16, got {self.crop}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.object_crop_fraction <= 1:
            raise ValueError(f"object_crop_fraction must be in [0, 1], got {self.object_crop_fraction}")
        if not 0 <= self.modality_balance <= 1:
            raise ValueError(f"modality_balance must be in [0, 1], got {self.modality_balance}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")
        low, high = self.scale_range
        if not 0 < low <= 1 <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= 1 <= high, got {self.scale_range}")
        if self.initial_bandwidth is not None and not self.initial_bandwidth > 0:
            raise ValueError(f"initial_bandwidth must be > 0 pixels, got {self.initial_bandwidth}")
        if not 0 <= self.p_scale <= 1:
            raise ValueError(f"p_scale must be in [0, 1], got {self.p_scale}")
        resolve_precision(self.precision)


@dataclasses.dataclass
class PreparedSample:
    """A training image after normalisation: ``image`` (3, H, W) float32, ``labels`` (H, W) int32.

    ``classes`` (H, W) int8, when the data has several classes: 0 background,
    ``c`` the seed map ``c - 1`` of the object's class, -1 ignored (crowd).
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    centres: np.ndarray  # (K, 2) object centroids (row, col)
    classes: np.ndarray | None = None
    modality: str = "grey"  # clusterseg.datasets.image_modality of the original image


def n_seed_classes(samples: Any) -> int:
    """Seed maps a data set needs: ``len(samples.classes)`` for data with class maps, else 1."""
    return len(samples.classes) if callable(getattr(samples, "class_map", None)) else 1


def _class_map(classes: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.shape != shape or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"{name}: the class map must be an integer array of the labels' shape {shape}, "
                         f"got {classes.dtype} {classes.shape}")
    if classes.size and (classes.min() < -1 or classes.max() > 127):
        raise ValueError(f"{name}: class ids must lie in -1 (ignore)..127, got {classes.min()}..{classes.max()}")
    return classes.astype(np.int8)


def prepare_samples(samples: Sequence[Any], *, percentiles: tuple[float, float] = (1.0, 99.8)) -> list[PreparedSample]:
    """Normalise the images of ``(name, image, labels)`` samples and locate their objects.

    A data set with a ``class_map(i)`` method (e.g.
    :class:`~clusterseg.datasets.CityscapesInstances`) also gives every
    sample its class map, for one seed map per class.
    """
    class_map = getattr(samples, "class_map", None)
    out = []
    for i, sample in enumerate(samples):
        name, image, labels = sample[0], sample[1], np.asarray(sample[2])
        x = prepare_image(image, percentiles=percentiles)
        if labels.shape != x.shape[1:]:
            raise ValueError(f"{name}: labels {labels.shape} do not match image {x.shape[1:]}")
        ids = np.unique(labels)
        ids = ids[ids > 0]
        centres = np.array(ndimage.center_of_mass(np.ones_like(labels), labels, ids)).reshape(-1, 2)
        classes = None if not callable(class_map) else _class_map(class_map(i), labels.shape, name)
        out.append(PreparedSample(str(name), x, labels.astype(np.int32), centres, classes, image_modality(image)))
    return out


class InstanceCrops(torch.utils.data.Dataset):
    """Augmented training crops; item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``.

    Each item picks an image (a permutation of the images per epoch), then
    with probability ``object_crop_fraction`` a crop centred (with jitter) on
    a random object, else a uniformly random crop; images smaller than the
    crop are padded (image with its median, labels with background). With
    probability ``p_scale`` the window is zoomed by a factor drawn
    log-uniformly from ``scale_range``; then a random horizontal flip and
    quarter turn and, if ``augment``, an imaging-modality variant
    (:func:`clusterseg.augment.augment_modality`: stain rendering, inversion,
    colour, grey, gamma, contrast, blur, noise, percentiles).

    Items are ``(image (3, crop, crop), labels (crop, crop))``, or with class
    maps ``(image, (2, crop, crop))``: instance labels stacked on classes.
    """

    def __init__(self, samples: Sequence[PreparedSample], config: InstanceTrainingConfig) -> None:
        if not samples:
            raise ValueError("no training samples")
        self.samples = list(samples)
        self.config = config
        self.length = config.samples_per_epoch or len(self.samples)
        self.epoch = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        # The image order of an epoch, drawn once per epoch rather than per item.
        self._epoch = int(value)
        rng = np.random.default_rng([self.config.seed, self._epoch])
        if self.config.modality_balance == 0:
            self._order = rng.permutation(len(self.samples))
        else:
            self._order = rng.choice(len(self.samples), size=self.length, p=self.image_weights())

    def image_weights(self) -> np.ndarray:
        """Probability of drawing each image: a modality of ``n`` images gets ``n ** (1 - balance)`` in all."""
        modalities = [s.modality for s in self.samples]
        counts = {m: modalities.count(m) for m in set(modalities)}
        weights = np.array([counts[m] ** -self.config.modality_balance for m in modalities])
        return weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def _zoom(self, rng: np.random.Generator) -> float:
        low, high = self.config.scale_range
        if low == high == 1.0 or rng.random() >= self.config.p_scale:
            return 1.0
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        sample = self.samples[self._order[index % len(self._order)]]
        # A zoom z > 1 enlarges objects: read a window of crop / z pixels and resize it to the crop.
        window = max(8, int(round(cfg.crop / self._zoom(rng))))
        x, y = _random_window(sample, window, cfg.object_crop_fraction, rng)
        if window != cfg.crop:
            x, y = resize_pair(x, y, cfg.crop)
        flip = bool(rng.random() < 0.5)
        k = int(rng.integers(4))
        x = apply_d4(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), k, flip)
        y = apply_d4(torch.from_numpy(np.ascontiguousarray(y).astype(np.int64)), k, flip).contiguous()
        if cfg.augment:
            return torch.from_numpy(augment_modality(x.numpy(), rng)), y
        return x.contiguous(), y


def _random_window(
    sample: PreparedSample, size: int, object_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` window of a sample, centred (with jitter) on a random object with
    probability ``object_fraction``, else uniformly placed; images smaller than the window are
    padded (image with its median, labels with background). The labels are (size, size), or
    (2, size, size) with the class map stacked under them when the sample has one."""
    image = sample.image
    labels = sample.labels if sample.classes is None else np.stack([sample.labels, sample.classes.astype(np.int32)])
    h, w = labels.shape[-2:]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        image = np.pad(image, ((0, 0), (0, ph), (0, pw)), constant_values=float(np.median(image)))
        labels = np.pad(labels, [(0, 0)] * (labels.ndim - 2) + [(0, ph), (0, pw)])
        h, w = labels.shape[-2:]
    if len(sample.centres) and rng.random() < object_fraction:
        centre = sample.centres[rng.integers(len(sample.centres))] + rng.uniform(-size / 4, size / 4, 2)
        r0 = int(np.clip(round(centre[0] - size / 2), 0, h - size))
        c0 = int(np.clip(round(centre[1] - size / 2), 0, w - size))
    else:
        r0, c0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[:, r0 : r0 + size, c0 : c0 + size], labels[..., r0 : r0 + size, c0 : c0 + size]


#: Crops of 192 x 192 pixels that :func:`suggest_config` plans for (fewer when they are larger):
#: 20 minutes of training on 2 threads at width 0.5 with bfloat16 on rendered rosettes
#: (benchmarks/results/instances_new_domain.md). 8000 left the instance loss of those rosettes
#: barely moving; 20000 gave SBD 0.627 against 0.679 with 26000 (1 thread each).
CROP_BUDGET = 26000


def suggest_config(samples: Sequence[Any], **overrides: Any) -> tuple[InstanceTrainingConfig, str]:
    """Crop size and epochs derived from the data; returns the config and a line saying why.

    The crop is four times the median object length (its bounding-box
    diagonal), rounded up to a multiple of 8, clipped to [128, 512] and to
    the smallest image side, so that crops hold whole objects with context.
    The untrained network's Gaussians get a radius of a quarter of that
    length (``initial_bandwidth``; about the paper's 5.7 px for nuclei): with
    the paper's radius, objects several times larger (leaves, cells, cars)
    gave the instance loss no gradient beyond it, and a rendered-leaf data set
    sat on a flat loss for most of its epochs.
    The epochs spend :data:`CROP_BUDGET` crops of 192 x 192 pixels (scaled by
    the crop area), clipped to [10, 300] epochs of one crop per image, with
    about 20 validations in all.
    ``overrides`` (any :class:`InstanceTrainingConfig` field) win.
    """
    if not samples:
        raise ValueError("no training samples")
    lengths, sides = [], []
    # Statistics from at most 200 evenly spaced images: large data sets are read lazily.
    picked = np.unique(np.linspace(0, len(samples) - 1, min(len(samples), 200)).round().astype(int))
    for sample in (samples[int(i)] for i in picked):
        labels = np.asarray(sample[2])
        sides.append(min(labels.shape))
        for box in ndimage.find_objects(labels):
            if box is not None:
                lengths.append(math.hypot(box[0].stop - box[0].start, box[1].stop - box[1].start))
    length = float(np.median(lengths)) if lengths else 32.0
    crop = int(np.clip(math.ceil(4 * length / 8) * 8, 128, 512))
    crop = max(16, min(crop, min(sides) // 8 * 8))
    epochs = int(np.clip(round(CROP_BUDGET * (192 / crop) ** 2 / len(samples)), 10, 300))
    chosen = {"crop": crop, "epochs": epochs, "val_every": max(1, epochs // 20),
              "initial_bandwidth": round(length / 4, 1)}
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    reason = (f"median object length {length:.0f} px over {len(lengths)} objects -> crop {chosen['crop']}, "
              f"initial bandwidth {chosen['initial_bandwidth']} px; {len(samples)} images -> {chosen['epochs']} epochs")
    return InstanceTrainingConfig(**chosen), reason


def _predict_all(model: SpatialEmbeddingModel, samples: Sequence[PreparedSample]) -> list[dict[str, np.ndarray]]:
    """Dense maps of prepared (already normalised) samples: embedding, sigma and every seed map."""
    return [model.predict_prepared(torch.from_numpy(s.image)) for s in samples]


def _class_truth(sample: PreparedSample, class_index: int) -> np.ndarray:
    """The sample's objects of one class (all of them for single-class data)."""
    if sample.classes is None:
        return sample.labels
    return np.where(sample.classes == class_index + 1, sample.labels, 0)


def evaluate_dsb(
    maps: Sequence[dict[str, np.ndarray]], samples: Sequence[PreparedSample], params: ClusteringParams
) -> float:
    """DSB accuracy TP/(TP+FP+FN) at IoU 0.5, averaged over images (and over classes: each seed map
    is clustered and scored against the objects of its own class)."""
    if not samples:
        return float("nan")
    n_classes = 1 if samples[0].classes is None else int(maps[0]["seed"].shape[0])
    scores = []
    for c in range(n_classes):
        preds = [cluster_embeddings(m["embedding"], m["sigma"], m["seed"][c], params)[0] for m in maps]
        scores.append(dsb_score(preds, [_class_truth(s, c) for s in samples], iou_thresholds=[0.5]).score)
    return float(np.mean(scores))


#: Seed thresholds tried at every validation: early in training on a new domain the seeds stay
#: below the default 0.9 (rendered rosettes: at most 0.8 after 28 epochs), which would score 0.
VALIDATION_SEED_THRESHOLDS = (0.5, 0.7, 0.9)


def validation_score(model: SpatialEmbeddingModel, samples: Sequence[PreparedSample]) -> float:
    """Best DSB accuracy at IoU 0.5 over :data:`VALIDATION_SEED_THRESHOLDS` (the network runs once)."""
    maps = _predict_all(model, samples)
    return max(evaluate_dsb(maps, samples, dataclasses.replace(model.clustering, seed_threshold=t))
               for t in VALIDATION_SEED_THRESHOLDS)


def tune_clustering(
    model: SpatialEmbeddingModel,
    samples: Sequence[PreparedSample],
    grid: dict[str, Sequence[float]] | None = None,
) -> tuple[ClusteringParams, float]:
    """Grid-search the clustering thresholds on prepared validation samples.

    Returns the best :class:`ClusteringParams` and its mean DSB accuracy at
    IoU 0.5.
    """
    return _grid_search(_predict_all(model, samples), samples, model.clustering, grid or DEFAULT_CLUSTERING_GRID)


def _grid_search(maps, samples, base: ClusteringParams, grid: dict[str, Sequence[float]]):
    """The best ``base`` with ``grid``'s values and its mean DSB accuracy at IoU 0.5."""
    best, best_score = base, -1.0
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dataclasses.replace(base, **dict(zip(keys, values)))
        score = evaluate_dsb(maps, samples, params)
        if score > best_score:
            best, best_score = params, score
    return best, best_score


def tune_modality_clustering(
    model: SpatialEmbeddingModel,
    samples: Sequence[PreparedSample],
    grid: dict[str, Sequence[float]] | None = None,
    *,
    min_images: int = 5,
) -> dict[str, tuple[ClusteringParams, float]]:
    """Clustering thresholds of their own for each imaging modality of mixed validation images.

    A stained bright-field image gives the network less confident seeds and
    foreground than a fluorescence one, so one set of thresholds cannot suit
    both. When ``samples`` hold more than one modality
    (:func:`~clusterseg.features.image_modality`), each modality with at
    least ``min_images`` images gets ``model.clustering`` with the ``grid``
    values (default :data:`MODALITY_CLUSTERING_GRID`) that score best on its
    images, if they beat ``model.clustering`` there.

    Returns
    -------
    dict
        ``modality -> (params, DSB accuracy at IoU 0.5 on its images)``, for
        :attr:`SpatialEmbeddingModel.modality_clustering`.
    """
    if len({s.modality for s in samples}) < 2:
        return {}
    return _per_modality_search(_predict_all(model, samples), samples, model.clustering,
                                grid or MODALITY_CLUSTERING_GRID, min_images)


def _per_modality_search(maps, samples, base: ClusteringParams, grid, min_images: int = 5) -> dict:
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(sample.modality, []).append(i)
    tuned = {}
    for modality, index in groups.items():
        if len(groups) < 2 or len(index) < min_images:
            continue
        group_maps, group = [maps[i] for i in index], [samples[i] for i in index]
        params, score = _grid_search(group_maps, group, base, grid)
        if score > evaluate_dsb(group_maps, group, base):
            tuned[modality] = (params, score)
    return tuned


def _start_from(model: SpatialEmbeddingModel, weights: str) -> None:
    """Fine-tuning: copy the weights of a saved model of the same architecture."""
    from ..instances.api import load_instance_model

    source = load_instance_model(weights)
    if (source.n_sigma, source.width, source.n_classes) != (model.n_sigma, model.width, model.n_classes):
        raise ValueError(f"initial_weights {weights!r} has n_sigma {source.n_sigma}, width {source.width}, "
                         f"{source.n_classes} classes; the config asks for {model.n_sigma}, {model.width}, "
                         f"{model.n_classes}")
    model.load_state_dict(source.state_dict())


def _training_state(model, optimizer, epoch, best_score, config, history) -> dict[str, Any]:
    # The torch RNG drives dropout: saving it makes a resumed run identical to an uninterrupted one.
    return {"model": model.checkpoint(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "best_score": best_score, "config": dataclasses.asdict(config), "history": history,
            "torch_rng": torch.get_rng_state()}


def train_instances(
    train: Sequence[Any],
    val: Sequence[Any],
    out_dir: str | Path,
    config: InstanceTrainingConfig | None = None,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    metadata: dict | None = None,
) -> Path:
    """Train a :class:`~clusterseg.models.spatial_embedding.SpatialEmbeddingModel`.

    Parameters
    ----------
    train, val : sequence of samples
        ``(name, image, labels)`` triples (e.g.
        :class:`~clusterseg.datasets.InstanceFolder`); ``val`` may be empty
        (then the last epoch's model is kept and thresholds are not tuned).
    out_dir : path-like
        Run folder: ``last.pt`` (after every epoch; resumable), ``best.pt``
        (the model with the best validation score, loadable with
        ``clusterseg.instances(..., model=path)``) and ``log.csv``.
    config : InstanceTrainingConfig
        Hyper-parameters.
    resume : bool
        Continue from ``out_dir/last.pt``; the hyper-parameters must match.
    device : str, optional
        Default: CUDA when available, else CPU.
    progress : bool
        Show a progress bar with ETA.
    metadata : dict, optional
        Saved with the best model.

    Returns
    -------
    Path
        ``out_dir/best.pt``.
    """
    config = config or InstanceTrainingConfig()
    out_dir = Path(out_dir)
    last_path, best_path, log_path = out_dir / "last.pt", out_dir / "best.pt", out_dir / "log.csv"
    if not resume and (last_path.exists() or best_path.exists()):
        raise FileExistsError(f"{out_dir} already holds a run; pass resume=True to continue it or choose another folder")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_s = prepare_samples(train)
    val_s = prepare_samples(val)
    if not any(len(s.centres) for s in train_s):
        raise ValueError("the training labels contain no objects at all")

    torch.manual_seed(config.seed)
    model = SpatialEmbeddingModel(n_sigma=config.n_sigma, width=config.width, n_classes=n_seed_classes(train),
                                  metadata=metadata).to(device)
    if config.initial_weights is not None:
        _start_from(model, config.initial_weights)
    elif config.initial_bandwidth is not None:
        model.init_bandwidth(config.initial_bandwidth)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start_epoch, best_score, history = 0, -math.inf, []
    if resume and last_path.exists():
        start_epoch, best_score, history = _resume(last_path, model, optimizer, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_log(log_path, LOG_FIELDS, key="epoch", keep_below=start_epoch + 1 if start_epoch else None)

    criterion = SpatialEmbeddingLoss(config.n_sigma, w_instance=config.w_instance, w_var=config.w_var,
                                     w_seed=config.w_seed, foreground_weight=config.foreground_weight,
                                     pixel_size=model.pixel_size)
    crops = InstanceCrops(train_s, config)
    steps_per_epoch = math.ceil(len(crops) / config.batch_size)
    bar = task = None
    if progress:
        bar = progress_bar()
        bar.start()
        task = bar.add_task("training", total=(config.epochs - start_epoch) * steps_per_epoch)
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            lr = config.lr * (1 - epoch / config.epochs) ** 0.9
            for group in optimizer.param_groups:
                group["lr"] = lr
            crops.epoch = epoch
            report = None if bar is None else functools.partial(bar.update, task, advance=1)
            sums = _train_epoch(model, crops, optimizer, criterion, config, device, epoch, last_path, report)
            val_score = float("nan")
            is_last = epoch + 1 == config.epochs
            if val_s and ((epoch + 1) % config.val_every == 0 or is_last):
                val_score = validation_score(model, val_s)
            # On a tie the later, longer-trained model wins.
            improved = (val_s and val_score >= best_score) or (not val_s and is_last)
            if improved:
                best_score = val_score if val_s else best_score
                model.metadata.update({"epoch": epoch + 1, "val_dsb50": val_score})
                save_checkpoint(model.checkpoint(), best_path)
            history.append({"epoch": epoch + 1, "val_dsb50": val_score})
            append_row(log_path, [epoch + 1, f"{lr:.6g}", *(f"{v:.6g}" for v in sums), f"{val_score:.4f}",
                                  f"{time.perf_counter() - t0:.1f}"])
            save_checkpoint(_training_state(model, optimizer, epoch + 1, best_score, config, history), last_path)
    finally:
        if bar is not None:
            bar.stop()
    if val_s and best_path.exists():
        _tune_best(best_path, val_s, device)
    return best_path


def _resume(last_path: Path, model, optimizer, config: InstanceTrainingConfig) -> tuple[int, float, list]:
    """Restore model, optimiser and RNG from ``last.pt``; return (epoch, best score, history)."""
    state = load_checkpoint(last_path, required_keys=("model", "optimizer", "epoch", "config"))
    check_resume_config(state["config"], dataclasses.asdict(config), last_path, ignore=("epochs", "val_every", "precision"))
    model.load_state_dict(SpatialEmbeddingModel.from_checkpoint(state["model"]).state_dict())
    optimizer.load_state_dict(state["optimizer"])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"]), float(state["best_score"]), list(state.get("history", []))


def _train_epoch(model, crops, optimizer, criterion, config: InstanceTrainingConfig, device, epoch: int,
                 last_path: Path, report) -> np.ndarray:
    """One pass over the epoch's crops; returns the mean loss terms (total, instance, var, seed)."""
    loader = torch.utils.data.DataLoader(crops, batch_size=config.batch_size, shuffle=False)
    model.train()
    sums = np.zeros(4)
    for x, y in loader:
        with autocast(device, config.precision):
            raw = model(x.to(device))
        y = y.to(device)
        terms = criterion(raw.float(), *((y[:, 0], y[:, 1]) if y.ndim == 4 else (y,)))
        if not torch.isfinite(terms.total):
            raise TrainingDiverged(f"non-finite loss at epoch {epoch + 1}; the last checkpoint {last_path} "
                                   "is intact: start a new run with a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        sums += [float(t.detach()) * len(x) for t in terms]
        if report is not None:
            report(description=f"epoch {epoch + 1}/{config.epochs} loss {float(terms.total.detach()):.3f}")
    return sums / len(crops)


def tune_model_clustering(model: SpatialEmbeddingModel, samples: Sequence[PreparedSample]) -> SpatialEmbeddingModel:
    """Set a model's clustering thresholds from prepared validation samples, in place.

    The general thresholds are searched over :data:`DEFAULT_CLUSTERING_GRID`,
    then, on mixed data, each imaging modality's over
    :data:`MODALITY_CLUSTERING_GRID` (:func:`tune_modality_clustering`); the
    network runs once. The validation scores go to ``model.metadata``.
    """
    maps = _predict_all(model, samples)
    params, score = _grid_search(maps, samples, model.clustering, DEFAULT_CLUSTERING_GRID)
    model.clustering = params
    model.metadata.update({"val_dsb50_tuned": score})
    per_modality = _per_modality_search(maps, samples, params, MODALITY_CLUSTERING_GRID)
    model.modality_clustering = {modality: p for modality, (p, _) in per_modality.items()}
    model.metadata.update({f"val_dsb50_tuned_{modality}": s for modality, (_, s) in per_modality.items()})
    return model


def _tune_best(best_path: Path, val_samples, device) -> None:
    """Tune the clustering thresholds of the best model on the validation images and save them with it."""
    best = tune_model_clustering(SpatialEmbeddingModel.load(best_path).to(device), val_samples)
    save_checkpoint(best.checkpoint(), best_path)
