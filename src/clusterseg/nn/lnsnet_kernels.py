"""Compiled CPU kernels of LNSNet inference (Numba): local k-means and seed window means.

:func:`clusterseg.nn.lnsnet_assignment.cluster_pixels` with ``assignment="local"``
compares every pixel with the seeds of the 3x3 grid cells around its own cell
(the paper's clustering layer restricted to a window, Zhu et al. [1]_), then
runs SLIC-like centre updates [2]_. In PyTorch each pass is a batched matrix
product over a padded per-cell copy of the pixels plus gathers and scatters,
all memory-bound passes over ``(H, W, C)`` tensors. Here one compiled pass per
step does it all: for each cell it loads the 9 candidate seeds once, assigns
each of its pixels to the nearest one (exact squared distances, ties to the
lower candidate), and moves only the pixels whose seed changed between
per-(cell, candidate) sums, so the next centres cost ``O(K)``. No padded copy
is made and memory is ``O(N)`` on any image size.

:func:`window_means` is the inference path of
:func:`clusterseg.nn.lnsnet_assignment.window_seeds`: the same box means,
summed directly over the about ``N`` pixels the boxes cover instead of
through prefix sums over the whole image.

The kernels are serial (:mod:`clusterseg._jit`: what a Dask worker runs;
results do not depend on the thread count). Labels agree with the PyTorch path
except where two candidates are equally near up to float32 rounding (the
PyTorch path rounds ``|z|^2 - 2 z.s + |s|^2``; this kernel sums ``(z - s)^2``).

References
----------
.. [1] L. Zhu et al., "Learning the Superpixel in a Non-iterative and Lifelong
       Manner", CVPR 2021.
.. [2] R. Achanta et al., "SLIC Superpixels Compared to State-of-the-Art
       Superpixel Methods", TPAMI 2012.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .._jit import available, jit
from .lnsnet_assignment import _cell_layout

__all__ = ["available", "runs_on", "local_kmeans", "window_means", "adaptive_means", "instance_norm_relu_",
           "lab_xy_input", "absorb_isolated_pixels",
           "rgb_to_lab_tables"]


def runs_on(*tensors: torch.Tensor) -> bool:
    """Whether the compiled kernels can stand in for the PyTorch code on ``tensors``: Numba is
    installed, and they are CPU tensors that need no gradient (the kernels are inference only)."""
    return available() and all(t.device.type == "cpu" and not t.requires_grad for t in tensors)


def _assign_pass(f, row0, cell_lo, cell_hi, rfirst, cfirst, candidates, seeds, n_dist, slot, cell_sums,
                 first):  # pragma: no cover - compiled
    """Assign the pixels of cells ``cell_lo..cell_hi - 1`` to the nearest of the 3x3 candidate seeds of their cell.

    ``f`` holds the features of the image rows from ``row0`` on (the rows of
    those cells); distances use its first ``n_dist`` features. ``slot`` (H, W)
    int8 holds the candidate (0..8, raster order of the 3x3 window) of every
    pixel; ``cell_sums`` (K, 9, F + 1) the feature sums and pixel counts of the
    pixels of each cell per candidate. ``first``: ``slot`` holds nothing yet, add every pixel.
    """
    nf = f.shape[2]
    grid_cols = cfirst.shape[0] - 1
    for cell in range(cell_lo, cell_hi):
        ar = cell // grid_cols
        ac = cell - ar * grid_cols
        cand = np.zeros((9, nf), np.float32)
        bias = np.full(9, np.inf, np.float32)  # inf: the candidate cell is outside the grid
        for q in range(9):
            k = candidates[cell, q]
            if k >= 0:
                bias[q] = 0.0
                for j in range(nf):
                    cand[q, j] = seeds[k, j]
        acc = cell_sums[cell]
        for r in range(rfirst[ar], rfirst[ar + 1]):
            for c in range(cfirst[ac], cfirst[ac + 1]):
                best = np.inf
                bq = 0
                for q in range(9):
                    d = bias[q]
                    for j in range(n_dist):  # a run-time bound: Numba vectorises this loop
                        t = f[r - row0, c, j] - cand[q, j]
                        d += t * t
                    if d < best:
                        best = d
                        bq = q
                old = slot[r, c]
                if first or old != bq:
                    if not first:
                        for j in range(nf):
                            acc[old, j] -= f[r - row0, c, j]
                        acc[old, nf] -= 1.0
                    for j in range(nf):
                        acc[bq, j] += f[r - row0, c, j]
                    acc[bq, nf] += 1.0
                    slot[r, c] = bq


def _seed_sums(cell_sums, candidates):  # pragma: no cover - compiled
    """Per-seed sums (K, F + 1) of the per-(cell, candidate) sums (K, 9, F + 1), in a fixed order."""
    n_cells, _, nf = cell_sums.shape
    out = np.zeros((n_cells, nf), np.float64)
    for cell in range(n_cells):
        for q in range(9):
            k = candidates[cell, q]
            if k >= 0:
                for j in range(nf):
                    out[k, j] += cell_sums[cell, q, j]
    return out


def _candidate_seeds(grid_rows: int, grid_cols: int) -> np.ndarray:
    """Seed index (K, 9) of the 3x3 cells around every cell, raster order of the window; -1 outside the grid."""
    rows, cols = np.divmod(np.arange(grid_rows * grid_cols), grid_cols)
    dr, dc = np.divmod(np.arange(9), 3)
    rr, cc = rows[:, None] + dr[None] - 1, cols[:, None] + dc[None] - 1
    inside = (rr >= 0) & (rr < grid_rows) & (cc >= 0) & (cc < grid_cols)
    return np.where(inside, rr * grid_cols + cc, -1)


def _window_means(z, rows, cols, half_h, half_w):  # pragma: no cover - compiled
    """Means (K, C) of ``z`` (H, W, C) over the boxes ``rows +- half_h`` x ``cols +- half_w``,
    pixels cut by a box edge weighted by the fraction inside it."""
    h, w, nc = z.shape
    out = np.empty((rows.shape[0], nc), np.float32)
    acc = np.empty(nc, np.float64)
    for k in range(rows.shape[0]):
        r0 = min(max(rows[k] - half_h + 0.5, 0.0), h)  # pixel i covers [i, i + 1] here
        r1 = min(max(rows[k] + half_h + 0.5, 0.0), h)
        c0 = min(max(cols[k] - half_w + 0.5, 0.0), w)
        c1 = min(max(cols[k] + half_w + 0.5, 0.0), w)
        acc[:] = 0.0
        for i in range(int(np.floor(r0)), min(h, int(np.ceil(r1)))):
            wr = min(i + 1.0, r1) - max(float(i), r0)
            if wr <= 0:
                continue
            for j in range(int(np.floor(c0)), min(w, int(np.ceil(c1)))):
                wt = wr * (min(j + 1.0, c1) - max(float(j), c0))
                if wt <= 0:
                    continue
                for ch in range(nc):
                    acc[ch] += wt * z[i, j, ch]
        area = (r1 - r0) * (c1 - c0)
        if area <= 1e-12:  # a box outside the image: the nearest pixel
            i = min(max(int(np.floor(rows[k] + 0.5)), 0), h - 1)
            j = min(max(int(np.floor(cols[k] + 0.5)), 0), w - 1)
            for ch in range(nc):
                out[k, ch] = z[i, j, ch]
            continue
        for ch in range(nc):
            out[k, ch] = acc[ch] / area
    return out


def _stack(z, colour, colour_scale, row0, row_scale, col_scale, out):  # pragma: no cover - compiled
    """``out`` (h, W, F) = [z, colour * colour_scale, row * row_scale, col * col_scale] per pixel of the
    h rows of ``z`` and ``colour``, image rows ``row0..row0 + h - 1`` (the colour channels when ``colour``
    has any, the position ones when ``row_scale > 0``)."""
    h, w, nz = z.shape
    nc = colour.shape[2]
    for r in range(h):
        pr = np.float32((r + row0) * row_scale)
        for c in range(w):
            for j in range(nz):
                out[r, c, j] = z[r, c, j]
            for j in range(nc):
                out[r, c, nz + j] = colour[r, c, j] * np.float32(colour_scale)
            if row_scale > 0:
                out[r, c, nz + nc] = pr
                out[r, c, nz + nc + 1] = np.float32(c * col_scale)


def _adaptive_means(z, rows, cols):  # pragma: no cover - compiled
    """Means (rows, cols, C) of ``z`` (H, W, C) over the bins of ``adaptive_avg_pool2d``:
    bin ``i`` spans ``floor(i H / rows)`` to ``ceil((i + 1) H / rows)``."""
    h, w, nc = z.shape
    out = np.empty((rows, cols, nc), np.float32)
    acc = np.empty(nc, np.float64)
    for i in range(rows):
        r0, r1 = (i * h) // rows, -((-(i + 1) * h) // rows)
        for k in range(cols):
            c0, c1 = (k * w) // cols, -((-(k + 1) * w) // cols)
            acc[:] = 0.0
            for r in range(r0, r1):
                for c in range(c0, c1):
                    for ch in range(nc):
                        acc[ch] += z[r, c, ch]
            n = (r1 - r0) * (c1 - c0)
            for ch in range(nc):
                out[i, k, ch] = acc[ch] / n
    return out


def _channel_moments(p):  # pragma: no cover - compiled
    """Mean and variance (C,) float64 of every channel of ``p`` (H, W, C) in two passes (the mean, then
    the centred squares), summed in float32 along a row and in float64 over the rows."""
    h, w, nc = p.shape
    row = np.zeros(nc, np.float32)
    total = np.zeros(nc, np.float64)
    for r in range(h):
        row[:] = 0.0
        for c in range(w):
            for j in range(nc):
                row[j] += p[r, c, j]
        total += row
    mean = (total / (h * w)).astype(np.float32)
    total[:] = 0.0
    for r in range(h):
        row[:] = 0.0
        for c in range(w):
            for j in range(nc):
                t = p[r, c, j] - mean[j]
                row[j] += t * t
        total += row
    return mean.astype(np.float64), total / (h * w)


def _scale_shift_relu(p, scale, shift):  # pragma: no cover - compiled
    """In place: ``relu(p * scale + shift)`` per channel of ``p`` (H, W, C)."""
    h, w, nc = p.shape
    for r in range(h):
        for c in range(w):
            for j in range(nc):
                v = p[r, c, j] * scale[j] + shift[j]
                p[r, c, j] = v if v > 0 else np.float32(0.0)


def _lab_xy(lab, scale, shift, ramps, out):  # pragma: no cover - compiled
    """``out`` (H, W, 5): the Lab channels ``lab * scale - shift``, then the row and column ramps
    ``(i / size - 0.5 - mean) * inv`` with ``ramps`` = (row mean, row inv, column mean, column inv)."""
    h, w, _ = lab.shape
    for r in range(h):
        pr = np.float32((r / h - 0.5 - ramps[0]) * ramps[1])
        for c in range(w):
            for j in range(3):
                out[r, c, j] = lab[r, c, j] * scale[j] - shift[j]
            out[r, c, 3] = pr
            out[r, c, 4] = np.float32((c / w - 0.5 - ramps[2]) * ramps[3])


def _absorb(labels, out):  # pragma: no cover - compiled
    """``out`` = ``labels`` except interior pixels whose 4 neighbours all differ from them, which
    take their neighbours' most common label (ties: upper, lower, left, right); returns how many did."""
    h, w = labels.shape
    changed = 0
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            x = labels[r, c]
            up, down, left, right = labels[r - 1, c], labels[r + 1, c], labels[r, c - 1], labels[r, c + 1]
            if up == x or down == x or left == x or right == x:
                continue
            v_up = (up == down) + (up == left) + (up == right)
            v_down = (down == up) + (down == left) + (down == right)
            v_left = (left == up) + (left == down) + (left == right)
            v_right = (right == up) + (right == down) + (right == left)
            best, votes = up, v_up  # the first of the most common, as np.argmax
            if v_down > votes:
                best, votes = down, v_down
            if v_left > votes:
                best, votes = left, v_left
            if v_right > votes:
                best = right
            out[r, c] = best
            changed += 1
    return changed


def _lab_from_tables(rgb, companding, cube_root, matrix, out):  # pragma: no cover - compiled
    """CIE-Lab (H, W, 3) of RGB in [0, 1] with the sRGB companding and the Lab cube root read from
    tables sampled on [0, 1] and linearly interpolated."""
    h, w, _ = rgb.shape
    n1, n2 = companding.shape[0] - 1, cube_root.shape[0] - 1
    linear = np.empty(3, np.float32)
    root = np.empty(3, np.float32)
    for r in range(h):
        for c in range(w):
            for k in range(3):
                x = min(max(rgb[r, c, k], np.float32(0.0)), np.float32(1.0)) * np.float32(n1)
                i = min(int(x), n1 - 1)
                linear[k] = companding[i] + (x - np.float32(i)) * (companding[i + 1] - companding[i])
            for k in range(3):
                v = matrix[k, 0] * linear[0] + matrix[k, 1] * linear[1] + matrix[k, 2] * linear[2]
                x = min(max(v, np.float32(0.0)), np.float32(1.0)) * np.float32(n2)
                i = min(int(x), n2 - 1)
                root[k] = cube_root[i] + (x - np.float32(i)) * (cube_root[i + 1] - cube_root[i])
            out[r, c, 0] = np.float32(116.0) * root[1] - np.float32(16.0)
            out[r, c, 1] = np.float32(500.0) * (root[0] - root[1])
            out[r, c, 2] = np.float32(200.0) * (root[1] - root[2])


def _slot_labels(slot, rfirst, cfirst, candidates):  # pragma: no cover - compiled
    """Seed index (H, W) int64 of every pixel from its candidate slot."""
    h, w = slot.shape
    grid_cols = cfirst.shape[0] - 1
    out = np.empty((h, w), np.int64)
    for cell in range(candidates.shape[0]):
        ar = cell // grid_cols
        ac = cell - ar * grid_cols
        for r in range(rfirst[ar], rfirst[ar + 1]):
            for c in range(cfirst[ac], cfirst[ac + 1]):
                out[r, c] = candidates[cell, slot[r, c]]
    return out


def _cell_starts(n: int, parts: int) -> np.ndarray:
    """First pixel of each of ``parts`` cells along a side of ``n`` pixels, and the end (the cells of
    :func:`clusterseg.nn.lnsnet_assignment.local_candidates`)."""
    return _cell_layout(n, parts)[0].numpy()


#: Pixels whose stacked update features are held at once; larger images are processed in bands
#: of cell rows, re-stacked on every pass (memory stays about that of the embedding itself).
BAND_PIXELS = 1 << 20


def _bands(rfirst: np.ndarray, width: int, limit: int) -> list[tuple[int, int]]:
    """Cell-row ranges ``[a0, a1)`` of at most about ``limit`` pixels each (at least one cell row)."""
    bands, a0 = [], 0
    rows = len(rfirst) - 1
    while a0 < rows:
        a1 = a0 + 1
        while a1 < rows and (rfirst[a1 + 1] - rfirst[a0]) * width <= limit:
            a1 += 1
        bands.append((a0, a1))
        a0 = a1
    return bands


class _UpdateFeatures:
    """The (rows, W, F) pixel features of the updates: ``z`` itself when there is nothing to add, one
    stacked buffer for small images, else the rows of one band of cell rows at a time, re-stacked."""

    def __init__(self, zz, cc, scales: tuple[float, float, float], rfirst: np.ndarray, band_pixels: int):
        h, w, nz = zz.shape
        self.zz, self.cc, self.scales, self.rfirst = zz, cc, scales, rfirst
        self.channels = nz + cc.shape[2] + (2 if scales[1] > 0 else 0)
        self.bands = _bands(rfirst, w, band_pixels)
        if self.channels == nz or len(self.bands) == 1:
            self.bands = [(0, len(rfirst) - 1)]
        rows = max(int(rfirst[a1] - rfirst[a0]) for a0, a1 in self.bands)
        self.buffer = zz if self.channels == nz else np.empty((rows, w, self.channels), np.float32)
        self.stacked = None  # the band whose rows the buffer holds

    def rows(self, a0: int, a1: int):
        """Features of the pixel rows of cell rows ``[a0, a1)`` and the image row they start at."""
        p0, p1 = int(self.rfirst[a0]), int(self.rfirst[a1])
        if self.buffer is self.zz:
            return self.zz[p0:p1], p0
        if self.stacked != (a0, a1):
            colour_scale, row_scale, col_scale = self.scales
            jit(_stack)(self.zz[p0:p1], self.cc[p0:p1], colour_scale, p0, row_scale, col_scale,
                        self.buffer[: p1 - p0])
            self.stacked = (a0, a1)
        return self.buffer[: p1 - p0], p0


@torch.no_grad()
def local_kmeans(z: torch.Tensor, seeds: torch.Tensor, fallback: torch.Tensor, grid, steps: int,
                 colour: torch.Tensor | None = None, colour_scale: float = 0.0, row_scale: float = 0.0,
                 col_scale: float = 0.0, band_pixels: int = BAND_PIXELS) -> torch.Tensor:
    """The single local pass, then ``steps`` centre updates, on the CPU.

    Parameters
    ----------
    z : (1, C, H, W) float32 tensor
        Embedding (channels-last is read in place).
    seeds : (K, C) tensor
        Seed features of the first pass, which compares ``z`` only.
    fallback : (K, F) tensor
        Centre of a seed that owns no pixel (its features, weighted colour and position).
    grid : clusterseg.nn.seed_grid.SeedGrid
    steps : int
    colour, colour_scale, row_scale, col_scale
        The update features beyond ``z``: ``colour`` (1, L, H, W) times
        ``colour_scale`` (if given), then the pixel row times ``row_scale`` and
        column times ``col_scale`` (if ``row_scale > 0``), stacked with ``z``
        pixel by pixel by the kernel.
    band_pixels : int
        Images with more pixels are processed in bands of cell rows (bounded memory).

    Returns
    -------
    labels : (H, W) long tensor
    """
    h, w = z.shape[2:]
    zz = z[0].detach().float().permute(1, 2, 0).contiguous().numpy()  # a view for channels-last input
    rfirst, cfirst = _cell_starts(h, grid.rows), _cell_starts(w, grid.cols)
    features = _UpdateFeatures(zz, _pixels(colour, h, w), (colour_scale, row_scale, col_scale), rfirst, band_pixels)
    nf, candidates = features.channels, _candidate_seeds(grid.rows, grid.cols)
    cell_sums = np.zeros((grid.n_seeds, 9, nf + 1), np.float64)
    slot = np.zeros((h, w), np.int8)

    def one_pass(centres, n_dist, first):
        for a0, a1 in features.bands:
            f, row0 = features.rows(a0, a1)
            jit(_assign_pass)(f, row0, a0 * grid.cols, a1 * grid.cols, rfirst, cfirst, candidates, centres, n_dist,
                              slot, cell_sums, first)

    centres = np.zeros((grid.n_seeds, nf), np.float32)
    centres[:, : seeds.shape[1]] = seeds.detach().float().cpu().numpy()
    one_pass(centres, seeds.shape[1], True)
    centres = fallback.detach().float().cpu().numpy()
    for _ in range(int(steps)):
        sums = jit(_seed_sums)(cell_sums, candidates)
        counts = sums[:, nf:]
        centres = np.where(counts > 0, sums[:, :nf] / np.maximum(counts, 1), centres).astype(np.float32)
        one_pass(centres, nf, False)
    return torch.from_numpy(jit(_slot_labels)(slot, rfirst, cfirst, candidates))


def _pixels(colour: torch.Tensor | None, h: int, w: int) -> np.ndarray:
    """``colour`` (1, L, H, W) as an (H, W, L) float32 array, or an empty (H, W, 0) one."""
    if colour is None:
        return np.zeros((h, w, 0), np.float32)
    return colour[0].detach().float().permute(1, 2, 0).contiguous().numpy()


@torch.no_grad()
def window_means(z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, half_h: float, half_w: float) -> torch.Tensor:
    """Means (K, C) of ``z`` (1, C, H, W) over boxes centred at ``rows``, ``cols`` (K,), in pixels.

    The same values as :func:`clusterseg.nn.lnsnet_assignment.window_seeds`
    (which see), without gradients; channels-last ``z`` is read in place.
    """
    pixels = z[0].detach().float().permute(1, 2, 0).contiguous().numpy()
    means = jit(_window_means)(pixels, rows.detach().double().cpu().numpy(),
                                       cols.detach().double().cpu().numpy(), float(half_h), float(half_w))
    return torch.from_numpy(means)


@torch.no_grad()
def adaptive_means(z: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d(z, (rows, cols))`` of a (1, C, H, W) ``z``, summed
    directly in float64 (channels-last ``z`` is read in place); (1, C, rows, cols) float32."""
    pixels = z[0].detach().float().permute(1, 2, 0).contiguous().numpy()
    return torch.from_numpy(jit(_adaptive_means)(pixels, int(rows), int(cols))).permute(2, 0, 1)[None]


@torch.no_grad()
def instance_norm_relu_(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Instance norm with affine ``weight``, ``bias`` (C,) and ReLU, in place, of a channels-last float32
    CPU ``z`` (1, C, H, W) in three compiled passes (the batch-norm kernel and ReLU take five); returns ``z``."""
    pixels = z[0].permute(1, 2, 0).numpy()
    mean, var = jit(_channel_moments)(pixels)
    scale = weight.detach().double().numpy() / np.sqrt(var + eps)
    shift = bias.detach().double().numpy() - mean * scale
    jit(_scale_shift_relu)(pixels, scale.astype(np.float32), shift.astype(np.float32))
    return z


def lab_xy_input(lab: np.ndarray, eps: float = 1e-4) -> torch.Tensor:
    """The LNSNet input of :func:`clusterseg.features.lab_xy_from_lab` (standardised), as a
    channels-last (1, 5, H, W) float32 tensor written in one compiled pass over ``lab`` (H, W, 3)."""
    lab = np.ascontiguousarray(lab, dtype=np.float32)
    h, w = lab.shape[:2]
    unit = np.array([1 / 128, 1 / 256, 1 / 256])
    mean, var = jit(_channel_moments)(lab)
    std = np.sqrt(var) * unit
    inv = np.where(std > eps, 1.0 / np.maximum(std, eps), 1.0)  # a flat channel is only centred
    ramps = []
    for size in (h, w):  # the coordinate ramps i / size - 0.5, i = 0..size-1, z-scored the same way
        ramp_std = np.sqrt((size * size - 1) / 12.0) / size
        ramps += [(size - 1) / (2.0 * size) - 0.5, 1.0 / ramp_std if ramp_std > eps else 1.0]
    # torch's allocator aligns the buffer as oneDNN's fast convolutions expect (NumPy's may not)
    out = torch.empty((1, 5, h, w), memory_format=torch.channels_last)
    jit(_lab_xy)(lab, (unit * inv).astype(np.float32), (mean * unit * inv).astype(np.float32), np.array(ramps),
                 out[0].permute(1, 2, 0).numpy())
    return out


def absorb_isolated_pixels(labels: np.ndarray) -> np.ndarray:
    """A copy of the (H, W) ``labels`` where every interior pixel whose 4 neighbours all carry
    other labels takes the most common of them (ties: upper, lower, left, right neighbour);
    ``labels`` itself when no pixel is isolated."""
    out = labels.copy()
    return out if jit(_absorb)(labels, out) else labels


@functools.cache
def _lab_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float32 tables of the sRGB companding (4,097 samples) and the Lab cube root (16,385) on [0, 1],
    and the RGB -> XYZ / white matrix."""
    from ..features import _RGB_TO_XYZ_WHITE

    t = np.linspace(0.0, 1.0, 4097)
    companding = np.where(t > 0.04045, ((t + 0.055) / 1.055) ** 2.4, t / 12.92)
    t = np.linspace(0.0, 1.0, 16385)
    cube_root = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    return tuple(a.astype(np.float32) for a in (companding, cube_root, np.array(_RGB_TO_XYZ_WHITE)))


def rgb_to_lab_tables(rgb: np.ndarray) -> np.ndarray:
    """:func:`clusterseg.features.rgb_to_lab` with its two curves read from tables (:func:`_lab_tables`),
    linearly interpolated (agrees with :func:`skimage.color.rgb2lab` to about 3e-4 in L, a, b; three
    times as fast); ``rgb`` (H, W, 3) in [0, 1], float32 (H, W, 3) returned."""
    out = np.empty(rgb.shape, np.float32)
    jit(_lab_from_tables)(np.ascontiguousarray(rgb, dtype=np.float32), *_lab_tables(), out)
    return out
