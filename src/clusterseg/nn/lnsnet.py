"""LNSNet: non-iterative superpixels from a tiny CNN embedding (Zhu et al. [1]_).

Modules (all shapes (B, C, H, W)):

* :class:`FeatureEmbedder` (FEM): ASPP-style dilated 3x3 branches on the 5-channel
  Lab+xy input, then two 3x3 convolutions, giving the embedding ``Z`` (B, 20, H, W).
* :class:`SeedEstimationLayer` (SEL): pools ``Z`` onto the seed grid and predicts a
  bounded offset for every grid seed. Seed features are read from ``Z`` by
  *bilinear* sampling at the continuous seed position, so the offsets receive
  gradients (the released code floors the positions and never trains the SEL).
* Student-t clustering (:func:`student_t_kernel`, :func:`local_candidates`,
  :func:`assign_local`, :func:`assign_global`). The default *local* assignment
  compares each pixel only with the seeds of the 3x3 grid cells around its own
  cell, so time and memory are O(N) and independent of the number of seeds;
  the paper's *global* N x K assignment is kept for ablation.
  :class:`LocalAssigner` gathers the pixels once into a padded per-cell layout
  for repeated assignments, and :func:`cluster_pixels` runs the paper's single
  pass followed by optional centre updates (local k-means in the embedding plus
  position and colour terms; this project's measured default at inference).
* :class:`ReconstructionHead`: 1x1 convolution ``Z -> X^r`` used by the GRM
  (:mod:`clusterseg.nn.grm`) during training only.

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu. "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from clusterseg.nn.grm import GAL, GBL

__all__ = [
    "FeatureEmbedder",
    "SeedEstimationLayer",
    "ReconstructionHead",
    "LNSNet",
    "SeedGrid",
    "seed_grid",
    "student_t_kernel",
    "local_candidates",
    "assign_local",
    "LocalAssigner",
    "label_sums",
    "cluster_pixels",
    "assign_global",
    "sample_seeds",
    "window_seeds",
]


# ----------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class SeedGrid:
    """Regular seed layout of ``rows x cols`` (nearly square) cells over an ``H x W`` image.

    Pixel row ``r`` lies in cell row ``floor(r * rows / H)``; cell centres are at
    ``(a + 0.5) * H / rows - 0.5`` (pixel coordinates).
    """

    height: int
    width: int
    rows: int
    cols: int

    @property
    def n_seeds(self) -> int:
        return self.rows * self.cols

    @property
    def cell_h(self) -> float:
        return self.height / self.rows

    @property
    def cell_w(self) -> float:
        return self.width / self.cols

    def centres(self, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell-centre row coordinates (rows,) and column coordinates (cols,)."""
        r = (torch.arange(self.rows, device=device, dtype=dtype) + 0.5) * self.cell_h - 0.5
        c = (torch.arange(self.cols, device=device, dtype=dtype) + 0.5) * self.cell_w - 0.5
        return r, c

    def pixel_cells(self, device=None, row_start: int = 0, row_stop: int | None = None):
        """Cell row of every pixel row in ``[row_start, row_stop)`` and cell column of every pixel column."""
        row_stop = self.height if row_stop is None else row_stop
        ar = torch.arange(row_start, row_stop, device=device, dtype=torch.long) * self.rows // self.height
        ac = torch.arange(self.width, device=device, dtype=torch.long) * self.cols // self.width
        return ar, ac


def seed_grid(height: int, width: int, n_segments: int) -> SeedGrid:
    """Choose a ``rows x cols`` grid with ``rows * cols ~= n_segments`` and square cells.

    Parameters
    ----------
    height, width : int
        Image size.
    n_segments : int
        Requested number of seeds ``K`` (>= 1).

    Returns
    -------
    grid : SeedGrid

    Examples
    --------
    >>> g = seed_grid(321, 481, 100)
    >>> (g.rows, g.cols)
    (8, 12)
    """
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    k = min(int(n_segments), height * width)
    rows = max(1, min(height, int(round(math.sqrt(k * height / width)))))
    cols = max(1, min(width, int(round(k / rows))))
    return SeedGrid(int(height), int(width), rows, cols)


# ----------------------------------------------------------------------------- modules
def _pad1(x: torch.Tensor) -> torch.Tensor:
    """One pixel of reflection padding (the paper's), or edge replication for images one pixel thin."""
    mode = "reflect" if x.shape[-1] > 1 and x.shape[-2] > 1 else "replicate"
    return F.pad(x, (1, 1, 1, 1), mode=mode)


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
    def _norm_relu_nhwc(h: torch.Tensor, norm: nn.InstanceNorm2d) -> torch.Tensor:
        """Instance norm + ReLU of a channels-last (1, C, H, W) tensor (statistics by matrix-vector products)."""
        c = h.shape[1]
        flat = h.permute(0, 2, 3, 1).reshape(-1, c)
        n = flat.shape[0]
        ones = flat.new_ones(1, n)
        mean = (ones @ flat)[0] / n
        var = ((ones @ (flat * flat))[0] / n - mean * mean).clamp_min(0)
        scale = norm.weight / torch.sqrt(var + norm.eps)
        shift = norm.bias - mean * scale
        out = torch.relu_(torch.addcmul(shift, flat, scale))
        return out.reshape(1, h.shape[2], h.shape[3], c).permute(0, 3, 1, 2)

    @torch.no_grad()
    def forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Faster CPU forward for batch size 1 (channels-last convolutions, fused norm + ReLU).

        Equals :meth:`forward` up to floating-point rounding; no autograd.
        """
        if x.shape[0] != 1:
            return self.forward(x)
        xc = x.contiguous(memory_format=torch.channels_last)
        xp = _pad1(xc)
        # the two dilation-1 branches share their input: one convolution with stacked weights
        w12 = torch.cat([self.branch1.weight, self.branch2.weight], 0)
        b12 = torch.cat([self.branch1.bias, self.branch2.bias], 0)
        h = torch.cat([xc, F.conv2d(xp, w12, b12), self.branch3(xp)], dim=1)
        h = self._norm_relu_nhwc(h.contiguous(memory_format=torch.channels_last), self.norm1)
        h = self._norm_relu_nhwc(self._stage2(h).contiguous(memory_format=torch.channels_last), self.norm2)
        z = self._norm_relu_nhwc(self._stage3(h, xc).contiguous(memory_format=torch.channels_last), self.norm3)
        return z

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
        pooled = F.adaptive_avg_pool2d(z, (grid.rows, grid.cols))
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


# ----------------------------------------------------------------------------- clustering
def student_t_kernel(sq_dist: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t similarity ``(1 + d / alpha) ** (-(alpha + 1) / 2)`` of squared distances."""
    return (1.0 + sq_dist / alpha).pow(-(alpha + 1.0) / 2.0)


def _window_offsets(radius: int) -> list[tuple[int, int]]:
    return [(dr, dc) for dr in range(-radius, radius + 1) for dc in range(-radius, radius + 1)]


def _cell_layout(n: int, parts: int, device=None):
    """First pixel of every cell, cell sizes and the padded (parts, M) pixel index table."""
    a = torch.arange(parts + 1, device=device, dtype=torch.long)
    first = (a * n + parts - 1) // parts
    sizes = first[1:] - first[:-1]
    m = int(sizes.max())
    u = torch.arange(m, device=device, dtype=torch.long)
    table = first[:-1, None] + torch.minimum(u[None, :], sizes[:, None] - 1)
    return first, sizes, table


def _neighbour_seeds(seed_feats: torch.Tensor, grid: SeedGrid, radius: int, a0: int, a1: int):
    """Seed features (a1-a0, cols, R, C), seed ids and validity of the (2r+1)^2 cells around each cell."""
    c = seed_feats.shape[1]
    s = seed_feats.reshape(grid.rows, grid.cols, c)
    ar = torch.arange(a0, a1, device=seed_feats.device)
    ac = torch.arange(grid.cols, device=seed_feats.device)
    feats, ids, valid = [], [], []
    for dr, dc in _window_offsets(radius):
        rr, cc = ar + dr, ac + dc
        v = ((rr >= 0) & (rr < grid.rows))[:, None] & ((cc >= 0) & (cc < grid.cols))[None, :]
        rr, cc = rr.clamp(0, grid.rows - 1), cc.clamp(0, grid.cols - 1)
        feats.append(s[rr][:, cc])
        ids.append(rr[:, None] * grid.cols + cc[None, :])
        valid.append(v)
    return torch.stack(feats, 2), torch.stack(ids, 2), torch.stack(valid, 2)


def _cell_distances(
    z: torch.Tensor, seed_feats: torch.Tensor, grid: SeedGrid, radius: int, a0: int, a1: int, with_norm: bool = True
):
    """Distances in the padded per-cell layout.

    Returns ``d`` (nr, cols, R, Hm, Wm) (without the per-pixel ``|z|^2`` term
    when ``with_norm`` is False), seed ids and validity (nr, cols, R).
    """
    _, c, hh, w = z.shape
    rfirst, _, rtable = _cell_layout(grid.height, grid.rows, z.device)
    _, _, ctable = _cell_layout(grid.width, grid.cols, z.device)
    row_idx = rtable[a0:a1] - int(rfirst[a0])  # (nr, Hm) rows relative to the slice
    nr, hm, wm = a1 - a0, row_idx.shape[1], ctable.shape[1]
    flat = (row_idx[:, None, :, None] * w + ctable[None, :, None, :]).reshape(-1)  # (nr, cols, Hm, Wm)
    zt = z[0].permute(1, 2, 0).reshape(-1, c)  # (N, C): a view for channels-last z
    zc = zt[flat].reshape(nr * grid.cols, hm * wm, c)  # (k', M, C)
    feats, ids, valid = _neighbour_seeds(seed_feats, grid, radius, a0, a1)
    nb = feats.reshape(nr * grid.cols, -1, c)  # (k', R, C)
    d = torch.baddbmm((nb * nb).sum(-1, keepdim=True), nb, zc.transpose(1, 2), alpha=-2.0)  # (k', R, M)
    if with_norm:
        d = (d + (zc * zc).sum(-1)[:, None, :]).clamp_min(0)
    return d.reshape(nr, grid.cols, -1, hm, wm), ids, valid, rfirst


def _to_pixels(cell_values: torch.Tensor, grid: SeedGrid, a0: int, a1: int, device=None) -> torch.Tensor:
    """Map (nr, cols, Hm, Wm, ...) per-cell values back to the pixels (h, W, ...) of cell rows [a0, a1)."""
    rfirst, _, _ = _cell_layout(grid.height, grid.rows, device)
    cfirst, _, _ = _cell_layout(grid.width, grid.cols, device)
    r = torch.arange(int(rfirst[a0]), int(rfirst[a1]), device=device)
    c = torch.arange(grid.width, device=device)
    ar = r * grid.rows // grid.height
    ac = c * grid.cols // grid.width
    ur = r - rfirst[ar]
    vc = c - cfirst[ac]
    return cell_values[(ar - a0)[:, None], ac[None, :], ur[:, None], vc[None, :]]


def local_candidates(
    z: torch.Tensor,
    seed_feats: torch.Tensor,
    grid: SeedGrid,
    radius: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared feature distances of each pixel to the seeds of its ``(2r+1)^2`` neighbouring cells.

    Pixels are gathered once into a padded per-cell layout and compared with
    the neighbouring seeds of their cell by one batched matrix product, so the
    cost is O(N (2r+1)^2 C), independent of the number of seeds. Differentiable
    with respect to ``z`` and ``seed_feats``.

    Parameters
    ----------
    z : (1, C, H, W) tensor
        Embedding.
    seed_feats : (K, C) tensor
        Seed features in grid raster order (``K = rows * cols``).
    grid : SeedGrid
    radius : int
        Window radius in cells (1 -> 3x3 = 9 candidates).

    Returns
    -------
    sq_dist : (R, H, W) tensor
        ``R = (2 radius + 1)^2`` candidates in raster order of the window offsets;
        ``inf`` where the candidate cell is outside the grid.
    index : (R, H, W) long tensor
        Seed index of every candidate (clamped into the grid where invalid).
    valid : (R, H, W) bool tensor
    """
    d, ids, valid, _ = _cell_distances(z, seed_feats, grid, radius, 0, grid.rows)
    d = _to_pixels(d.permute(0, 1, 3, 4, 2), grid, 0, grid.rows, z.device).permute(2, 0, 1)
    cells_r = torch.arange(grid.height, device=z.device) * grid.rows // grid.height
    cells_c = torch.arange(grid.width, device=z.device) * grid.cols // grid.width
    idx = ids[cells_r[:, None], cells_c[None, :]].permute(2, 0, 1)
    val = valid[cells_r[:, None], cells_c[None, :]].permute(2, 0, 1)
    d = torch.where(val, d, torch.full_like(d, float("inf")))
    return d, idx, val


@torch.no_grad()
def assign_local(
    z: torch.Tensor,
    seed_feats: torch.Tensor,
    grid: SeedGrid,
    radius: int = 1,
    tile_pixels: int = 1 << 20,
    extra: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hard local assignment: label (H, W) long of the nearest seed among the neighbouring cells.

    Argmax of the Student-t kernel equals argmin of the feature distance. Whole
    rows of cells are processed together, about ``tile_pixels`` pixels at a
    time, so peak memory stays bounded on very large images. ``extra``
    (1, E, H, W) adds pixel features after the channels of ``z`` (``seed_feats``
    then has ``C + E`` columns) without concatenating the whole images.
    """
    h, w = z.shape[2], z.shape[3]
    out = torch.empty((h, w), dtype=torch.long, device=z.device)
    rfirst, _, _ = _cell_layout(grid.height, grid.rows, z.device)
    step = max(1, int(tile_pixels // max(1, w * max(1, h // grid.rows))))
    for a0 in range(0, grid.rows, step):
        a1 = min(grid.rows, a0 + step)
        p0, p1 = int(rfirst[a0]), int(rfirst[a1])
        tile = z[:, :, p0:p1] if extra is None else torch.cat([z[:, :, p0:p1], extra[:, :, p0:p1].to(z)], 1)
        d, ids, valid, _ = _cell_distances(tile, seed_feats, grid, radius, a0, a1, with_norm=False)
        d = d.masked_fill(~valid[:, :, :, None, None], float("inf"))
        best = d.min(2).indices  # first minimum; much faster than argmin over a strided dim on CPU
        best_px = _to_pixels(best, grid, a0, a1, z.device)
        cells_r = torch.arange(p0, p1, device=z.device) * grid.rows // grid.height - a0
        cells_c = torch.arange(w, device=z.device) * grid.cols // grid.width
        out[p0:p1] = ids[cells_r[:, None], cells_c[None, :], best_px]
    return out


def _label_sums(x: torch.Tensor, flat_labels: torch.Tensor, n: int) -> torch.Tensor:
    """Per-label sums (n, C) of the pixels of ``x`` (1, C, H, W), without copying a channels-first ``x``."""
    c = x.shape[1]
    if x.is_contiguous(memory_format=torch.channels_last):
        return x.new_zeros(n, c).index_add_(0, flat_labels, x[0].permute(1, 2, 0).reshape(-1, c))
    return torch.stack([torch.bincount(flat_labels, weights=x[0, j].reshape(-1), minlength=n) for j in range(c)], 1).to(x.dtype)


def label_sums(features: list[torch.Tensor], labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums (n, sum of C) of the pixel features of every label, and pixel counts (n,).

    ``features`` are (1, C_i, H, W) tensors whose channels are concatenated in
    the result (any memory format; nothing image-sized is copied); ``labels``
    is an (H, W) long map with values in ``0..n-1``.
    """
    flat = labels.reshape(-1)
    sums = torch.cat([_label_sums(x, flat, n) for x in features], 1)
    return sums, torch.bincount(flat, minlength=n).to(sums.dtype)


class LocalAssigner:
    """Repeated hard local assignment of one embedding to changing seed features.

    Gathers the pixels of ``z`` (1, C, H, W) once into the padded per-cell
    layout used by :func:`local_candidates`, together with the candidate seed ids
    of every cell and the map back to pixels, so that each call (one
    assignment, e.g. one centre-update step) costs only a batched matrix product
    and a minimum over the ``(2r+1)^2`` candidates. Images whose layout would
    exceed ``max_cached`` values are assigned in row tiles by
    :func:`assign_local` on every call instead (bounded memory).

    Parameters
    ----------
    z : (1, C, H, W) tensor
    grid : SeedGrid
    radius : int
        Window radius in cells.
    max_cached : int
        Largest cached layout, in tensor elements.

    Examples
    --------
    >>> z = torch.rand(1, 4, 20, 30)
    >>> grid = seed_grid(20, 30, 6)
    >>> seeds = torch.rand(grid.n_seeds, 4)
    >>> bool((LocalAssigner(z, grid)(seeds) == assign_local(z, seeds, grid)).all())
    True
    """

    def __init__(
        self,
        z: torch.Tensor,
        grid: SeedGrid,
        radius: int = 1,
        max_cached: int = 1 << 26,
        extra: torch.Tensor | None = None,
    ):
        self.grid, self.radius = grid, int(radius)
        _, c, h, w = z.shape
        c_all = c + (0 if extra is None else extra.shape[1])
        rfirst, rsizes, rtable = _cell_layout(grid.height, grid.rows, z.device)
        cfirst, csizes, ctable = _cell_layout(grid.width, grid.cols, z.device)
        hm, wm = rtable.shape[1], ctable.shape[1]
        self.shape = (h, w)
        self.cached = grid.n_seeds * hm * wm * c_all <= max_cached
        self._best = self._last = None
        if not self.cached:  # tiled fallback, without concatenating the whole images
            self.z, self.extra = z, extra
            return
        flat = (rtable[:, None, :, None] * w + ctable[None, :, None, :]).reshape(-1)  # (rows, cols, Hm, Wm)
        self.zc_t = torch.empty((grid.n_seeds, c_all, hm * wm), device=z.device, dtype=z.dtype)  # (K, C, M)
        first = 0
        for part in (z, extra):
            if part is None:
                continue
            pc = part.shape[1]
            pt = part[0].permute(1, 2, 0).reshape(-1, pc)  # a view for channels-last input
            self.zc_t[:, first : first + pc] = pt[flat].to(z.dtype).reshape(grid.n_seeds, hm * wm, pc).transpose(1, 2)
            first += pc
        _, ids, valid = _neighbour_seeds(torch.zeros(grid.n_seeds, 1, device=z.device), grid, self.radius, 0, grid.rows)
        self.ids = ids.reshape(grid.n_seeds, -1)  # (K, R)
        # slots of the padded layout that hold a pixel of their own cell (not a repeat)
        u, v = torch.arange(hm, device=z.device), torch.arange(wm, device=z.device)
        in_cell = (u[None, :, None] < rsizes[:, None, None])[:, None] & (v[None, None, :] < csizes[:, None, None])[None]
        self.slot_weight = in_cell.reshape(grid.n_seeds, 1, hm * wm).to(z.dtype)  # (K, 1, M)
        self.invalid = ~valid.reshape(grid.n_seeds, -1)
        # flat position in the (K, M) layout of every pixel
        r = torch.arange(h, device=z.device)
        cidx = torch.arange(w, device=z.device)
        ar, ac = r * grid.rows // grid.height, cidx * grid.cols // grid.width
        cell = ar[:, None] * grid.cols + ac[None, :]
        pos = (r - rfirst[ar])[:, None] * wm + (cidx - cfirst[ac])[None, :]
        self.pixel_slot = (cell * (hm * wm) + pos).reshape(-1)

    @torch.no_grad()
    def __call__(self, seed_feats: torch.Tensor) -> torch.Tensor:
        """Label (H, W) long of the nearest candidate seed of every pixel."""
        self.assign(seed_feats)
        return self.labels()

    @torch.no_grad()
    def assign(self, seed_feats: torch.Tensor) -> None:
        """Assign every pixel to its nearest candidate seed; read the result with :meth:`labels`
        or :meth:`cluster_sums` (the cached layout maps labels back to pixels only when asked)."""
        if not self.cached:
            self._last = assign_local(self.z, seed_feats, self.grid, self.radius, extra=self.extra)
            return
        nb = seed_feats[self.ids]  # (K, R, C)
        # |z|^2 is the same for all candidates of a pixel: minimise |s|^2 - 2 z.s
        sq = (nb * nb).sum(-1).masked_fill(self.invalid, float("inf"))[:, :, None]
        d = torch.baddbmm(sq, nb, self.zc_t, alpha=-2.0)  # (K, R, M)
        self._best = d.min(1).indices  # first minimum; ten times faster than argmin over a strided dim on CPU
        self._last = None

    def labels(self) -> torch.Tensor:
        """Pixel labels (H, W) of the last assignment."""
        if self._last is None:
            if self._best is None:
                raise RuntimeError("no assignment yet: call assign() first")
            labels = self.ids.gather(1, self._best).reshape(-1)[self.pixel_slot]
            self._last = labels.reshape(self.shape)
        return self._last

    @torch.no_grad()
    def cluster_sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of the features (K, C) and pixel count (K,) of every seed in the last assignment.

        The cached layout sums per cell with a one-hot batched matrix product,
        then adds the K x R partial sums, which avoids a contended scatter over
        all pixels; the tiled fallback uses :func:`label_sums`.
        """
        n_seeds = self.grid.n_seeds
        if not self.cached:
            parts = [t for t in (self.z, self.extra) if t is not None]
            return label_sums(parts, self.labels(), n_seeds)
        if self._best is None:
            raise RuntimeError("no assignment yet: call assign() first")
        c, r = self.zc_t.shape[1], self.ids.shape[1]
        k, m = self._best.shape
        onehot = self.zc_t.new_zeros(k, r, m).scatter_(1, self._best[:, None], self.slot_weight)  # (K, R, M)
        part = torch.bmm(self.zc_t, onehot.transpose(1, 2))  # (K, C, R)
        flat_ids = self.ids.reshape(-1)
        sums = self.zc_t.new_zeros(n_seeds, c).index_add_(0, flat_ids, part.transpose(1, 2).reshape(-1, c))
        counts = self.zc_t.new_zeros(n_seeds).index_add_(0, flat_ids, onehot.sum(2).reshape(-1))
        return sums, counts


@torch.no_grad()
def assign_global(z: torch.Tensor, seed_feats: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Hard global assignment (paper Eq. 6-7): every pixel against every seed, in pixel chunks."""
    _, c, h, w = z.shape
    flat = z[0].reshape(c, -1).t()
    s_norm = (seed_feats * seed_feats).sum(1)
    out = torch.empty(flat.shape[0], dtype=torch.long, device=z.device)
    for i in range(0, flat.shape[0], chunk):
        part = flat[i : i + chunk]
        d = s_norm[None, :] - 2.0 * part @ seed_feats.t()
        out[i : i + chunk] = d.argmin(1)
    return out.reshape(h, w)


def cluster_pixels(
    z: torch.Tensor,
    seed_feats: torch.Tensor,
    grid: SeedGrid,
    refine_steps: int = 0,
    spatial_weight: float = 0.0,
    assignment: str = "local",
    seed_rows: torch.Tensor | None = None,
    seed_cols: torch.Tensor | None = None,
    colour: torch.Tensor | None = None,
    colour_weight: float = 0.0,
) -> torch.Tensor:
    """Hard clustering of the pixels: the non-iterative pass, then optional centre updates.

    The first pass assigns every pixel to the seed nearest in the embedding
    (the argmax of the Student-t kernel, paper Eq. 6-7), among the seeds of the
    neighbouring cells (``assignment="local"``) or all seeds (``"global"``).
    Each of the ``refine_steps`` updates then replaces every seed by the mean
    of its pixels and reassigns them (within the same candidates) under the distance

    ``|z_i - z_k|^2 + spatial_weight * (((r_i - r_k) / cell_h)^2 + ((c_i - c_k) / cell_w)^2)
    + colour_weight * |x_i - x_k|^2``

    where ``(r_k, c_k)`` is the centroid of seed ``k`` and ``x`` the optional
    ``colour`` features: the learned embedding decides, the position term, in
    grid-cell units as in SLIC [1]_, keeps the superpixels compact whatever
    ``K``, and the pixel's own colour sharpens boundaries that the embedding
    blurs. A seed that owns no pixel keeps its previous centre (its own
    position and colour after the first pass).

    Parameters
    ----------
    z : (1, C, H, W) tensor
        Embedding.
    seed_feats : (K, C) tensor
        Seed features in grid raster order (``K = grid.n_seeds``).
    grid : SeedGrid
    refine_steps : int
        Number of centre updates (0: the paper's single pass).
    spatial_weight : float
        Weight of the squared position distance in cell units (>= 0), used by
        the updates only.
    assignment : {"local", "global"}
    seed_rows, seed_cols : (K,) tensors, optional
        Seed positions in pixels (default: the cell centres); the position of
        a seed that wins no pixel in the first pass.
    colour : (1, Cc, H, W) tensor, optional
        Extra pixel features (e.g. CIE-Lab) whose squared distance, times
        ``colour_weight``, is added in the updates.
    colour_weight : float
        Weight of the ``colour`` distance (>= 0).

    Returns
    -------
    labels : (H, W) long tensor
        Seed index of every pixel.

    References
    ----------
    .. [1] R. Achanta et al., "SLIC Superpixels Compared to State-of-the-Art
           Superpixel Methods", TPAMI 2012.
    """
    if assignment not in ("local", "global"):
        raise ValueError(f"assignment must be 'local' or 'global', got {assignment!r}")
    _, c, h, w = z.shape
    steps = int(refine_steps)
    extra, fallback = None, seed_feats  # fallback: the centre of a seed that wins no pixel
    if steps > 0 and (spatial_weight > 0 or (colour is not None and colour_weight > 0)):
        if seed_rows is None or seed_cols is None:
            centre_r, centre_c = grid.centres(z.device, z.dtype)
            seed_rows = centre_r[:, None].expand(grid.rows, grid.cols).reshape(-1)
            seed_cols = centre_c[None, :].expand(grid.rows, grid.cols).reshape(-1)
        parts, at_seeds = [], []  # channels used by the updates only, and their values at the seeds
        if colour is not None and colour_weight > 0:
            colour = colour.to(z.dtype) * math.sqrt(float(colour_weight))
            parts.append(colour)
            at_seeds.append(sample_seeds(colour, seed_rows, seed_cols))
        if spatial_weight > 0:
            scale = math.sqrt(float(spatial_weight))
            rr = torch.arange(h, device=z.device, dtype=z.dtype) * (scale / grid.cell_h)
            cc = torch.arange(w, device=z.device, dtype=z.dtype) * (scale / grid.cell_w)
            parts.append(torch.stack([rr[:, None].expand(h, w), cc[None, :].expand(h, w)])[None])
            at_seeds.append(torch.stack([seed_rows / grid.cell_h, seed_cols / grid.cell_w], 1) * scale)
        # channels-last like z, so that the cell layout gathers whole pixel rows
        extra = torch.empty((1, sum(t.shape[1] for t in parts), h, w), device=z.device, dtype=z.dtype,
                            memory_format=torch.channels_last)
        torch.cat(parts, 1, out=extra)
        fallback = torch.cat([seed_feats] + at_seeds, 1)
        # the first pass gives the seeds zero extra features: since the per-pixel
        # |z|^2 term is omitted from the comparison, it then ignores those channels
        seed_feats = torch.cat([seed_feats, seed_feats.new_zeros(seed_feats.shape[0], extra.shape[1])], 1)
    features = [z] if extra is None else [z, extra]
    if assignment == "global":
        zg = torch.cat(features, 1)
        labels = assign_global(zg, seed_feats)
        seeds = fallback
        for _ in range(steps):
            sums, counts = label_sums(features, labels, grid.n_seeds)
            seeds = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], seeds)
            labels = assign_global(zg, seeds)
        return labels
    assigner = LocalAssigner(z, grid, extra=extra)
    assigner.assign(seed_feats)
    seeds = fallback
    for _ in range(steps):
        sums, counts = assigner.cluster_sums()
        seeds = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], seeds)
        assigner.assign(seeds)
    return assigner.labels()


def sample_seeds(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``z`` (1, C, H, W) at continuous pixel positions -> (K, C)."""
    _, c, h, w = z.shape
    gx = cols / max(w - 1, 1) * 2.0 - 1.0 if w > 1 else torch.zeros_like(cols)
    gy = rows / max(h - 1, 1) * 2.0 - 1.0 if h > 1 else torch.zeros_like(rows)
    g = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2).to(z.dtype)
    out = F.grid_sample(z, g, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, 0].t()


def window_seeds(
    z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, half_h: float, half_w: float
) -> torch.Tensor:
    """Mean of ``z`` (1, C, H, W) over boxes centred at continuous positions -> (K, C).

    The box around seed ``k`` spans ``[rows_k - half_h, rows_k + half_h] x
    [cols_k - half_w, cols_k + half_w]`` in pixel coordinates (pixel ``i``
    covers ``[i - 0.5, i + 0.5]``), clipped to the image. The integral is read
    from the summed-area table by bilinear interpolation, which is exact for
    fractional box edges, so the result is differentiable with respect to
    ``z`` and to the positions, and costs O(N + K) whatever the box size.
    With the box of one grid cell and no offset this is the mean embedding of
    the cell.
    """
    _, c, h, w = z.shape
    r0 = (rows - half_h + 0.5).clamp(0, h)
    r1 = (rows + half_h + 0.5).clamp(0, h)
    c0 = (cols - half_w + 0.5).clamp(0, w)
    c1 = (cols + half_w + 0.5).clamp(0, w)
    gy = torch.stack([r0, r0, r1, r1]) / max(h, 1) * 2.0 - 1.0  # (4, K) in SAT index space
    gx = torch.stack([c0, c1, c0, c1]) / max(w, 1) * 2.0 - 1.0
    g = torch.stack([gx, gy], dim=-1).unsqueeze(0).to(z.dtype)  # (1, 4, K, 2)
    area = ((r1 - r0) * (c1 - c0)).clamp_min(1e-6)
    # Channels in chunks of about 2^24 values bound the memory of the summed-area
    # tables on large images; subtracting each channel's mean keeps the float32
    # sums small, hence exact enough.
    step = max(1, (1 << 24) // max(1, h * w))
    out = []
    for first in range(0, c, step):
        # NCHW layout: cumulative sums along rows and columns of channels-last data are strided and slower
        part = z[:, first : first + step].contiguous(memory_format=torch.contiguous_format)
        mean = part.mean(dim=(2, 3), keepdim=True)
        sat = F.pad((part - mean).cumsum(2).cumsum(3), (1, 0, 1, 0))  # sat[.., j, i] = sum of z[:j, :i]
        corners = F.grid_sample(sat, g, mode="bilinear", padding_mode="border", align_corners=True)[0]  # (c, 4, K)
        total = corners[:, 3] - corners[:, 1] - corners[:, 2] + corners[:, 0]
        out.append(total / area + mean[0, :, 0])
    return torch.cat(out, 0).t()


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
        grid = seed_grid(x.shape[2], x.shape[3], n_segments)
        rows, cols = self.seed_positions(z, grid, use_sel)
        return {"z": z, "grid": grid, "seed_rows": rows, "seed_cols": cols, "seed_feats": self.seed_features(z, rows, cols, grid)}
