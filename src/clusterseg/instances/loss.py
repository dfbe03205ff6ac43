"""Training loss of spatial-embedding instance segmentation (Neven et al. [1]_).

For every image and every true instance ``k`` (mask ``M_k``):

* **instance term**: Lovasz hinge [2]_ of the logits ``2 phi_k(e_i) - 1``
  against ``M_k`` over all pixels, where ``phi_k`` is the Gaussian around the
  instance centre ``C_k`` (mean pixel coordinate of ``M_k``, or the mean
  embedding with ``to_center=False``) with bandwidth ``sigma_k`` = mean of
  the predicted raw sigma over ``M_k``;
* **smoothness term**: ``mean_{i in M_k} (sigma_i - stopgrad(sigma_k))^2``;
* **seed term**: ``foreground_weight * sum_{i in M_k} (seed_i -
  stopgrad(phi_k(e_i)))^2`` on the seed map of the instance's class, plus
  ``sum seed_i^2`` over the pixels not of that class.

The instance and smoothness terms are divided by the number of instances, the
seed term by the number of pixels; the total ``w_instance * L_inst + w_var *
L_var + w_seed * L_seed`` (1, 10, 1 in the paper, foreground weight 10) is
averaged over the batch.

References
----------
.. [1] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
.. [2] M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovasz-softmax loss",
       CVPR 2018.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..nn.lovasz import lovasz_hinge
from ..nn.spatial_embedding import DEFAULT_PIXEL_SIZE, coordinate_grid, decode_output, gaussian_membership

__all__ = ["LossTerms", "SpatialEmbeddingLoss", "instance_masks"]


class LossTerms(NamedTuple):
    """Total loss and its (batch-averaged, unweighted) terms."""

    total: torch.Tensor
    instance: torch.Tensor
    variance: torch.Tensor
    seed: torch.Tensor


def instance_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot masks of the instances of a ``(H, W)`` label map.

    Returns
    -------
    ids : Tensor (K,)
        Instance labels present (0 = background excluded), ascending.
    masks : bool Tensor (K, H*W)
    """
    flat = labels.reshape(-1)
    ids = torch.unique(flat)
    ids = ids[ids != 0]
    return ids, flat[None, :] == ids[:, None]


class SpatialEmbeddingLoss(nn.Module):
    """The loss of [1]_ on raw network outputs.

    Parameters
    ----------
    n_sigma : int
        Bandwidth channels (1 isotropic, 2 per axis).
    w_instance, w_var, w_seed : float
        Weights of the three terms (paper: 1, 10, 1).
    foreground_weight : float
        Weight of the seed regression inside objects (paper: 10).
    to_center : bool
        Centre = mean pixel coordinate of the instance (paper's default); else
        the mean predicted embedding.
    pixel_size : float
        Coordinate units per pixel (must match inference).

    Call
    ----
    ``loss(raw, labels, classes=None) -> LossTerms`` with ``raw`` of shape
    ``(B, 2 + n_sigma + n_classes, H, W)``, ``labels`` an integer ``(B, H, W)``
    instance map (0 = background) and ``classes`` an optional ``(B, H, W)``
    class map (0 = background, ``c`` = seed channel ``c - 1``, ``-1`` = ignore,
    e.g. Cityscapes crowd regions: such pixels count as background of no seed
    map; default: every instance is class 1).
    """

    def __init__(
        self,
        n_sigma: int = 2,
        *,
        w_instance: float = 1.0,
        w_var: float = 10.0,
        w_seed: float = 1.0,
        foreground_weight: float = 10.0,
        to_center: bool = True,
        pixel_size: float = DEFAULT_PIXEL_SIZE,
    ) -> None:
        super().__init__()
        if n_sigma not in (1, 2):
            raise ValueError(f"n_sigma must be 1 or 2, got {n_sigma}")
        self.n_sigma = n_sigma
        self.w_instance, self.w_var, self.w_seed = float(w_instance), float(w_var), float(w_seed)
        self.foreground_weight = float(foreground_weight)
        self.to_center = bool(to_center)
        self.pixel_size = float(pixel_size)

    def forward(self, raw: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor | None = None) -> LossTerms:
        if labels.ndim != 3 or raw.ndim != 4 or labels.shape != (raw.shape[0], *raw.shape[-2:]):
            raise ValueError(f"labels {tuple(labels.shape)} must be (B, H, W) matching raw {tuple(raw.shape)}")
        maps = decode_output(raw, self.n_sigma, pixel_size=self.pixel_size)
        n_classes = maps.seed.shape[1]
        if classes is None:
            classes = (labels > 0).long()
        elif classes.shape != labels.shape:
            raise ValueError(f"classes {tuple(classes.shape)} must match labels {tuple(labels.shape)}")
        if int(classes.max()) > n_classes:
            raise ValueError(f"class id {int(classes.max())} exceeds the {n_classes} seed channels")
        grid = coordinate_grid(*raw.shape[-2:], pixel_size=self.pixel_size, device=raw.device, dtype=raw.dtype)
        grid = grid.reshape(2, -1)
        zero = raw.new_zeros(())
        inst_terms, var_terms, seed_terms = [], [], []
        for b in range(raw.shape[0]):
            emb = maps.embedding[b].reshape(2, -1)
            sig = maps.sigma[b].reshape(self.n_sigma, -1)
            seed = maps.seed[b].reshape(n_classes, -1)
            cls = classes[b].reshape(-1)
            n_pixels = emb.shape[1]
            # Background of each seed map: pixels not of that class.
            seed_loss = sum(
                (seed[c][(cls != c + 1) & (cls >= 0)].square().sum() for c in range(n_classes)), start=zero
            )
            ids, masks = instance_masks(labels[b])
            inst_loss = var_loss = zero
            if ids.numel():
                fm = masks.to(raw.dtype)
                counts = fm.sum(dim=1, keepdim=True)
                source = grid if self.to_center else emb
                centres = fm @ source.T / counts  # (K, 2)
                sigma_k = fm @ sig.T / counts  # (K, n_sigma)
                # sum_{i in k} (sigma_i - m_k)^2 expanded, so no (K, n_sigma, N) tensor is built;
                # m_k is detached, which gives the gradient 2 (sigma_i - m_k) of the paper.
                mean_k = sigma_k.detach()
                var = fm @ sig.square().T - 2 * mean_k * (fm @ sig.T) + counts * mean_k.square()
                var_loss = (var / counts).mean(dim=1).sum()
                phi = gaussian_membership(emb, centres, sigma_k)  # (K, N)
                inst_loss = lovasz_hinge(2.0 * phi - 1.0, masks).sum()
                # The class of each instance (majority over its pixels).
                if n_classes == 1:
                    inst_cls = torch.zeros(ids.numel(), dtype=torch.long, device=raw.device)
                else:
                    inst_cls = torch.stack([torch.mode(cls[m]).values for m in masks]) - 1
                    if int(inst_cls.min()) < 0:
                        raise ValueError("an instance lies on background or ignored pixels of the class map; "
                                         "give every object pixel its class (1..n_classes)")
                seed_fg = (fm * (seed[inst_cls] - phi.detach()).square()).sum()
                seed_loss = seed_loss + self.foreground_weight * seed_fg
                inst_loss = inst_loss / ids.numel()
                var_loss = var_loss / ids.numel()
            seed_loss = seed_loss / n_pixels
            inst_terms.append(inst_loss)
            var_terms.append(var_loss)
            seed_terms.append(seed_loss)
        inst, var, seed = (torch.stack(terms).mean() for terms in (inst_terms, var_terms, seed_terms))
        return LossTerms(self.w_instance * inst + self.w_var * var + self.w_seed * seed, inst, var, seed)
