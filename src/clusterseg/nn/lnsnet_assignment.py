"""Pixel-to-seed assignment of LNSNet: Student-t clustering, local and global (Zhu et al. [1]_).

The default *local* assignment compares each pixel only with the seeds of the
3x3 grid cells around its own cell, so time and memory are O(N) and
independent of the number of seeds; the paper's *global* N x K assignment is
kept for ablation. :class:`LocalAssigner` gathers the pixels once into a
padded per-cell layout for repeated assignments, and :func:`cluster_pixels`
runs the paper's single pass followed by optional centre updates (local
k-means in the embedding plus position and colour terms; this project's
measured default at inference). :func:`sample_seeds` and :func:`window_seeds`
read seed features from the embedding.

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu. "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .seed_grid import SeedGrid

__all__ = [
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
    z: torch.Tensor, seed_feats: torch.Tensor, grid: SeedGrid, radius: int, a0: int, a1: int
):
    """Distances in the padded per-cell layout.

    Returns ``d`` (nr, cols, R, Hm, Wm), seed ids and validity (nr, cols, R).
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


def _nearest(sq_dist: torch.Tensor, dim: int) -> torch.Tensor:
    """Index (int32) of the smallest of the non-negative squared distances along ``dim``.

    ``min(dim).indices`` reduces over a short strided dimension about thirty
    times slower than a plain minimum on CPU, so the candidate index is
    written into the lowest mantissa bits of every distance (non-negative
    floats order like their bit patterns) and one integer minimum returns it.
    With the 9 candidates of a 3x3 window (4 bits), float32 distances closer
    than about 2e-6 relative count as tied; ties go to the lower index.
    ``sq_dist`` may be overwritten.
    """
    n = sq_dist.shape[dim]
    if sq_dist.dtype not in _SAME_SIZE_INT:
        sq_dist = sq_dist.float()  # 16-bit floats have too few mantissa bits to spare
    int_dtype = _SAME_SIZE_INT[sq_dist.dtype]
    bits = max(1, (n - 1).bit_length())
    if bits > 8:
        return sq_dist.min(dim).indices.int()
    shape = [1] * sq_dist.dim()
    shape[dim] = n
    index = torch.arange(n, device=sq_dist.device, dtype=int_dtype).view(shape)
    packed = sq_dist.clamp_min_(0).view(int_dtype)  # rounding can leave tiny negatives
    return packed.bitwise_and_(-(1 << bits)).bitwise_or_(index).amin(dim).bitwise_and_((1 << bits) - 1).int()


_SAME_SIZE_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


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
        d, ids, valid, _ = _cell_distances(tile, seed_feats, grid, radius, a0, a1)
        best = _nearest(d.masked_fill_(~valid[:, :, :, None, None], float("inf")), 2).long()
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
    and a minimum over the ``(2r+1)^2`` candidates. Every pixel carries two
    more channels, ``1`` and ``|z|^2``, so that the product with the seed rows
    ``(-2 s, |s|^2, 1)`` is the squared distance itself and the per-cell sums
    count the pixels. Images whose layout would exceed ``max_cached`` values
    are assigned in row tiles by :func:`assign_local` on every call instead
    (bounded memory).

    Parameters
    ----------
    z : (1, C, H, W) tensor
    grid : SeedGrid
    radius : int
        Window radius in cells.
    max_cached : int
        Largest cached layout, in tensor elements.
    extra : (1, E, H, W) tensor, optional
        Pixel features after the channels of ``z`` (not concatenated in memory).

    Examples
    --------
    >>> from clusterseg.nn.seed_grid import seed_grid
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
        self.channels = c + (0 if extra is None else extra.shape[1])
        rfirst, rsizes, rtable = _cell_layout(grid.height, grid.rows, z.device)
        cfirst, csizes, ctable = _cell_layout(grid.width, grid.cols, z.device)
        hm, wm = rtable.shape[1], ctable.shape[1]
        self.shape = (h, w)
        self.cached = grid.n_seeds * hm * wm * (self.channels + 2) <= max_cached
        self._best = self._last = None
        self._totals = None  # (best, sums) of the last cluster_sums, updated incrementally
        if not self.cached:  # tiled fallback, without concatenating the whole images
            self.z, self.extra = z, extra
            return
        flat = (rtable[:, None, :, None] * w + ctable[None, :, None, :]).reshape(-1)  # (rows, cols, Hm, Wm)
        # slots of the padded layout that hold a pixel of their own cell (not a repeat)
        u, v = torch.arange(hm, device=z.device), torch.arange(wm, device=z.device)
        in_cell = (u[None, :, None] < rsizes[:, None, None])[:, None] & (v[None, None, :] < csizes[:, None, None])[None]
        self.slot_weight = in_cell.reshape(grid.n_seeds, 1, hm * wm).to(z.dtype)  # (K, 1, M)
        self.zc = self._gather(z, extra, flat, hm * wm)  # (K, M, C + 2)
        _, ids, valid = _neighbour_seeds(torch.zeros(grid.n_seeds, 1, device=z.device), grid, self.radius, 0, grid.rows)
        self.ids = ids.reshape(grid.n_seeds, -1)  # (K, R)
        self.invalid = ~valid.reshape(grid.n_seeds, -1)
        # flat position in the (K, M) layout of every pixel
        r = torch.arange(h, device=z.device)
        cidx = torch.arange(w, device=z.device)
        ar, ac = r * grid.rows // grid.height, cidx * grid.cols // grid.width
        cell = ar[:, None] * grid.cols + ac[None, :]
        pos = (r - rfirst[ar])[:, None] * wm + (cidx - cfirst[ac])[None, :]
        self.pixel_slot = (cell * (hm * wm) + pos).reshape(-1)

    def _gather(self, z, extra, flat, m: int) -> torch.Tensor:
        """Pixels in the per-cell layout (K, M, C + 2): the features, then ``slot_weight`` and ``|features|^2``."""
        k, c = self.grid.n_seeds, self.channels
        zc = torch.empty((k, m, c + 2), device=z.device, dtype=z.dtype)
        zc[:, :, c].fill_(1.0)  # weighted by slot_weight in the sums: pixel counts come with the features
        zc[:, :, c + 1].fill_(0.0)  # fill_: assigning a Python scalar to a strided column is ten times slower
        first = 0
        for part in (z, extra):
            if part is None:
                continue
            pc = part.shape[1]
            pt = part[0].permute(1, 2, 0).reshape(-1, pc).to(z.dtype)  # a view for channels-last input
            # index_select: twice as fast as pt[flat] here
            zc[:, :, first : first + pc] = pt.index_select(0, flat).reshape(k, m, pc)
            zc[:, :, c + 1] += (pt * pt).sum(1).index_select(0, flat).reshape(k, m)
            first += pc
        return zc

    @torch.no_grad()
    def __call__(self, seed_feats: torch.Tensor) -> torch.Tensor:
        """Label (H, W) long of the nearest candidate seed of every pixel."""
        self.assign(seed_feats)
        return self.labels()

    @torch.no_grad()
    def assign(self, seed_feats: torch.Tensor) -> None:
        """Assign every pixel to its nearest candidate seed; read the result with :meth:`labels`
        or :meth:`cluster_sums` (the cached layout maps labels back to pixels only when asked).

        ``seed_feats`` (K, C') may have fewer columns than the pixel features:
        the missing ones count as zero, which adds the same ``|x|^2`` of those
        pixel channels to every candidate of a pixel, so they are ignored.
        """
        missing = self.channels - seed_feats.shape[1]
        if missing > 0:
            seed_feats = torch.cat([seed_feats, seed_feats.new_zeros(seed_feats.shape[0], missing)], 1)
        if not self.cached:
            self._last = assign_local(self.z, seed_feats, self.grid, self.radius, extra=self.extra)
            return
        sq = (seed_feats * seed_feats).sum(1, keepdim=True)
        rows = torch.cat([seed_feats * -2.0, sq, torch.ones_like(sq)], 1)[self.ids]  # (K, R, C + 2)
        rows[:, :, -2].masked_fill_(self.invalid, float("inf"))
        d = torch.bmm(rows, self.zc.transpose(1, 2))  # (K, R, M) squared distances
        self._best = _nearest(d, 1)
        self._last = None

    def labels(self) -> torch.Tensor:
        """Pixel labels (H, W) of the last assignment."""
        if self._last is None:
            if self._best is None:
                raise RuntimeError("no assignment yet: call assign() first")
            labels = self.ids.gather(1, self._best.long()).reshape(-1)[self.pixel_slot]
            self._last = labels.reshape(self.shape)
        return self._last

    @torch.no_grad()
    def cluster_sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of the features (K, C) and pixel count (K,) of every seed in the last assignment.

        The cached layout sums per cell with a one-hot batched matrix product,
        then adds the K x R partial sums, which avoids a contended scatter over
        all pixels. Later calls only move the pixels whose seed changed since
        the previous call (a few per cent after the first centre updates) from
        one sum to the other. The tiled fallback uses :func:`label_sums`.
        """
        n_seeds = self.grid.n_seeds
        if not self.cached:
            parts = [t for t in (self.z, self.extra) if t is not None]
            return label_sums(parts, self.labels(), n_seeds)
        if self._best is None:
            raise RuntimeError("no assignment yet: call assign() first")
        moved = None
        if self._totals is not None:
            moved = (self._best != self._totals[0]) & (self.slot_weight[:, 0] > 0)
        # moving pixels one by one beats summing them all while fewer than about a tenth moved
        if moved is None or int(moved.sum()) * 10 > moved.numel():
            sums = self._full_sums()
        else:
            sums = self._moved_sums(moved, *self._totals)
        self._totals = (self._best, sums)
        return sums[:, : self.channels], sums[:, self.channels]

    def _full_sums(self) -> torch.Tensor:
        """Sums (K, C + 2) of the pixel rows of every seed (the weighted count in column C)."""
        k, m = self._best.shape
        r = self.ids.shape[1]
        onehot = self.zc.new_zeros(k, r, m).scatter_(1, self._best[:, None].long(), self.slot_weight)  # (K, R, M)
        part = torch.bmm(onehot, self.zc)  # (K, R, C + 2)
        return self.zc.new_zeros(k, self.zc.shape[2]).index_add_(0, self.ids.reshape(-1), part.reshape(k * r, -1))

    def _moved_sums(self, moved: torch.Tensor, before: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
        """``sums`` of the assignment ``before`` (K, M) updated to the current one (a new tensor);
        ``moved`` marks the pixels whose seed changed."""
        cell, slot = torch.nonzero(moved, as_tuple=True)
        if cell.numel() == 0:
            return sums
        rows = self.zc.view(-1, self.zc.shape[2]).index_select(0, cell * self.zc.shape[1] + slot)  # (P, C + 2)
        gained, lost = self.ids[cell, self._best[cell, slot].long()], self.ids[cell, before[cell, slot].long()]
        return sums.index_add(0, gained, rows).index_add_(0, lost, rows, alpha=-1)


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
    backend: str = "auto",
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
    backend : {"auto", "compiled", "torch"}
        Implementation of the local assignment. ``"compiled"``: the Numba
        kernel of :mod:`clusterseg.nn.lnsnet_kernels` (CPU tensors; one fused
        pass per step, 1.5-2x faster); ``"torch"``: batched matrix products
        (any device); ``"auto"``: compiled for CPU tensors where Numba is
        installed. The two agree except on near-ties (about 99.5 % of pixels).

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
    compiled = assignment == "local" and _use_compiled(backend, z)
    _, c, h, w = z.shape
    steps = int(refine_steps)
    extra, fallback = None, seed_feats  # fallback: the centre of a seed that wins no pixel
    pixel_scales = (None, 0.0, 0.0, 0.0)  # colour, its weight and the row / column scales of the updates
    if steps > 0 and (spatial_weight > 0 or (colour is not None and colour_weight > 0)):
        if seed_rows is None or seed_cols is None:
            centre_r, centre_c = grid.centres(z.device, z.dtype)
            seed_rows = centre_r[:, None].expand(grid.rows, grid.cols).reshape(-1)
            seed_cols = centre_c[None, :].expand(grid.rows, grid.cols).reshape(-1)
        colour_scale = math.sqrt(float(colour_weight)) if colour is not None and colour_weight > 0 else 0.0
        pos_scale = math.sqrt(float(spatial_weight))
        at_seeds = []  # the values of the update-only channels at the seeds
        if colour_scale:
            colour = colour.to(z.dtype)
            at_seeds.append(sample_seeds(colour, seed_rows, seed_cols) * colour_scale)
        if pos_scale:
            at_seeds.append(torch.stack([seed_rows / grid.cell_h, seed_cols / grid.cell_w], 1) * pos_scale)
        fallback = torch.cat([seed_feats] + at_seeds, 1)
        pixel_scales = (colour if colour_scale else None, colour_scale, pos_scale / grid.cell_h, pos_scale / grid.cell_w)
        if not compiled:  # the compiled kernel stacks z and these channels itself
            extra = _update_channels(z, *pixel_scales)
        if assignment == "global":
            # the first pass gives the seeds zero extra features: since the per-pixel
            # |z|^2 term is omitted from the comparison, it then ignores those channels
            # (LocalAssigner.assign does the same for seed features without them)
            seed_feats = torch.cat([seed_feats, seed_feats.new_zeros(seed_feats.shape[0], extra.shape[1])], 1)
    if compiled:
        from .lnsnet_kernels import local_kmeans

        return local_kmeans(z, seed_feats, fallback, grid, steps, *pixel_scales)
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


def _update_channels(z: torch.Tensor, colour, colour_scale: float, row_scale: float, col_scale: float) -> torch.Tensor:
    """The pixel channels of the centre updates beyond ``z``: ``colour * colour_scale`` and the
    scaled row and column (when their scales are > 0), channels-last like ``z``, so that the cell
    layout of :class:`LocalAssigner` gathers whole pixel rows."""
    h, w = z.shape[2:]
    parts = [colour * colour_scale] if colour is not None else []
    if row_scale > 0:
        rr = torch.arange(h, device=z.device, dtype=z.dtype) * row_scale
        cc = torch.arange(w, device=z.device, dtype=z.dtype) * col_scale
        parts.append(torch.stack([rr[:, None].expand(h, w), cc[None, :].expand(h, w)])[None])
    extra = torch.empty((1, sum(t.shape[1] for t in parts), h, w), device=z.device, dtype=z.dtype,
                        memory_format=torch.channels_last)
    return torch.cat(parts, 1, out=extra)


def _use_compiled(backend: str, z: torch.Tensor) -> bool:
    """Whether :func:`cluster_pixels` runs the compiled CPU kernel for ``backend`` and ``z``."""
    from . import lnsnet_kernels

    if backend not in ("auto", "compiled", "torch"):
        raise ValueError(f"backend must be 'auto', 'compiled' or 'torch', got {backend!r}")
    usable = lnsnet_kernels.runs_on(z)
    if backend == "compiled" and not usable:
        why = "Numba is not installed" if not lnsnet_kernels.available() else f"z is on {z.device}"
        raise ValueError(f"backend='compiled' needs a CPU tensor and Numba: {why}")
    return backend != "torch" and usable


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
    covers ``[i - 0.5, i + 0.5]``), clipped to the image; pixels cut by the box
    edges count with the fraction of them inside it. Each box sum is read from
    prefix sums along the image rows (linear between pixel edges) over the
    ``ceil(2 half_h) + 2`` rows the box can touch, weighted by their overlap with
    the box: the bilinearly interpolated summed-area table, exact for
    fractional box edges, at a third of the cost of building the table. The
    result is differentiable with respect to ``z`` and to the positions, and
    costs O(N + K half_h). With the box of one grid cell and no offset this is
    the mean embedding of the cell. Without gradients, on the CPU, the compiled
    :func:`clusterseg.nn.lnsnet_kernels.window_means` sums the boxes directly
    (the same values, four times faster).
    """
    from . import lnsnet_kernels

    if lnsnet_kernels.runs_on(z, rows, cols):
        return lnsnet_kernels.window_means(z, rows, cols, half_h, half_w).to(z.dtype)
    _, c, h, w = z.shape
    r0 = (rows - half_h + 0.5).clamp(0, h)
    r1 = (rows + half_h + 0.5).clamp(0, h)
    c0 = (cols - half_w + 0.5).clamp(0, w)
    c1 = (cols + half_w + 0.5).clamp(0, w)
    area = ((r1 - r0) * (c1 - c0)).clamp_min(1e-6)
    n_rows = int(math.ceil(2 * half_h)) + 2
    i = r0.detach().floor()[:, None] + torch.arange(n_rows, device=z.device, dtype=z.dtype)  # (K, n) rows
    row_weight = (torch.minimum(i + 1, r1[:, None]) - torch.maximum(i, r0[:, None])).clamp_min(0)[:, :, None]
    at0, frac0 = _prefix_index(c0, i, h, w)
    at1, frac1 = _prefix_index(c1, i, h, w)
    # channels in chunks of about 2^24 values bound the memory of the prefix sums on large images
    step = max(1, (1 << 24) // max(1, h * w))
    pixels = z[0].permute(1, 2, 0)  # (H, W, C): a view for channels-last z
    out = []
    for first in range(0, c, step):
        part = pixels[:, :, first : first + step]
        mean = part.mean(dim=(0, 1))  # centred sums stay small, so float32 prefix sums are exact enough
        prefix = F.pad((part - mean).cumsum(1), (0, 0, 1, 0)).reshape(h * (w + 1), -1)  # sums left of each column

        def left_of(at, frac):  # (K, n, C) sums of the rows over [0, column)
            return prefix[at] * (1 - frac) + prefix[at + 1] * frac

        total = (row_weight * (left_of(at1, frac1) - left_of(at0, frac0))).sum(1)
        out.append(total / area[:, None] + mean)
    return torch.cat(out, 1)


def _prefix_index(cols: torch.Tensor, rows: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat index into an (H, W+1) prefix table of the column left of ``cols`` (K,) in rows (K, n), and the fraction."""
    j = cols.detach().floor().clamp(max=w - 1)
    frac = (cols - j)[:, None, None]
    return rows.clamp(max=h - 1).long() * (w + 1) + j.long()[:, None], frac
