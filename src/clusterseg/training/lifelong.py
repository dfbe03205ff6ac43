"""Lifelong (one image after another) training of LNSNet (Zhu et al. [1]_).

One model and one Adam optimiser are carried through a stream of images. Each
image is learned for ``iters_feature`` iterations with the seed estimation
layer frozen (feature embedder and reconstruction head learn from the
range-limited clustering loss + ``beta`` x the GBL-rescaled reconstruction
loss, with GAL rescaling the embedding gradients), then ``iters_seed``
iterations with everything but the seed layer frozen. The GAL memory (a model
buffer) is updated after every image.

After every image a checkpoint is written atomically (model, optimiser, GAL
memory, index of the next image, RNG state and the image list), so
``resume=True`` continues exactly where an interrupted run stopped; a CSV log
holds the losses of every image.

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
import dataclasses
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from clusterseg._config import OptionsMixin
from clusterseg._progress import progress_bar
from clusterseg._validation import check_nonnegative
from clusterseg.io.read import IMAGE_EXTENSIONS
from clusterseg.features import lab_xy_features
from clusterseg.contours import contour_map
from clusterseg.io.checkpoints import check_resume_config, load_checkpoint, save_checkpoint
from clusterseg.models.lnsnet import adapt_lnsnet, load_lnsnet, save_lnsnet_weights  # re-exported: old import path
from clusterseg.nn.lnsnet import LNSNet
from clusterseg.nn.lnsnet_objective import (
    DEFAULT_COMPACTNESS,
    DEFAULT_HOMOGENEITY_WEIGHT,
    lnsnet_losses,
    range_radius,
    set_phase,
)
from clusterseg.training.runlog import TrainingDiverged, append_row, start_log

__all__ = ["LNSNetTrainingConfig", "train_lnsnet", "lnsnet_losses", "adapt_lnsnet", "list_images", "save_lnsnet_weights", "load_lnsnet"]

CHECKPOINT_FORMAT = "clusterseg.lnsnet.train/1"
CSV_FIELDS = [
    "index", "image", "height", "width", "n_segments", "loss_cluster", "loss_reg",
    "loss_recon", "loss_seed", "loss_homogeneity", "seed_shift", "gal_scale_mean", "seconds",
]


def list_images(images: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image files of a directory (sorted by name) or the given paths, checked to exist."""
    if isinstance(images, (str, Path)):
        root = Path(images)
        if root.is_dir():
            paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            paths = [root]
    else:
        paths = [Path(p) for p in images]
    if not paths:
        raise ValueError(f"no images found in {images}")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    return paths


def _load_rgb(path: Path) -> np.ndarray:
    from clusterseg._validation import to_float_rgb
    from clusterseg.io import read_image

    return to_float_rgb(read_image(path))


def _random_window(shape: tuple[int, int], crop: int | None, rng: np.random.Generator) -> tuple[slice, slice]:
    h, w = shape
    if crop is None:
        return slice(0, h), slice(0, w)
    ch, cw = min(h, crop), min(w, crop)
    r0 = int(rng.integers(0, h - ch + 1))
    c0 = int(rng.integers(0, w - cw + 1))
    return slice(r0, r0 + ch), slice(c0, c0 + cw)


def _check_stream_options(n_segments, crop, lr: float, paths: Sequence[Path]) -> None:
    """Refuse bad training options before a run folder is created (all of them, with their names)."""
    from clusterseg.io.read import image_size  # header only: no image is decoded here

    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 16):
        raise ValueError(f"crop must be None (whole images) or an integer >= 16 pixels, got {crop!r}")
    low, high = (n_segments, n_segments) if isinstance(n_segments, (int, np.integer)) else tuple(n_segments)
    if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in (low, high)):
        raise ValueError(f"n_segments must be an integer or a (k_min, k_max) pair of integers, got {n_segments!r}")
    if not 1 <= low <= high:
        raise ValueError(f"need 1 <= k_min <= k_max superpixels, got k_min={low}, k_max={high}")
    # K counts superpixels of the whole image (scaled by the crop area), so the smallest image bounds it.
    smallest = min(((image_size(p), p) for p in paths), key=lambda item: item[0][0] * item[0][1])
    (h, w), path = smallest
    if high > h * w // 4:
        raise ValueError(f"k_max={high} superpixels is too many for the image '{path}' ({h}x{w}): at most "
                         f"{h * w // 4}, i.e. superpixels of at least 4 pixels")


def _sample_k(rng: np.random.Generator, k_range: tuple[int, int] | int, area_ratio: float) -> int:
    if isinstance(k_range, (int, np.integer)):
        k = float(k_range)
    else:
        lo, hi = k_range
        k = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return max(4, int(round(k * area_ratio)))


@dataclass(frozen=True)
class LNSNetTrainingConfig(OptionsMixin):
    """Hyper-parameters of :func:`train_lnsnet` (the one source of their defaults; the CLI reads them).

    Attributes
    ----------
    contours : {"sobel", "canny"} or directory
        Contour maps ``B`` for GBL; a directory holds one map per image, named
        like the image (1 = edge).
    iters_feature, iters_seed : int
        Per-image schedule (paper: 40 + 10): embedder iterations with the seed
        layer frozen, then seed-layer iterations with the embedder frozen.
    lr : float
        Adam learning rate (paper: 3e-4).
    beta, phi, n_range : float, float, int
        Loss weights and range mask size (paper: 10, 1, 9).
    reg_weight, seed_weight : float
        Weights of the range regulariser (Eq. 17) and of the seed-centroid loss.
        The regulariser is off by default: with the local (3x3-cell) assignment
        used at inference, seeds outside the range are never candidates, so
        their mass is irrelevant; enabling it widens the training window to
        5x5 cells (about 1.5x slower per iteration).
    gal, gbl, seed_layer : bool
        Ablation switches (all on = full LNSNet).
    gal_momentum, gbl_eps : float
        GAL memory momentum ``lambda`` (Eq. 10) and GBL threshold ``epsilon`` (Eq. 12).
    homogeneity_weight, compactness, cluster_weight : float
        Weights of the homogeneity loss, of position against colour inside it,
        and of the clustering loss (see :func:`lnsnet_losses`). ``0, -, 1`` is
        the paper's objective; the default adds the homogeneity loss, which
        measured better on BSDS500 (docs/lnsnet_training.md).
    seed_window : float
        Seed features from the mean embedding over a box of this many grid
        cells around each seed (0: one point, as in the paper; the default 1
        measured better); stored with the weights so that inference reads seeds
        the way training did.
    max_loss : float
        A total loss above this value stops training like a non-finite one
        (healthy totals are about 0.5-3), so a run that blows up keeps its
        last good checkpoint.
    n_segments : int or (int, int)
        Number of seeds, or a range from which ``K`` is drawn log-uniformly per
        image (as superpixel count of the *full* image; it is scaled by the crop
        area so the superpixel size is what the range says).
    crop : int or None
        Train on one random ``crop x crop`` window per image (``None``: whole image).
    seed : int
        Seed of the per-image random generators (crop, K) and of the initial weights.
    """

    contours: str = "sobel"
    iters_feature: int = 40
    iters_seed: int = 10
    lr: float = 3e-4
    beta: float = 10.0
    phi: float = 1.0
    n_range: int = 9
    reg_weight: float = 0.0
    seed_weight: float = 1.0
    gal: bool = True
    gbl: bool = True
    seed_layer: bool = True
    gal_momentum: float = 0.5
    gbl_eps: float = 0.7
    homogeneity_weight: float = DEFAULT_HOMOGENEITY_WEIGHT
    compactness: float = DEFAULT_COMPACTNESS
    cluster_weight: float = 1.0
    seed_window: float = 1.0
    max_loss: float = 1e3
    n_segments: int | tuple[int, int] = (100, 1000)
    crop: int | None = 112
    seed: int = 0

    _what = "LNSNet training"

    def __post_init__(self) -> None:
        if isinstance(self.n_segments, list):  # a frozen config must stay hashable
            object.__setattr__(self, "n_segments", tuple(self.n_segments))
        range_radius(self.n_range)
        if not self.max_loss > 0:
            raise ValueError(f"max_loss must be > 0, got {self.max_loss}")
        for name in ("homogeneity_weight", "compactness", "cluster_weight", "seed_window"):
            check_nonnegative(getattr(self, name), name)
        if self.iters_feature < 0 or self.iters_seed < 0 or self.iters_feature + self.iters_seed == 0:
            raise ValueError("iters_feature and iters_seed must be >= 0 and not both 0")
        c = self.contours
        if isinstance(c, str) and c not in ("sobel", "canny") and not Path(c).is_dir():
            raise ValueError(f"contours must be 'sobel', 'canny' or a directory, got {c!r}")

    def run_record(self) -> dict:
        """The run's config.json / checkpoint record (the layout resume compares against)."""
        record = dataclasses.asdict(self)
        del record["max_loss"]  # a safety limit, not a setting of the run
        record["contours"] = str(self.contours)
        record["n_segments"] = list(self.n_segments) if isinstance(self.n_segments, tuple) else self.n_segments
        record["arch"] = {"max_shift": 0.5, "alpha": 1.0, "seed_window": record.pop("seed_window")}
        return record


def train_lnsnet(
    images: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    config: LNSNetTrainingConfig | None = None,
    max_images: int | None = None,
    resume: bool = False,
    threads: int | None = None,
    progress: bool = True,
    weights_name: str = "lnsnet_weights.pt",
    callback=None,
    **options,
) -> Path:
    """Train LNSNet on a stream of images, one at a time (lifelong learning).

    Parameters
    ----------
    images : directory, path or sequence of paths
        Training images, learned in (sorted) order.
    out_dir : path
        Run directory: ``checkpoint.pt`` (after every image), ``log.csv``,
        ``config.json`` and the final weights ``weights_name``.
    config : LNSNetTrainingConfig, optional
        Hyper-parameters (default ``LNSNetTrainingConfig()``).
    max_images : int, optional
        Use only the first ``max_images`` images.
    resume : bool
        Continue the run in ``out_dir`` from its checkpoint. Without it an
        existing checkpoint is an error (nothing is overwritten).
    threads : int, optional
        ``torch.set_num_threads`` for this run.
    progress : bool
        Show a progress bar with ETA.
    weights_name : str
        File name of the final weights in ``out_dir``.
    callback : callable, optional
        ``callback(index, model)`` after every image (e.g. for forgetting studies).
    **options
        Any :class:`LNSNetTrainingConfig` field, overriding ``config``.

    Returns
    -------
    path : Path
        The final weights file.
    """
    if threads is not None:
        torch.set_num_threads(int(threads))
    cfg = LNSNetTrainingConfig.with_options(config, **options)
    paths = list_images(images)
    if max_images is not None:
        paths = paths[: int(max_images)]
    _check_stream_options(cfg.n_segments, cfg.crop, cfg.lr, paths)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out_dir / "checkpoint.pt", out_dir / "log.csv"
    names = [p.name for p in paths]
    record = cfg.run_record()
    torch.manual_seed(cfg.seed)
    model = LNSNet(gal_momentum=cfg.gal_momentum, gbl_eps=cfg.gbl_eps, seed_window=cfg.seed_window)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = _resume_state(ckpt_path, resume, model, opt, names, record, out_dir)
    (out_dir / "config.json").write_text(json.dumps(record, indent=2))
    start_log(log_path, CSV_FIELDS, key="index", keep_below=start or None)
    model.train()
    bar = None
    if progress and start < len(paths):
        bar = progress_bar()
        bar.start()
        task = bar.add_task("LNSNet", total=len(paths), completed=start)
    try:
        for index in range(start, len(paths)):
            t0 = time.perf_counter()
            x, bnd, k = _training_sample(paths[index], cfg, index)
            rec = _learn_image(model, opt, x, bnd, k, cfg, f"image {index} ({paths[index].name})", out_dir)
            gal_scale = _finish_image(model, cfg)
            append_row(log_path, [index, paths[index].name, x.shape[2], x.shape[3], k,
                                  *(f"{rec[key]:.6g}" for key in ("cluster", "reg", "recon", "seed", "homogeneity")),
                                  f"{rec['shift']:.4f}", f"{gal_scale:.4f}", f"{time.perf_counter() - t0:.2f}"])
            save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(),
                             "next_index": index + 1, "images": names, "config": record,
                             "torch_rng": torch.get_rng_state()}, ckpt_path)
            if callback is not None:
                callback(index, model)
                model.train()
            if bar is not None:
                bar.update(task, advance=1, description=f"LNSNet {paths[index].name} K={k} "
                                                        f"Lc={rec['cluster']:.3f} Lr={rec['recon']:.3f}")
    finally:
        if bar is not None:
            bar.stop()
    model.eval()
    return save_lnsnet_weights(model, out_dir / weights_name, extra={"images": len(paths), "config": json.dumps(record)})


def _resume_state(ckpt_path: Path, resume: bool, model: LNSNet, opt, names: list[str], record: dict,
                  out_dir: Path) -> int:
    """Load the run's checkpoint into ``model``/``opt`` when resuming; return the next image index."""
    if not ckpt_path.exists():
        if resume:
            raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist")
        return 0
    if not resume:
        raise FileExistsError(f"{ckpt_path} exists; pass resume=True (--resume) to continue that run")
    ck = load_checkpoint(ckpt_path, required_keys=("model", "optimizer", "next_index", "images"))
    if list(ck["images"]) != names[: len(ck["images"])] and list(ck["images"]) != names:
        raise ValueError(f"the images differ from the ones of the run in {out_dir}; cannot resume")
    if "config" in ck:
        check_resume_config(dict(ck["config"]), json.loads(json.dumps(record)), ckpt_path)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if "torch_rng" in ck:
        torch.set_rng_state(ck["torch_rng"])
    return int(ck["next_index"])


def _training_sample(path: Path, cfg: LNSNetTrainingConfig, index: int):
    """Lab+xy input (1, 5, h, w), contour map and K of one image's random window."""
    rng = np.random.default_rng([cfg.seed, index])
    rgb_full = _load_rgb(path)
    full_area = rgb_full.shape[0] * rgb_full.shape[1]
    bnd_full = contour_map(rgb_full, cfg.contours, stem=path.stem)
    window = _random_window(rgb_full.shape[:2], cfg.crop, rng)
    rgb = np.ascontiguousarray(rgb_full[window])
    x = torch.from_numpy(lab_xy_features(rgb))[None]
    k = _sample_k(rng, cfg.n_segments, rgb.shape[0] * rgb.shape[1] / full_area)
    return x, torch.from_numpy(np.ascontiguousarray(bnd_full[window])), k


_PHASE_LOGS = {"feature": ("cluster", "reg", "recon", "homogeneity", "shift"), "seed": ("seed", "shift")}


def _learn_image(model: LNSNet, opt, x, bnd, k: int, cfg: LNSNetTrainingConfig, where: str, out_dir: Path) -> dict:
    """The per-image schedule: feature phase, then seed phase; returns the last losses of each."""
    rec = {"cluster": 0.0, "reg": 0.0, "recon": 0.0, "seed": 0.0, "homogeneity": 0.0, "shift": 0.0}
    for phase, iters in (("feature", cfg.iters_feature), ("seed", cfg.iters_seed if cfg.seed_layer else 0)):
        if iters == 0:
            continue
        set_phase(model, phase)
        z_frozen = None
        if phase == "seed":
            with torch.no_grad():
                z_frozen = model.fem(x)
        for it in range(iters):
            losses = lnsnet_losses(model, x, bnd if cfg.gbl else None, k, phase=phase, beta=cfg.beta, phi=cfg.phi,
                                   n_range=cfg.n_range, reg_weight=cfg.reg_weight, seed_weight=cfg.seed_weight,
                                   gal=cfg.gal, gbl=cfg.gbl, seed_layer=cfg.seed_layer,
                                   homogeneity_weight=cfg.homogeneity_weight, compactness=cfg.compactness,
                                   cluster_weight=cfg.cluster_weight, z=z_frozen)
            _check_loss(float(losses["total"].detach()), cfg.max_loss, f"{where}, {phase} iteration {it}", out_dir)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
        rec.update({key: float(losses[key].detach()) for key in _PHASE_LOGS[phase]})
    return rec


def _check_loss(total: float, max_loss: float, where: str, out_dir: Path) -> None:
    """Stop before a bad step reaches the weights; the previous image's checkpoint stays for --resume."""
    if math.isfinite(total) and total <= max_loss:
        return
    what = "non-finite loss" if not math.isfinite(total) else f"loss {total:.3g} > max_loss {max_loss:g}"
    raise TrainingDiverged(
        f"LNSNet training diverged: {what} on {where}; the checkpoint in {out_dir} holds the previous image. "
        "--resume continues with the same settings only, so start a new run (another out folder) with a lower "
        "lr, fewer iters_feature or without GBL."
    )


def _finish_image(model: LNSNet, cfg: LNSNetTrainingConfig) -> float:
    """Update the GAL memory and unfreeze everything; return the mean GAL scale of this image."""
    strength = model.recon.strength()
    gal_scale = float(model.gal.scale(strength).mean())
    if cfg.gal:
        model.gal.update_memory(strength)
    for p in model.parameters():
        p.requires_grad_(True)
    return gal_scale
