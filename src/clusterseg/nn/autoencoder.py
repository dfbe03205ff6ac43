"""SuperAE: the superpixel-wise convolutional autoencoder of Deep Superpixel Cut.

A small fully-convolutional autoencoder trained per image with
``||x - x^R||^2 + lambda * sum_j sum_{i in S_j} ||x^R_i - v_j||^2``
(see :func:`clusterseg.graph.superpixel_smoothing_loss`) so that the
reconstruction is smoothed inside superpixels; its encoder provides the deep
features used by DSC [1]_. The slides do not give the architecture; clusterseg
uses one stride-2 level with a full-resolution skip (a two-level U-Net) so
that features see a 10-15 pixel neighbourhood while staying cheap on CPU.

References
----------
.. [1] Lin, Q., Zhong, W., & Lu, J. (2021). Deep Superpixel Cut for
       Unsupervised Image Segmentation. arXiv:2103.06031.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SuperAE"]


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SuperAE(nn.Module):
    """Convolutional autoencoder returning features and a reconstruction.

    ``forward(x)``: (B, C, H, W) -> ``(features (B, D, H, W), recon (B, C, H, W))``.
    Any H, W (odd sizes are handled by interpolation).

    Parameters
    ----------
    in_channels : int
    n_features : int
        Embedding dimension D.
    width : int
        Hidden width.
    """

    def __init__(self, in_channels: int = 3, n_features: int = 32, width: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.n_features = n_features
        self.stem = _cbr(in_channels, width)
        self.down = nn.Sequential(_cbr(width, width, stride=2), _cbr(width, width))
        self.fuse = nn.Sequential(_cbr(2 * width, width), nn.Conv2d(width, n_features, 1), nn.BatchNorm2d(n_features))
        self.decoder = nn.Sequential(
            nn.Conv2d(n_features, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, in_channels, 3, padding=1)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, D, H, W)."""
        s = self.stem(x)
        d = F.interpolate(self.down(s), size=s.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([s, d], dim=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encode(x)
        return f, self.decoder(f)
