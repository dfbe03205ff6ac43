"""LNSNet's training objective (Zhu et al. [1]_), shared by the lifelong trainer and test-time adaptation.

:func:`lnsnet_losses` is a pure function of the network and one image's
tensors: the range-limited clustering loss, the spatial reconstruction and
seed-centroid terms, the optional range regulariser and this project's
homogeneity term (see ``docs/lnsnet_training.md``).

References
----------
.. [1] L. Zhu, Q. She, B. Zhang, Y. Lu, Z. Lu, D. Li, J. Hu, "Learning the
       Superpixel in a Non-iterative and Lifelong Manner", CVPR 2021.
"""

from __future__ import annotations

import math

import torch

from .lnsnet import LNSNet, local_candidates, student_t_kernel
from .losses import (
    homogeneity_loss,
    inner_window_mask,
    range_limited_clustering_loss,
    range_regulariser,
    reconstruction_loss,
    seed_centroid_loss,
    soft_assignment,
)

__all__ = ["lnsnet_losses", "set_phase", "range_radius", "DEFAULT_HOMOGENEITY_WEIGHT", "DEFAULT_COMPACTNESS"]

# The trainer's default objective (the paper's plus the homogeneity loss, see
# docs/lnsnet_training.md); test-time adaptation uses the same.
DEFAULT_HOMOGENEITY_WEIGHT = 1.0
DEFAULT_COMPACTNESS = 0.1


def range_radius(n_range: int) -> int:
    """Half-width in grid cells of the ``n_range`` (= (2r+1)^2) range mask."""
    r = (math.isqrt(n_range) - 1) // 2
    if n_range < 1 or (2 * r + 1) ** 2 != n_range:
        raise ValueError(f"n_range must be the square of an odd number (9, 25, ...), got {n_range}")
    return r


def lnsnet_losses(
    model: LNSNet,
    x: torch.Tensor,
    boundary: torch.Tensor | None,
    n_segments: int,
    *,
    phase: str = "feature",
    beta: float = 10.0,
    phi: float = 1.0,
    n_range: int = 9,
    reg_weight: float = 0.0,
    seed_weight: float = 1.0,
    gal: bool = True,
    gbl: bool = True,
    seed_layer: bool = True,
    homogeneity_weight: float = 0.0,
    compactness: float = DEFAULT_COMPACTNESS,
    cluster_weight: float = 1.0,
    z: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All LNSNet training losses for one iteration on one image.

    Parameters
    ----------
    model : LNSNet
    x : (1, 5, H, W) tensor
        Standardised Lab+xy features (also the reconstruction target).
    boundary : (H, W) tensor or None
        Edge probability in [0, 1] for GBL (ignored when ``gbl=False``).
    n_segments : int
        Number of grid seeds.
    phase : {"feature", "seed"}
        ``"feature"``: ``L = L_c + l(P) + beta L_r`` (Eq. 13) through the embedder.
        ``"seed"``: embedder evaluated without gradient; ``L = L_c + l(P) +
        seed_weight * L_seed`` flows into the seed layer only (through the
        bilinearly sampled seed features and the centroid term).
    beta, phi : float
        Loss weights of Eq. 13 and 18.
    n_range : int
        Range mask size ``n`` (nearest ``n`` grid seeds; 9 = 3x3 cells).
    reg_weight : float
        Weight of the regulariser ``l(P)`` of Eq. 17 (computed against the ring
        of cells just outside the range; 0 disables it and halves the cost).
    seed_weight : float
        Weight of the seed-centroid loss in the seed phase.
    gal, gbl, seed_layer : bool
        Enable the GAL, GBL and seed estimation layer (ablation switches).
    homogeneity_weight : float
        Weight of :func:`~clusterseg.nn.losses.homogeneity_loss` (both phases):
        colour and position reconstructed from the soft superpixel means of the
        range-limited assignment. 0 is the paper's objective.
    compactness : float
        Weight of the position (in cell units) against the standardised Lab
        colour inside the homogeneity loss.
    cluster_weight : float
        Weight of the clustering loss ``L_c`` (1 in the paper; 0 leaves the
        assignment to the homogeneity loss alone, for ablation).
    z : (1, C, H, W) tensor, optional
        Precomputed embedding for the seed phase (the embedder is frozen there).

    Returns
    -------
    dict of scalar tensors: ``total``, ``cluster``, ``reg``, ``recon``, ``seed``,
    ``homogeneity``, ``shift``.
    """
    inner = range_radius(n_range)
    radius = inner + 1 if reg_weight > 0 else inner
    zero = x.new_zeros(())
    if phase == "feature":
        z = model.fem(x)
        if gal:
            z = model.gal(z, model.recon.strength())
    elif phase == "seed":
        if z is None:
            with torch.no_grad():
                z = model.fem(x)
    else:
        raise ValueError(f"phase must be 'feature' or 'seed', got {phase!r}")
    grid, rows, cols, seeds = model.place_seeds(z, n_segments, seed_layer)
    d, idx, valid = local_candidates(z, seeds, grid, radius)
    kernel = torch.where(valid, student_t_kernel(torch.where(valid, d, torch.zeros_like(d)), model.alpha), torch.zeros_like(d))
    in_range = inner_window_mask(radius, inner, x.device)[:, None, None] & valid
    l_c = range_limited_clustering_loss(kernel, idx, in_range, grid.n_seeds)
    l_reg = range_regulariser(kernel, in_range) if reg_weight > 0 else zero
    total = cluster_weight * l_c + reg_weight * l_reg
    l_r = zero
    l_s = zero
    l_h = zero
    use_seed_loss = phase == "seed" and seed_layer
    if homogeneity_weight > 0 or use_seed_loss:  # both need the soft assignment and the pixel grid
        p_range = soft_assignment(kernel) * in_range
        pr = torch.arange(grid.height, device=x.device, dtype=x.dtype)[:, None].expand(grid.height, grid.width)
        pc = torch.arange(grid.width, device=x.device, dtype=x.dtype)[None, :].expand(grid.height, grid.width)
    if homogeneity_weight > 0:
        w_pos = math.sqrt(compactness)
        target = torch.cat([x[0, :3], torch.stack([pr / grid.cell_h, pc / grid.cell_w]) * w_pos])
        l_h = homogeneity_loss(p_range, idx, grid.n_seeds, target)
        total = total + homogeneity_weight * l_h
    if phase == "feature":
        xr = model.recon(z)
        if gbl and boundary is not None:
            xr = model.gbl(xr, boundary)
        l_r = reconstruction_loss(xr, x, phi)
        total = total + beta * l_r
    elif use_seed_loss:
        l_s = seed_centroid_loss(rows, cols, p_range, idx, pr, pc, grid.cell_h, grid.cell_w)
        total = total + seed_weight * l_s
    with torch.no_grad():
        cr, cc = grid.centres(x.device, x.dtype)
        shift = torch.sqrt(
            ((rows.view(grid.rows, grid.cols) - cr[:, None]) / grid.cell_h) ** 2
            + ((cols.view(grid.rows, grid.cols) - cc[None, :]) / grid.cell_w) ** 2
        ).mean()
    return {"total": total, "cluster": l_c, "reg": l_reg, "recon": l_r, "seed": l_s, "homogeneity": l_h,
            "shift": shift}


def set_phase(model: LNSNet, phase: str) -> None:
    """Freeze the seed layer (``"feature"`` phase) or the embedder and decoder (``"seed"`` phase)."""
    feature = phase == "feature"
    for p in model.fem.parameters():
        p.requires_grad_(feature)
    for p in model.recon.parameters():
        p.requires_grad_(feature)
    for p in model.sel.parameters():
        p.requires_grad_(not feature)
