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

import math
from typing import NamedTuple

import torch
from torch import nn

from ..nn.lovasz import lovasz_hinge_grouped
from ..nn.spatial_embedding import (DEFAULT_PIXEL_SIZE, coordinate_grid, decode_output, gaussian_membership_pairs,
                                    membership_exponent)

__all__ = ["LOVASZ_TOLERANCE", "LossTerms", "SpatialEmbeddingLoss", "instance_masks"]

#: Background pixels whose hinge error ``2 phi_k`` is below this are left out of object ``k``'s
#: Lovasz hinge: the loss changes by less than it (see
#: :func:`clusterseg.nn.lovasz.lovasz_hinge_grouped`), and by exactly 0 when every pixel of the
#: object has a larger error (then the Jaccard increments of the tail are 0).
LOVASZ_TOLERANCE = 1e-5


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
        inst_terms, var_terms, seed_terms = [], [], []
        for b in range(raw.shape[0]):
            terms = self._image_terms(maps.embedding[b].reshape(2, -1), maps.sigma[b].reshape(self.n_sigma, -1),
                                      maps.seed[b].reshape(n_classes, -1), labels[b].reshape(-1),
                                      classes[b].reshape(-1), grid)
            for out, term in zip((inst_terms, var_terms, seed_terms), terms):
                out.append(term)
        inst, var, seed = (torch.stack(terms).mean() for terms in (inst_terms, var_terms, seed_terms))
        return LossTerms(self.w_instance * inst + self.w_var * var + self.w_seed * seed, inst, var, seed)

    def _image_terms(self, emb: torch.Tensor, sig: torch.Tensor, seed: torch.Tensor, labels: torch.Tensor,
                     cls: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Instance, variance and seed terms of one image; maps flattened to ``(C, N)``, labels to ``(N,)``."""
        n_classes, n_pixels = seed.shape
        zero = emb.new_zeros(())
        # Background of each seed map: pixels not of that class.
        seed_loss = sum((seed[c][(cls != c + 1) & (cls >= 0)].square().sum() for c in range(n_classes)), start=zero)
        pixels = torch.nonzero(labels, as_tuple=True)[0]
        if pixels.numel() == 0:
            return zero, zero, seed_loss / n_pixels
        ids, owner = torch.unique(labels[pixels], return_inverse=True)  # owner: object index of each pixel
        n_objects = ids.numel()
        counts = torch.bincount(owner, minlength=n_objects).to(emb.dtype)[:, None]

        def object_sums(values: torch.Tensor) -> torch.Tensor:  # (C, N) -> (K, C)
            return values.new_zeros(n_objects, values.shape[0]).index_add(0, owner, values[:, pixels].T)

        centres = object_sums(grid if self.to_center else emb) / counts  # (K, 2)
        sigma_k = object_sums(sig) / counts  # (K, n_sigma)
        # sum_{i in k} (sigma_i - m_k)^2 expanded; m_k is detached, which gives the gradient
        # 2 (sigma_i - m_k) of the paper.
        mean_k = sigma_k.detach()
        var = object_sums(sig.square()) - 2 * mean_k * object_sums(sig) + counts * mean_k.square()
        var_loss = (var / counts).mean(dim=1).sum()
        inst_loss, phi_own = self._instance_loss(emb, centres, sigma_k, pixels, owner, counts[:, 0])
        inst_cls = _object_classes(cls[pixels], owner, n_objects, n_classes)
        seed_fg = (seed[inst_cls[owner], pixels] - phi_own).square().sum()
        seed_loss = seed_loss + self.foreground_weight * seed_fg
        return inst_loss / n_objects, var_loss / n_objects, seed_loss / n_pixels

    @staticmethod
    def _instance_loss(emb, centres, sigma_k, pixels, owner, counts) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum over objects of the Lovasz hinge of ``2 phi_k - 1``, and ``phi`` of each object pixel for
        its own object (detached, the seed target).

        A background pixel far from an object in embedding space has ``phi_k`` ~ 0, a hinge error
        ``2 phi_k`` ~ 0, and sorts last: only the pairs with ``2 phi_k`` above
        :data:`LOVASZ_TOLERANCE` enter (with every object's own pixels), so the loss of an object
        changes by less than the tolerance while the sort shrinks from (objects x pixels) to a few
        per cent of it.
        """
        with torch.no_grad():
            exponent = membership_exponent(emb.detach(), centres.detach(), sigma_k.detach())
            near = exponent < math.log(2.0 / LOVASZ_TOLERANCE)  # (K, N): 2 phi > tolerance
            near[owner, pixels] = False
            k_near, i_near = torch.nonzero(near, as_tuple=True)
        k, i = torch.cat([owner, k_near]), torch.cat([pixels, i_near])
        inside = torch.arange(k.numel(), device=k.device) < pixels.numel()
        phi = gaussian_membership_pairs(emb, centres, sigma_k, k, i)
        loss = lovasz_hinge_grouped(2.0 * phi - 1.0, inside, k, counts).sum()
        return loss, phi[: pixels.numel()].detach()


def _object_classes(cls: torch.Tensor, owner: torch.Tensor, n_objects: int, n_classes: int) -> torch.Tensor:
    """Seed map of each object: its majority class id (1..n_classes) minus 1."""
    if n_classes == 1:
        return torch.zeros(n_objects, dtype=torch.long, device=cls.device)
    # Votes per (object, class id + 1) for class ids -1..n_classes; ties go to the lower id.
    columns = n_classes + 2
    votes = torch.bincount(owner * columns + cls.long() + 1, minlength=n_objects * columns)
    inst_cls = votes.view(n_objects, columns).argmax(dim=1) - 2
    if int(inst_cls.min()) < 0:
        raise ValueError("an instance lies on background or ignored pixels of the class map; "
                         "give every object pixel its class (1..n_classes)")
    return inst_cls
