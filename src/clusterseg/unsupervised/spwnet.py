"""SP-WNet: a W-Net trained on a few images with superpixel-graph losses.

After Leng et al. [1]_: a :class:`~clusterseg.nn.wnet.WNet` is trained on
size-varying random patches (flips and 90-degree rotations) sampled once
from one or a few images (reconstruction loss), plus a full-image forward
pass per image for the losses on its superpixel graph: soft normalised cut
(``A = exp(tau_cut d)`` on mean-colour distances, 8-connected RAG),
similarity (cross-entropy to superpixel pseudo-labels) and continuity
(L1 to the softmax-weighted neighbour mean). Every term is summed once per
image (the released code counts image i ``M - i`` times; fixed here).
The trained model segments any new frame or slice by a forward pass and a
per-superpixel argmax of mean logits, so that class ids are shared by all
frames of a video or slices of a volume.

References
----------
.. [1] Leng, K., Atwood, R., Kockelmann, W., Chekrygina, D., &
       Thiyagalingam, J. (2024). Unsupervised Few-Shot Image Segmentation
       with Dense Feature Learning and Sparse Clustering. VISAPP 2024.
       Code: https://github.com/stfc-sciml/sp-wnet-seg
.. [2] Xia, X., & Kulis, B. (2017). W-Net: A Deep Model for Fully
       Unsupervised Image Segmentation. arXiv:1711.08506.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from .._config import check_option_names
from ..graph.adjacency import region_adjacency
from ..graph.affinity import affinity_matrix, edge_distances, exp_weights, mean_colour
from ..graph.losses import continuity_loss, similarity_loss, soft_ncut_loss
from ..graph.pooling import pool_mean
from ..io.checkpoints import CheckpointError, build_checked, load_checkpoint, model_checkpoint, save_checkpoint
from ..nn.d4 import apply_d4
from ..nn.precision import autocast, resolve_precision
from ..nn.wnet import WNet
from ._common import (
    ProgressLike,
    as_rgb,
    check_capacity,
    compute_superpixels,
    downscale,
    make_progress,
    seeded,
    upscale_labels,
)

__all__ = ["PatchSampler", "SPWNetConfig", "SPWNetModel"]

_FORMAT_VERSION = 1


class PatchSampler:
    """Size-varying random patches with flips / rotations, sampled once.

    For every pair of sides ``(s_y, s_x)`` from ``sizes`` with aspect ratio
    at most ``max_aspect``, ``n_batches`` mini-batches of
    ``max(sizes)**2 * 4 // (s_y * s_x)`` patches are cut from random
    positions of every image (64/96 sides: 9, 6, 6 and 4 patches), each
    randomly kept, h-flipped, v-flipped or hv-flipped, square patches also
    rotated by +-90 degrees. Patches are drawn once with ``random_state``;
    :meth:`epoch` only reshuffles them.

    Parameters
    ----------
    images : sequence of (C, H, W) tensors
    sizes : sequence of int
        Patch sides (each clipped to the image size, rounded down to a
        multiple of ``multiple``).
    n_batches : int
        Mini-batches per epoch.
    max_aspect : float
    multiple : int
        Patch sides are multiples of this (the network's divisor).
    random_state : int
    """

    def __init__(self, images: Sequence[torch.Tensor], sizes=(64, 96), n_batches: int = 8,
                 max_aspect: float = 2.0, multiple: int = 8, random_state: int = 0) -> None:
        if len(images) == 0:
            raise ValueError("PatchSampler needs at least one image")
        rng = np.random.default_rng(random_state)
        self.n_batches = int(n_batches)
        self.groups: list[list[torch.Tensor]] = []  # per image: list of (n_batches * count, C, sy, sx)
        self._rng = rng
        base = max(sizes)
        for img in images:
            _, h, w = img.shape
            groups = []
            pairs = [(a, b) for a in sizes for b in sizes if max(a, b) / min(a, b) <= max_aspect]
            for sy, sx in pairs:
                count = max(1, base * base * 4 // (sy * sx))
                sy_c = max(multiple, min(sy, h) // multiple * multiple)
                sx_c = max(multiple, min(sx, w) // multiple * multiple)
                if sy_c > h or sx_c > w:
                    raise ValueError(f"image {h}x{w} is smaller than the minimum patch size {multiple}")
                n = count * self.n_batches
                ys = rng.integers(0, h - sy_c + 1, n)
                xs = rng.integers(0, w - sx_c + 1, n)
                n_aug = 6 if sy_c == sx_c else 4
                augs = rng.integers(0, n_aug, n)
                patches = torch.stack([
                    apply_d4(img[:, y:y + sy_c, x:x + sx_c], *_PATCH_SYMMETRIES[int(a)]) for y, x, a in zip(ys, xs, augs)
                ])
                groups.append(patches)
            self.groups.append(groups)

    def epoch(self):
        """Yield ``n_batches`` steps; each step is a list over images of a list of (B, C, sy, sx) batches."""
        perms = [[torch.from_numpy(self._rng.permutation(len(g))) for g in groups] for groups in self.groups]
        for step in range(self.n_batches):
            out = []
            for groups, ps in zip(self.groups, perms):
                per_img = []
                for g, p in zip(groups, ps):
                    c = len(g) // self.n_batches
                    per_img.append(g[p[step * c:(step + 1) * c]])
                out.append(per_img)
            yield out


#: The patch augmentations drawn by the sampler, as D4 symmetries: identity, flips of x, of y and of
#: both, and quarter turns either way.
_PATCH_SYMMETRIES = ((0, False), (0, True), (2, True), (2, False), (1, False), (3, False))


@dataclass
class SPWNetConfig:
    """Hyper-parameters of :class:`SPWNetModel` (stored in checkpoints)."""

    n_classes: int = 32
    ch_mul: int = 16
    n_blocks: int = 3
    logit_bn: bool = True
    in_channels: int = 3
    max_side: int | None = 320
    unsharp_radius: float = 0.0
    unsharp_amount: float = 0.0
    superpixel_method: str = "slic"
    n_superpixels: int = 1000
    tau_cut: float = -1.0
    tau_con: float = 1.0
    beta_img: float = 0.5
    beta_patch: float = 1.0
    beta_cut: float = 0.0
    beta_sim: float = 0.1
    beta_con: float = 0.1
    patch_sizes: tuple = (64, 96)
    n_batches: int = 8
    lr: float = 1e-3
    random_state: int = 0
    #: "float32", "bfloat16" or "auto" (bfloat16 autocast where the CPU/GPU runs it natively).
    precision: str = "float32"


@dataclass
class _Graph:
    sp: torch.Tensor
    m: int
    edges: np.ndarray
    dist: torch.Tensor
    A: torch.Tensor


class SPWNetModel:
    """Trainable SP-WNet segmenter: ``fit`` on a few images, ``predict`` any number.

    Parameters
    ----------
    n_classes : int
        K, the number of classes (upper bound on labels per image).
    **kwargs
        Any field of :class:`SPWNetConfig` (network width ``ch_mul``, depth
        ``n_blocks``, working resolution ``max_side``, unsharp masking,
        superpixels, loss weights ``beta_*`` and temperatures ``tau_*``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((32, 48, 3)).astype(np.float32)
    >>> model = SPWNetModel(3, ch_mul=4, n_blocks=2, n_superpixels=30, patch_sizes=(16,), n_batches=2)
    >>> labels = model.fit([img], epochs=1).predict(img)
    >>> labels.shape, labels.dtype
    ((32, 48), dtype('int32'))
    """

    def __init__(self, n_classes: int = 32, **kwargs) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        check_option_names(SPWNetConfig, kwargs, "SPWNetModel")
        self.config = SPWNetConfig(n_classes=int(n_classes), **kwargs)
        if self.config.n_classes > self.config.n_superpixels:  # before the network allocates K channels
            raise ValueError(
                f"n_classes={n_classes} is more than SP-WNet can give: at most n_superpixels="
                f"{self.config.n_superpixels} (one class per superpixel); ask for fewer classes"
            )
        self.config.patch_sizes = tuple(int(s) for s in self.config.patch_sizes)
        resolve_precision(self.config.precision)  # a bad value fails here, not mid-training
        with seeded(self.config.random_state):
            self.net = WNet(self.config.in_channels, self.config.n_classes, self.config.ch_mul, self.config.n_blocks,
                            logit_bn=self.config.logit_bn)
        self.history: list[dict] = []
        self.fitted = False

    # ------------------------------------------------------------- preprocessing
    def preprocess(self, image: np.ndarray, channel_axis: int | None = -1) -> np.ndarray:
        """Float RGB in [0, 1] at the working resolution (unsharp-masked if configured)."""
        return self._preprocess_rgb(as_rgb(image, channel_axis))

    def _preprocess_rgb(self, rgb: np.ndarray) -> np.ndarray:
        rgb = downscale(rgb, self.config.max_side)
        if self.config.unsharp_amount > 0:
            # unsharp mask x + a (x - G_r * x), written out with scipy: skimage 0.26's unsharp_mask
            # intermittently returned garbage (huge / non-finite values) on this machine
            x = rgb.astype(np.float64)
            blur = gaussian_filter(x, sigma=(self.config.unsharp_radius, self.config.unsharp_radius, 0))
            rgb = np.clip(x + self.config.unsharp_amount * (x - blur), 0.0, 1.0).astype(np.float32)
        return rgb

    def _tensor(self, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """(1, 3, H', W') reflect-padded to the network multiple, centred on 0."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None] - 0.5
        h, w = rgb.shape[:2]
        mult = self.net.multiple
        ph, pw = (-h) % mult, (-w) % mult
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, (h, w)

    def _graph(self, rgb: np.ndarray) -> _Graph:
        c = self.config
        # The W-Net's bottleneck needs at least 2 x 2 cells for its batch normalisation.
        check_capacity(c.n_classes, rgb.shape, c.n_superpixels, method="spwnet", min_side=2 * self.net.multiple)
        sp = compute_superpixels(rgb, c.n_superpixels, c.superpixel_method, c.random_state)
        m = int(sp.max()) + 1
        edges = region_adjacency(sp, connectivity=2)
        dist = torch.from_numpy(edge_distances(mean_colour(rgb, sp, m), edges)).float()
        A = affinity_matrix(edges, exp_weights(dist, c.tau_cut), m, layout="sparse")
        return _Graph(torch.from_numpy(sp), m, edges, dist, A)

    # ------------------------------------------------------------- training
    def fit(self, images: Sequence[np.ndarray], *, epochs: int = 10, channel_axis: int | None = -1,
            progress: ProgressLike = None) -> SPWNetModel:
        """Train on one or a few images (list of arrays, or one array).

        Each epoch has ``n_batches`` steps; a step uses one patch mini-batch
        per patch size for each image and one full-image pass per image for
        the graph losses.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3) and (
                images.ndim == 2 or images.shape[-1] in (1, 3, 4)):
            images = [images]
        if len(images) == 0:
            raise ValueError("fit() needs at least one image")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        c = self.config
        rgbs = [self.preprocess(im, channel_axis) for im in images]
        cb = make_progress(progress, "SP-WNet training")
        with seeded(c.random_state):
            graphs = [self._graph(r) for r in rgbs]
            xs = [self._tensor(r) for r in rgbs]
            sampler = PatchSampler([x[0, :, :hw[0], :hw[1]] for x, hw in xs], sizes=c.patch_sizes,
                                   n_batches=c.n_batches, multiple=self.net.multiple, random_state=c.random_state)
            opt = torch.optim.Adam(self.net.parameters(), lr=c.lr)
            self.net.train()
            total = epochs * c.n_batches
            step = 0
            for _ in range(epochs):
                for batch in sampler.epoch():
                    opt.zero_grad()
                    terms = {"img": 0.0, "patch": 0.0, "cut": 0.0, "sim": 0.0, "con": 0.0}
                    for (x, (h, w)), g, patches in zip(xs, graphs, batch):
                        if c.beta_patch:
                            terms["patch"] = terms["patch"] + sum(
                                F.mse_loss(self._forward(p)[1], p) for p in patches) / len(patches)
                        logits, rec = self._forward(x)
                        logits = logits[0, :, :h, :w]
                        if c.beta_img:
                            terms["img"] = terms["img"] + F.mse_loss(rec, x)
                        fbar = pool_mean(logits, g.sp, g.m)
                        if c.beta_cut:
                            terms["cut"] = terms["cut"] + soft_ncut_loss(fbar.softmax(1), g.A)
                        if c.beta_sim:
                            terms["sim"] = terms["sim"] + similarity_loss(logits, g.sp, g.m, mode="mean")
                        if c.beta_con and len(g.edges):
                            terms["con"] = terms["con"] + continuity_loss(fbar, g.edges, g.dist, c.tau_con)
                    loss = sum(getattr(c, f"beta_{k}") * v for k, v in terms.items())
                    loss.backward()
                    opt.step()
                    step += 1
                    self.history.append({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in terms.items()}
                                        | {"loss": loss.item()})
                    cb(step, total)
            self._recalibrate_bn([x for x, _ in xs])
        self.fitted = True
        return self

    @torch.no_grad()
    def _recalibrate_bn(self, xs: list[torch.Tensor]) -> None:
        """Re-estimate BatchNorm running statistics on the full training images.

        With few training steps the exponential running averages lag the
        weights; inference then uses exact averages over the training images.
        """
        bns = [mod for mod in self.net.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
        self.net.train()
        for x in xs:
            self.net(x)
        for bn, mom in zip(bns, saved):
            bn.momentum = mom
        self.net.eval()

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W-Net forward in the configured precision; float32 outputs for the losses."""
        with autocast("cpu", self.config.precision):
            logits, rec = self.net(x)
        return logits.float(), rec.float()

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_logits(self, image: np.ndarray, channel_axis: int | None = -1) -> tuple[np.ndarray, np.ndarray]:
        """Class logits (K, h, w) and the preprocessed RGB at the working resolution."""
        return self._logits(self.preprocess(image, channel_axis))

    @torch.no_grad()
    def _logits(self, rgb: np.ndarray):
        x, (h, w) = self._tensor(rgb)
        self.net.eval()
        with autocast("cpu", self.config.precision):
            logits = self.net.encode(x)[0, :, :h, :w].float()
        return logits.numpy(), rgb

    @torch.no_grad()
    def predict(self, image: np.ndarray, *, channel_axis: int | None = -1, use_superpixels: bool = True,
                full_resolution: bool = True) -> np.ndarray:
        """Class map of one image: per-superpixel argmax of the mean logits.

        Class ids are the network's (in ``[0, n_classes)``), hence consistent
        across images segmented by the same model.

        Parameters
        ----------
        image : (H, W) or (H, W, C) ndarray
        use_superpixels : bool
            False: plain pixel argmax.
        full_resolution : bool
            Up-sample labels to the input size (else the working resolution).

        Returns
        -------
        (H, W) int32 array.
        """
        if not self.fitted:
            raise RuntimeError("SPWNetModel is not fitted; call fit() or load() first")
        full = as_rgb(image, channel_axis)
        logits, rgb = self._logits(self._preprocess_rgb(full))
        lab = self.labels_from_logits(logits, rgb, use_superpixels)
        return upscale_labels(lab, full.shape[:2]) if full_resolution else lab

    def labels_from_logits(self, logits: np.ndarray, rgb: np.ndarray, use_superpixels: bool = True) -> np.ndarray:
        """Class map from ``(K, H, W)`` logits of :meth:`predict_logits`: per-superpixel majority of the argmax
        (the paper's superpixel refinement) or the plain per-pixel argmax."""
        if not use_superpixels:
            return logits.argmax(0).astype(np.int32)
        c = self.config
        sp = compute_superpixels(rgb, c.n_superpixels, c.superpixel_method, c.random_state)
        fbar = pool_mean(torch.from_numpy(logits), sp).numpy()
        return fbar.argmax(1)[sp].astype(np.int32)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save config and weights atomically (plain types + state_dict, loadable with ``weights_only=True``).

        Refuses to replace an existing file unless ``overwrite``.
        """
        if not self.fitted:
            raise RuntimeError("cannot save an unfitted SPWNetModel")
        cfg = asdict(self.config)
        cfg["patch_sizes"] = list(cfg["patch_sizes"])
        payload = model_checkpoint("clusterseg.spwnet", _FORMAT_VERSION, cfg, self.net.state_dict(),
                                   {"training_steps": len(self.history)})
        return save_checkpoint(payload, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SPWNetModel:
        """Load a model written by :meth:`save` (``weights_only=True``); CheckpointError if it is not one."""
        payload = load_checkpoint(path, required_keys=("config", "state_dict"))
        if payload.get("format") != "clusterseg.spwnet" or not isinstance(payload["config"], dict):
            raise CheckpointError(f"'{path}' is not a clusterseg SP-WNet checkpoint")
        cfg = dict(payload["config"])
        k = cfg.pop("n_classes", None)
        model = build_checked(lambda: cls(k, **cfg), payload["state_dict"], f"'{path}'", module=lambda m: m.net)
        model.net.eval()
        model.fitted = True
        return model
