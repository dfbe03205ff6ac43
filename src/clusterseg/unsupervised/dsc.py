"""Deep Superpixel Cut (DSC): SuperAE smoothing + soft K-way superpixel-graph partition.

Pipeline (per image, no labels) after Lin, Zhong & Lu [1]_:

1. superpixels on the image;
2. **SuperAE** (:class:`clusterseg.nn.autoencoder.SuperAE`) trained with
   ``||x - x^R||^2 + lambda * k-means smoothing`` (superpixel means of the
   original image as centres); superpixels are then regenerated on the
   smoothed reconstruction;
3. **DSC**: a 1x1-conv head on the SuperAE encoder predicts K-way pixel
   probabilities ``p``; superpixel pseudo-labels ``C_j`` (majority of pixel
   argmaxes) give ``L1 = CE(p, y^)``; the superpixel partition ``Q = softmax``
   of superpixel-mean logits gives the cut ``L2 = sum_k Q_k^T W (1 - Q_k)``;
   the network is optimised on ``alpha * L1 + beta * L2`` until the
   superpixel labels stop changing;
4. the superpixel labels are painted back to pixels, up-sampled, and
   fragments smaller than ``min_size`` are merged into a neighbour.

Choices the slides leave open (documented here, measured in
``benchmarks/unsupervised_bsds.py``): the similarity ``W`` is a Gaussian
kernel ``exp(-||g_a - g_b||^2 / 2 sigma^2)`` on 8-connected region-adjacency
edges (zero elsewhere), ``g`` being superpixel means of the SuperAE encoder
features after stage 1, kept fixed during stage 2 (``affinity="deep"``;
``"colour"``: Lab means; ``"both"``: concatenated), ``sigma`` the median
edge distance; ``L2`` is divided by ``1^T W 1`` so that alpha/beta are
scale-free; the head ends with a BatchNorm on the K logits (as in Kanezaki
[2]_) so that the argmax pseudo-labels do not collapse at the start; the
image is processed at reduced resolution (``max_side``). The BSDS500
ablation (``benchmarks/results/unsupervised_bsds_ablation.md``) measures the
cut loss, SuperAE and superpixel-source choices.

References
----------
.. [1] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
       Unsupervised Image Segmentation. ICPR 2020, arXiv:2103.06031.
.. [2] Kanezaki, A. (2018). Unsupervised image segmentation by
       backpropagation. ICASSP 2018.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from skimage.color import rgb2lab
from torch import nn

from .._config import OptionsMixin
from ..graph.adjacency import region_adjacency
from ..graph.affinity import affinity_matrix, edge_distances, gaussian_weights, mean_colour
from ..graph.losses import dsc_cut_loss, superpixel_smoothing_loss
from ..graph.pooling import majority_vote, pool_mean
from ..nn.autoencoder import SuperAE
from ..nn.precision import autocast, resolve_precision
from ._common import (
    ProgressLike,
    as_rgb,
    check_capacity,
    check_k,
    default_min_size,
    compute_superpixels,
    downscale,
    make_progress,
    merge_small_fragments,
    region_hierarchy,
    relabel,
    seeded,
    standardise,
    upscale_labels,
)

__all__ = ["DSCConfig", "DSCResult", "deep_superpixel_cut"]


@dataclass
class DSCResult:
    """Output of :func:`deep_superpixel_cut`.

    Attributes
    ----------
    labels : (H, W) int32
        Final segmentation at the input resolution, consecutive labels.
    n_iter : int
        DSC iterations run.
    converged : bool
        Whether early stopping fired (superpixel labels stable).
    superpixels : (h, w) int64
        Superpixels used by DSC (reduced resolution).
    node_labels : (M,) int64
        Class of every superpixel.
    node_features : (M, D) float32
        Learned superpixel features used for W and for merging.
    history : list of float
        Total loss per iteration.
    small_labels : (h, w) int32
        Class map at the working resolution.
    embedding : (D, h, w) float32
        Per-pixel SuperAE embedding (the features pooled into
        ``node_features``), at the working resolution.
    probabilities : (K, h, w) float32
        Final per-pixel class probabilities of the DSC head.
    """

    labels: np.ndarray
    n_iter: int
    converged: bool
    superpixels: np.ndarray
    node_labels: np.ndarray
    node_features: np.ndarray
    history: list = field(default_factory=list)
    small_labels: np.ndarray | None = None
    embedding: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    def hierarchy(self, n_segments, min_size: int = 0, connected: bool = True) -> dict[int, np.ndarray]:
        """Coarser segmentations by Ward merging of the learned regions.

        See :func:`clusterseg.unsupervised._common.region_hierarchy`.

        Returns
        -------
        dict k -> (H, W) int32 label map.
        """
        feats = self.node_features[self.superpixels].transpose(2, 0, 1)
        return region_hierarchy(self.small_labels, feats, self.labels.shape, n_segments, min_size,
                                connected=connected)


class _DSCNet(nn.Module):
    """SuperAE encoder + 1x1 conv/BN head: (B, 3, H, W) -> (B, K, H, W) logits."""

    def __init__(self, ae: SuperAE, n_classes: int) -> None:
        super().__init__()
        self.ae = ae
        self.head = nn.Sequential(nn.Conv2d(ae.n_features, n_classes, 1), nn.BatchNorm2d(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.ae.encode(x)))


@dataclass(frozen=True)
class DSCConfig(OptionsMixin):
    """Hyper-parameters of :func:`deep_superpixel_cut` (the one source of its defaults).

    Attributes
    ----------
    n_superpixels : int
        Requested superpixels at the working resolution.
    superpixel_method : str
        Any :func:`clusterseg.superpixels.superpixels` method.
    max_side : int or None
        Working resolution (longer side); labels are up-sampled back.
    ae_iter : int
        SuperAE iterations (0 skips stage 1: DSC on raw image features).
    lam : float
        Weight of the SuperAE smoothing term.
    regenerate_superpixels : bool
        Recompute superpixels on the smoothed reconstruction.
    max_iter, min_iter : int
        DSC iteration bounds.
    alpha, beta : float
        Weights of the pseudo-label cross-entropy and of the DSC cut.
    affinity : {"deep", "colour", "both"}
        Features for W: SuperAE features, Lab colour, or both concatenated.
    lr : float
        Adam learning rate.
    width, n_features : int
        SuperAE width and embedding size.
    tol, patience : float, int
        Early stopping: stop when less than ``tol`` of the superpixels change
        label for ``patience`` consecutive iterations.
    precision : {"float32", "bfloat16", "auto"}
        Network arithmetic: ``"auto"`` runs bfloat16 autocast where the CPU
        supports it natively (AVX512-BF16 / AMX), float32 elsewhere.
    """

    _what = "DSC"

    n_superpixels: int = 400
    superpixel_method: str = "slic"
    max_side: int | None = 240
    ae_iter: int = 60
    lam: float = 1.0
    regenerate_superpixels: bool = True
    max_iter: int = 128
    min_iter: int = 16
    alpha: float = 1.0
    beta: float = 2.0
    affinity: str = "deep"
    lr: float = 0.01
    width: int = 24
    n_features: int = 24
    tol: float = 0.005
    patience: int = 5
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.affinity not in ("deep", "colour", "both"):
            raise ValueError(f"affinity must be 'deep', 'colour' or 'both', got {self.affinity!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        resolve_precision(self.precision)


def deep_superpixel_cut(
    image: np.ndarray,
    n_segments: int = 8,
    *,
    config: DSCConfig | None = None,
    channel_axis: int | None = -1,
    min_size: int | None = None,
    random_state: int | None = 0,
    progress: ProgressLike = None,
    superpixel_kwargs: dict | None = None,
    **options,
) -> DSCResult:
    """Segment an image into at most ``n_segments`` classes with Deep Superpixel Cut.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Greyscale, RGB or RGBA image (see ``channel_axis``).
    n_segments : int
        K, the number of soft partitions (upper bound on the output labels).
    config : DSCConfig, optional
        Hyper-parameters (default ``DSCConfig()``).
    channel_axis : int or None
    min_size : int, optional
        Fragments smaller than this (pixels, input resolution) are merged;
        default ``H * W // 1000``.
    random_state : int or None
        Seed for network initialisation (torch's global RNG is restored).
    progress : callable(done, total) or bool
        Progress callback (``True`` prints to stderr).
    superpixel_kwargs : dict, optional
        Extra keyword arguments for the superpixel method.
    **options
        Any :class:`DSCConfig` field, overriding ``config`` (e.g.
        ``max_iter=20``, ``precision="auto"``).

    Returns
    -------
    DSCResult

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> res = deep_superpixel_cut(astronaut()[::4, ::4], n_segments=6, max_iter=20)  # doctest: +SKIP
    >>> res.labels.max() < 6  # doctest: +SKIP
    True
    """
    rgb = as_rgb(image, channel_axis)
    n_segments = check_k(n_segments)
    cfg = DSCConfig.with_options(config, **options)
    full_shape = rgb.shape[:2]
    min_size = default_min_size(full_shape) if min_size is None else int(min_size)
    small = downscale(rgb, cfg.max_side)
    # SuperAE halves the resolution once and batch-normalises there: 2 x 2 pixels would leave one value.
    check_capacity(n_segments, small.shape, cfg.n_superpixels, method="dsc", min_side=2, min_pixels=5)
    cb = make_progress(progress, "DSC")
    total = cfg.ae_iter + cfg.max_iter
    spkw = dict(superpixel_kwargs or {})
    with seeded(random_state):
        sp = compute_superpixels(small, cfg.n_superpixels, cfg.superpixel_method, random_state, **spkw)
        x = standardise(small)
        ae = SuperAE(3, n_features=cfg.n_features, width=cfg.width)
        if cfg.ae_iter > 0:
            _train_superae(ae, x, sp, cfg, cb, total)
            if cfg.regenerate_superpixels:
                smooth = _reconstruction(ae, x, cfg.precision)
                sp = compute_superpixels(smooth, cfg.n_superpixels, cfg.superpixel_method, random_state, **spkw)
        graph = _superpixel_graph(ae, x, small, sp, cfg)
        run = _train_partition(_DSCNet(ae, n_segments), x, graph, n_segments, cfg, cb, total)
    cb(total, total)
    small_labels = relabel(run.node_labels[sp])
    labels = merge_small_fragments(upscale_labels(small_labels, full_shape), min_size)
    return DSCResult(labels=labels, n_iter=run.n_iter, converged=run.converged, superpixels=sp,
                     node_labels=run.node_labels.astype(np.int64),
                     node_features=graph.node_features.astype(np.float32), history=run.history,
                     small_labels=small_labels, embedding=graph.embedding, probabilities=run.probabilities)


def _train_superae(ae: SuperAE, x: torch.Tensor, sp: np.ndarray, cfg: DSCConfig, cb, total: int) -> None:
    """Stage 1: reconstruction + superpixel k-means smoothing."""
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
    sp_t = torch.from_numpy(sp)
    for it in range(cfg.ae_iter):
        opt.zero_grad()
        with autocast("cpu", cfg.precision):
            rec = ae(x)[1].float()
        loss = ((rec - x) ** 2).sum(1).mean() + cfg.lam * superpixel_smoothing_loss(rec[0], x[0], sp_t)
        loss.backward()
        opt.step()
        cb(it + 1, total)


@torch.no_grad()
def _reconstruction(ae: SuperAE, x: torch.Tensor, precision: str) -> np.ndarray:
    """The smoothed reconstruction as an (h, w, 3) image in [0, 1] (robust min-max)."""
    ae.eval()
    with autocast("cpu", precision):
        rec = ae(x)[1][0].float().permute(1, 2, 0).numpy()
    ae.train()
    lo, hi = np.percentile(rec, [0.5, 99.5])
    return np.clip((rec - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


@dataclass
class _Graph:
    sp: torch.Tensor  # (h, w) superpixels
    m: int
    W: torch.Tensor  # (m, m) affinities
    embedding: np.ndarray  # (D, h, w)
    node_features: np.ndarray  # (m, D + 3)


@torch.no_grad()
def _superpixel_graph(ae: SuperAE, x: torch.Tensor, small: np.ndarray, sp: np.ndarray, cfg: DSCConfig) -> _Graph:
    """W: Gaussian kernel on the 8-connected RAG over SuperAE / Lab superpixel features (fixed in stage 2)."""
    m = int(sp.max()) + 1
    sp_t = torch.from_numpy(sp)
    edges = region_adjacency(sp, connectivity=2)
    ae.eval()
    with autocast("cpu", cfg.precision):
        embedding = ae.encode(x)[0].float()
    deep = pool_mean(embedding, sp_t, m)
    ae.train()
    lab = torch.from_numpy(mean_colour(rgb2lab(small), sp, m) / 20.0).float()
    g = {"deep": deep, "colour": lab, "both": torch.cat([deep / deep.std().clamp_min(1e-6), lab], 1)}[cfg.affinity]
    if m > 1 and len(edges):
        W = affinity_matrix(edges, gaussian_weights(edge_distances(g, edges)).float(), m, layout="sparse")
    else:
        W = torch.zeros((m, m))
    return _Graph(sp_t, m, W, embedding.numpy(), torch.cat([deep, lab], 1).numpy())


@dataclass
class _PartitionRun:
    node_labels: np.ndarray
    probabilities: np.ndarray
    n_iter: int
    converged: bool
    history: list


def _train_partition(net: _DSCNet, x: torch.Tensor, g: _Graph, n_segments: int, cfg: DSCConfig, cb,
                     total: int) -> _PartitionRun:
    """Stage 2: pseudo-label cross-entropy + DSC cut until the superpixel labels are stable."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    prev, stable, converged, it = None, 0, False, 0
    history: list[float] = []
    sp_flat = g.sp.reshape(-1)
    for it in range(1, cfg.max_iter + 1):
        opt.zero_grad()
        with autocast("cpu", cfg.precision):
            logits = net(x)[0].float()  # (K, h, w)
        with torch.no_grad():
            node_cls = majority_vote(logits.argmax(0), g.sp, g.m, n_segments)
        target = node_cls[sp_flat].reshape(1, *g.sp.shape)
        l1 = nn.functional.cross_entropy(logits[None], target)
        q = torch.softmax(pool_mean(logits, g.sp, g.m), dim=1)
        l2 = dsc_cut_loss(q, g.W, normalize=True) if cfg.beta else logits.new_zeros(())
        loss = cfg.alpha * l1 + cfg.beta * l2
        loss.backward()
        opt.step()
        history.append(loss.item())
        cb(cfg.ae_iter + it, total)
        if prev is not None:
            stable = stable + 1 if float((node_cls != prev).float().mean()) < cfg.tol else 0
        prev = node_cls
        if it >= cfg.min_iter and stable >= cfg.patience:
            converged = True
            break
    with torch.no_grad():
        net.eval()
        with autocast("cpu", cfg.precision):
            logits = net(x)[0].float()
        node_cls = majority_vote(logits.argmax(0), g.sp, g.m, n_segments).numpy()
    return _PartitionRun(node_cls, torch.softmax(logits, 0).numpy(), it, converged, history)
