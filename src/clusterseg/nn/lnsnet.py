"""LNSNet: non-iterative superpixels from a tiny CNN embedding (Zhu et al. [1]_).

Modules (all shapes (B, C, H, W)):

* :class:`FeatureEmbedder` (FEM): ASPP-style dilated 3x3 branches on the 5-channel
  Lab+xy input, then two 3x3 convolutions, giving the embedding ``Z`` (B, 20, H, W).
* :class:`SeedEstimationLayer` (SEL): pools ``Z`` onto the seed grid and predicts a
  bounded offset for every grid seed. Seed features are read from ``Z`` by
  *bilinear* sampling at the continuous seed position, so the offsets receive
  gradients (the released code floors the positions and never trains the SEL).
* Student-t clustering of pixels to seeds lives in
  :mod:`clusterseg.nn.lnsnet_assignment` and the seed grid in
  :mod:`clusterseg.nn.seed_grid`; their names are re-exported here.
* :class:`ReconstructionHead`: 1x1 convolution ``Z -> X^r`` used by the GRM
  (:mod:`clusterseg.nn.grm`) during training only.

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu. "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clusterseg.nn.grm import GAL, GBL

from .lnsnet_assignment import (
    LocalAssigner,
    assign_global,
    assign_local,
    cluster_pixels,
    label_sums,
    local_candidates,
    sample_seeds,
    student_t_kernel,
    window_seeds,
)
from .seed_grid import SeedGrid, seed_grid

__all__ = [
    "FeatureEmbedder",
    "SeedEstimationLayer",
    "ReconstructionHead",
    "LNSNet",
    # re-exported from nn.seed_grid and nn.lnsnet_assignment (their old home)
    "SeedGrid", "seed_grid", "student_t_kernel", "local_candidates", "assign_local", "LocalAssigner",
    "label_sums", "cluster_pixels", "assign_global", "sample_seeds", "window_seeds",
]


# ----------------------------------------------------------------------------- modules
# ----------------------------------------------------------------------------- modules
def _pad1(x: torch.Tensor) -> torch.Tensor:
    """One pixel of reflection padding (the paper's), or edge replication for images one pixel thin."""
    mode = "reflect" if x.shape[-1] > 1 and x.shape[-2] > 1 else "replicate"
    return F.pad(x, (1, 1, 1, 1), mode=mode)


def _conv_as(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, dtype: torch.dtype) -> torch.Tensor:
    """Unpadded convolution of ``x`` (of dtype ``dtype``) with the parameters cast to ``dtype``."""
    return F.conv2d(x, weight.to(dtype), bias.to(dtype))


class FeatureEmbedder(nn.Module):
    """Feature Embedder Module (FEM) of LNSNet.

    ``x`` (B, 5, H, W) -> ``Z`` (B, c2, H, W). Three parallel 3x3 branches
    (dilation 1, 1, 2) on the reflect-padded input, concatenated with the input
    (ASPP-style, Eq. 1), instance norm + ReLU, a fusion 3x3 conv to ``c1``
    channels, concatenation with the input again, and a 3x3 conv to ``c2``
    channels (Eq. 2). Reflection padding keeps the size. 7,390 parameters with the
    defaults.

    Parameters
    ----------
    in_channels, c_m, c1, c2 : int
        Input channels and the widths ``C_m`` (per branch), ``C_1``, ``C_2``.
    """

    def __init__(self, in_channels: int = 5, c_m: int = 10, c1: int = 10, c2: int = 20):
        super().__init__()
        self.in_channels = in_channels
        self.branch1 = nn.Conv2d(in_channels, c_m, 3, dilation=1)
        self.branch2 = nn.Conv2d(in_channels, c_m, 3, dilation=1)
        self.branch3 = nn.Conv2d(in_channels, c_m, 3, dilation=2, padding=1)
        cat1 = in_channels + 3 * c_m
        self.norm1 = nn.InstanceNorm2d(cat1, affine=True)
        self.fuse = nn.Conv2d(cat1, c1, 3)
        self.norm2 = nn.InstanceNorm2d(c1, affine=True)
        self.embed = nn.Conv2d(c1 + in_channels, c2, 3)
        self.norm3 = nn.InstanceNorm2d(c2, affine=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    # Stages before each instance norm; used by forward and by the tiled forward.
    def _stage1(self, x):
        xp = _pad1(x)
        return torch.cat([x, self.branch1(xp), self.branch2(xp), self.branch3(xp)], dim=1)

    def _stage2(self, h):
        return self.fuse(_pad1(h))

    def _stage3(self, h, x):
        return self.embed(_pad1(torch.cat([h, x], dim=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self._stage1(x)))
        h = F.relu(self.norm2(self._stage2(h)))
        return F.relu(self.norm3(self._stage3(h, x)))

    @staticmethod
    def _norm_relu(h: torch.Tensor, norm: nn.InstanceNorm2d) -> torch.Tensor:
        """Instance norm + ReLU of a (1, C, H, W) tensor in its own dtype and memory format.

        For one image, instance norm is batch norm with batch statistics; the
        batch-norm kernel accumulates them in float32 and is vectorised for
        channels-last and bfloat16 tensors (three times faster than the
        generic path in bfloat16).
        """
        weight, bias = norm.weight.to(h.dtype), norm.bias.to(h.dtype)
        if h.shape[2] * h.shape[3] == 1:  # a single pixel normalises to zero (batch norm refuses it)
            return torch.relu(torch.zeros_like(h) + bias.view(1, -1, 1, 1))
        return torch.relu_(F.batch_norm(h, None, None, weight, bias, True, 0.0, norm.eps))

    @torch.no_grad()
    def forward_inference(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Faster forward for batch size 1 (channels-last convolutions, fused norm + ReLU).

        Equals :meth:`forward` up to floating-point rounding; no autograd; the
        output is float32. With ``dtype=torch.bfloat16`` the network runs in
        bfloat16 (about twice as fast on CPUs with AVX512-BF16 / AMX,
        :mod:`clusterseg.nn.precision`) except the convolutions of the input
        itself, which stay in float32: its position channels, in bfloat16,
        could not tell apart neighbouring pixels of images wider than a few
        hundred pixels.
        """
        if x.shape[0] != 1:
            return self.forward(x)
        c1 = self.fuse.out_channels
        xc = x.float().contiguous(memory_format=torch.channels_last)
        xp = _pad1(xc)
        # the two dilation-1 branches share their input: one convolution with stacked weights
        w12 = torch.cat([self.branch1.weight, self.branch2.weight], 0)
        b12 = torch.cat([self.branch1.bias, self.branch2.bias], 0)
        h = torch.cat([xc, F.conv2d(xp, w12, b12), self.branch3(xp)], dim=1).to(dtype)
        h = self._norm_relu(h.contiguous(memory_format=torch.channels_last), self.norm1)
        h = self._norm_relu(_conv_as(_pad1(h), self.fuse.weight, self.fuse.bias, dtype=dtype), self.norm2)
        # the last convolution reads [h, x]: split by input channels, the share of x in float32
        z = F.conv2d(xp, self.embed.weight[:, c1:]).contiguous(memory_format=torch.channels_last)
        # added in place: one image-sized float32 buffer less (2-4 % of an LNSNet call, paired)
        z.add_(_conv_as(_pad1(h), self.embed.weight[:, :c1], self.embed.bias, dtype=dtype))
        from . import lnsnet_kernels

        if lnsnet_kernels.runs_on(z):  # z is channels-last here
            return lnsnet_kernels.instance_norm_relu_(z, self.norm3.weight, self.norm3.bias, self.norm3.eps)
        return self._norm_relu(z, self.norm3)

    @staticmethod
    def _apply_norm(h, norm: nn.InstanceNorm2d, stats):
        mean, var = stats
        scale = norm.weight / torch.sqrt(var + norm.eps)
        shift = norm.bias - mean * scale
        return F.relu(h * scale.view(1, -1, 1, 1).to(h) + shift.view(1, -1, 1, 1).to(h))

    @torch.no_grad()
    def forward_tiled(self, x: torch.Tensor, tile_rows: int = 256, halo: int = 8) -> torch.Tensor:
        """Exact forward pass in horizontal tiles to bound peak memory (inference, batch size 1).

        Instance-norm statistics are accumulated over the whole image: pass 1
        computes the statistics of the first stage tile by tile; pass 2 recomputes
        it, normalises and stores the (narrow, ``c1``-channel) second-stage output;
        pass 3 computes the last stage into the output buffer, which is finally
        normalised in place. Tiles carry a ``halo`` of extra rows that is cropped
        away, so the result equals :meth:`forward` up to floating-point rounding.
        Peak memory is about ``(c2 + c1 + in_channels) * H * W`` floats.
        """
        b, _, h, w = x.shape
        if b != 1:
            raise ValueError("forward_tiled supports batch size 1 only")
        tiles = [(r0, min(h, r0 + tile_rows)) for r0 in range(0, h, tile_rows)]
        if len(tiles) > 1 and tiles[-1][1] - tiles[-1][0] < 2 * halo:
            last = tiles.pop()  # reflection padding needs enough rows
            tiles[-1] = (tiles[-1][0], last[1])
        n = float(h * w)

        def window(r0, r1):
            a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
            return a0, a1, slice(r0 - a0, r0 - a0 + (r1 - r0))

        def finish(acc):
            mean = acc[0] / n
            return mean.float(), (acc[1] / n - mean * mean).clamp_min(0).float()

        def accumulate(acc, t):
            t = t.double()
            acc[0] += t.sum(dim=(0, 2, 3))
            acc[1] += (t * t).sum(dim=(0, 2, 3))

        c_cat = self.norm1.num_features
        acc = [torch.zeros(c_cat, dtype=torch.float64, device=x.device) for _ in range(2)]
        for r0, r1 in tiles:
            a0, a1, crop = window(r0, r1)
            accumulate(acc, self._stage1(x[:, :, a0:a1])[:, :, crop])
        stats1 = finish(acc)
        h2 = torch.empty((1, self.norm2.num_features, h, w), dtype=x.dtype, device=x.device)
        acc = [torch.zeros(self.norm2.num_features, dtype=torch.float64, device=x.device) for _ in range(2)]
        for r0, r1 in tiles:
            a0, a1, crop = window(r0, r1)
            t = self._stage2(self._apply_norm(self._stage1(x[:, :, a0:a1]), self.norm1, stats1))[:, :, crop]
            h2[:, :, r0:r1] = t
            accumulate(acc, t)
        stats2 = finish(acc)
        z = torch.empty((1, self.norm3.num_features, h, w), dtype=x.dtype, device=x.device)
        acc = [torch.zeros(self.norm3.num_features, dtype=torch.float64, device=x.device) for _ in range(2)]
        for r0, r1 in tiles:
            a0, a1, crop = window(r0, r1)
            t = self._stage3(self._apply_norm(h2[:, :, a0:a1], self.norm2, stats2), x[:, :, a0:a1])[:, :, crop]
            z[:, :, r0:r1] = t
            accumulate(acc, t)
        del h2
        stats3 = finish(acc)
        for r0, r1 in tiles:
            z[:, :, r0:r1] = self._apply_norm(z[:, :, r0:r1], self.norm3, stats3)
        return z


def _grid_means(z: torch.Tensor, grid: SeedGrid) -> torch.Tensor:
    """Adaptive average pooling of ``z`` onto the seed grid; compiled for one CPU image without gradients."""
    from . import lnsnet_kernels

    if z.shape[0] == 1 and lnsnet_kernels.runs_on(z):
        return lnsnet_kernels.adaptive_means(z, grid.rows, grid.cols).to(z.dtype)
    return F.adaptive_avg_pool2d(z, (grid.rows, grid.cols))


class SeedEstimationLayer(nn.Module):
    """Seed Estimation Layer (SEL): bounded offsets of the grid seeds from pooled ``Z``.

    ``Z`` (B, C, H, W) is adaptively average-pooled to the (rows, cols) grid,
    then 3x3 conv -> instance norm -> ReLU -> 1x1 conv to 3 channels (channel 0 is
    the paper's unused seed score). Channels 1 and 2 give row/column offsets
    ``max_shift * 2 * (sigmoid - 0.5)`` in units of the cell size, i.e. at most
    ``max_shift`` cells (0.5 keeps a seed inside its own cell, as the paper's
    text asks). 3,723 parameters with ``channels=20``.
    """

    def __init__(self, channels: int = 20, max_shift: float = 0.5):
        super().__init__()
        self.max_shift = float(max_shift)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.head = nn.Conv2d(channels, 3, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, grid: SeedGrid) -> torch.Tensor:
        """Offsets (B, 2, rows, cols) in cells (row offset, column offset)."""
        pooled = _grid_means(z, grid)
        h = self.conv(pooled)
        if grid.rows * grid.cols > 1:
            h = self.norm(h)
        else:  # instance norm of a single element is undefined: centre only
            h = (h - h) * self.norm.weight.view(1, -1, 1, 1) + self.norm.bias.view(1, -1, 1, 1)
        out = self.head(F.relu(h))
        return self.max_shift * 2.0 * (torch.sigmoid(out[:, 1:3]) - 0.5)


class ReconstructionHead(nn.Module):
    """1x1 convolution ``Z`` (B, C, H, W) -> ``X^r`` (B, 5, H, W) (Eq. 8)."""

    def __init__(self, channels: int = 20, out_channels: int = 5, n_colour: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels, 1)
        self.n_colour = n_colour
        nn.init.xavier_normal_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(z)

    def strength(self) -> torch.Tensor:
        """Mean reconstruction strength ``g`` (C,) of Eq. 9: colour mean |W| times spatial mean |W|."""
        w = self.conv.weight.detach().abs()[:, :, 0, 0]  # (out, C)
        return w[: self.n_colour].mean(0) * w[self.n_colour :].mean(0)



# ----------------------------------------------------------------------------- network
class LNSNet(nn.Module):
    """LNSNet with FEM, SEL, reconstruction head and GRM buffers (about 11.2K parameters).

    Parameters
    ----------
    in_channels, c_m, c1, c2 : int
        Network widths (paper: 5, 10, 10, 20).
    max_shift : float
        Maximum seed offset in cells.
    alpha : float
        Student-t degrees of freedom (kernel exponent ``-(alpha+1)/2``).
    gal_momentum : float
        ``lambda`` of the GAL memory update (Eq. 10).
    gbl_eps : float
        GBL contour threshold (Eq. 12).
    seed_window : float
        How seed features are read from ``Z``. 0: the embedding at the seed
        position (bilinear; the paper reads one pixel). ``> 0``: the mean
        embedding over a box of ``seed_window`` grid cells centred at the seed
        position (:func:`window_seeds`), a less noisy summary of the region the
        seed stands for, still moved by the seed estimation layer. Default 1,
        as the trainer and the shipped weights (weights files record it).

    Examples
    --------
    >>> net = LNSNet()
    >>> sum(p.numel() for p in net.parameters())
    11218
    >>> x = torch.randn(1, 5, 24, 32)
    >>> out = net(x, 12)
    >>> out["z"].shape, out["seed_feats"].shape
    (torch.Size([1, 20, 24, 32]), torch.Size([12, 20]))
    """

    def __init__(
        self,
        in_channels: int = 5,
        c_m: int = 10,
        c1: int = 10,
        c2: int = 20,
        max_shift: float = 0.5,
        alpha: float = 1.0,
        gal_momentum: float = 0.5,
        gbl_eps: float = 0.7,
        seed_window: float = 1.0,
    ):
        super().__init__()
        if seed_window < 0:
            raise ValueError(f"seed_window must be >= 0, got {seed_window}")
        self.alpha = float(alpha)
        self.seed_window = float(seed_window)
        self.fem = FeatureEmbedder(in_channels, c_m, c1, c2)
        self.sel = SeedEstimationLayer(c2, max_shift)
        self.recon = ReconstructionHead(c2, in_channels)
        self.gal = GAL(c2, gal_momentum)
        self.gbl = GBL(gbl_eps)

    def seed_positions(
        self, z: torch.Tensor, grid: SeedGrid, use_sel: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous seed positions (row (K,), col (K,)) in pixels, grid raster order."""
        cr, cc = grid.centres(z.device, z.dtype)
        rows = cr[:, None].expand(grid.rows, grid.cols)
        cols = cc[None, :].expand(grid.rows, grid.cols)
        if use_sel:
            off = self.sel(z, grid)[0]
            rows = rows + off[0] * grid.cell_h
            cols = cols + off[1] * grid.cell_w
        rows = rows.reshape(-1).clamp(0, grid.height - 1)
        cols = cols.reshape(-1).clamp(0, grid.width - 1)
        return rows, cols

    def seed_features(self, z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, grid: SeedGrid) -> torch.Tensor:
        """Seed features (K, C) at continuous positions: point samples or window means (see ``seed_window``)."""
        if self.seed_window <= 0:
            return sample_seeds(z, rows, cols)
        return window_seeds(z, rows, cols, 0.5 * self.seed_window * grid.cell_h, 0.5 * self.seed_window * grid.cell_w)

    def forward(self, x: torch.Tensor, n_segments: int, use_sel: bool = True) -> dict:
        """Embed and place seeds.

        Parameters
        ----------
        x : (1, 5, H, W) tensor
            Standardised Lab+xy features.
        n_segments : int
            Requested number of seeds.

        Returns
        -------
        dict with ``z`` (1, C, H, W), ``grid`` (SeedGrid), ``seed_rows``/``seed_cols`` (K,),
        ``seed_feats`` (K, C).
        """
        z = self.fem(x)
        grid, rows, cols, seeds = self.place_seeds(z, n_segments, use_sel)
        return {"z": z, "grid": grid, "seed_rows": rows, "seed_cols": cols, "seed_feats": seeds}

    def place_seeds(self, z: torch.Tensor, n_segments: int, use_sel: bool = True):
        """The seed pipeline on an embedding ``z`` (1, C, H, W): grid, (shifted) positions, features.

        Returns
        -------
        grid : SeedGrid
        rows, cols : (K,) tensors
            Continuous seed positions in pixels.
        seeds : (K, C) tensor
        """
        grid = seed_grid(z.shape[2], z.shape[3], n_segments)
        rows, cols = self.seed_positions(z, grid, use_sel=use_sel)
        return grid, rows, cols, self.seed_features(z, rows, cols, grid)
