"""U-Net and W-Net (two stacked U-Nets) for unsupervised segmentation.

Architecture as used by W-Net [1]_ and SP-WNet [2]_: every U-Net has
``n_blocks`` encoder levels and a middle block (``2 ** n_blocks`` total
down-sampling), channel widths ``ch_mul * 2**i``, blocks of
``[conv -> BN -> ReLU] x 2`` with depthwise-separable 3x3 convolutions in the
inner levels and standard convolutions at full resolution, transposed-conv
up-sampling (3x3, stride 2) and skip concatenations. The encoder U-Net maps the
image to K class logits, the decoder U-Net maps ``softmax(logits)`` back to the
image (linear output, no sigmoid). ``ch_mul=64, n_blocks=4`` is the published
size; smaller widths make CPU training feasible.

References
----------
.. [1] Xia, X., & Kulis, B. (2017). W-Net: A Deep Model for Fully Unsupervised
       Image Segmentation. arXiv:1711.08506.
.. [2] Leng, K., et al. (2024). Unsupervised Few-Shot Image Segmentation with
       Dense Feature Learning and Sparse Clustering. VISAPP 2024.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlock", "UNet", "WNet"]


def _conv3x3(cin: int, cout: int, separable: bool) -> nn.Module:
    if separable:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Sequential):
    """``[conv3x3 -> BN -> ReLU] x 2``; (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, separable: bool = False) -> None:
        super().__init__(
            _conv3x3(in_channels, out_channels, separable),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            _conv3x3(out_channels, out_channels, separable),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net: (B, C_in, H, W) -> (B, C_out, H, W); H, W multiples of ``2**n_blocks``.

    Parameters
    ----------
    in_channels, out_channels : int
    ch_mul : int
        Width of the first level (64 in W-Net).
    n_blocks : int
        Number of encoder levels before the middle block (4 in W-Net).
    """

    def __init__(self, in_channels: int, out_channels: int, ch_mul: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        if n_blocks < 1 or ch_mul < 1:
            raise ValueError(f"n_blocks and ch_mul must be >= 1, got {n_blocks}, {ch_mul}")
        widths = [ch_mul * 2**i for i in range(n_blocks + 1)]
        self.n_blocks = n_blocks
        self.enc = nn.ModuleList(
            [ConvBlock(in_channels, widths[0], separable=False)]
            + [ConvBlock(widths[i - 1], widths[i], separable=True) for i in range(1, n_blocks + 1)]
        )
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 3, stride=2, padding=1, output_padding=1)
             for i in reversed(range(n_blocks))]
        )
        self.dec = nn.ModuleList(
            [ConvBlock(2 * widths[i], widths[i], separable=i > 0) for i in reversed(range(n_blocks))]
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        """Spatial size divisor required by the network."""
        return 2**self.n_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"H and W must be multiples of {self.multiple}, got {tuple(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for up, block in zip(self.up, self.dec):
            x = block(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


class WNet(nn.Module):
    """W-Net: encoder U-Net to K logits, decoder U-Net back to the image.

    ``forward(x)`` with x of shape (B, C, H, W) returns ``(logits, recon)`` of
    shapes (B, K, H, W) and (B, C, H, W).

    Parameters
    ----------
    in_channels : int
    n_classes : int
        K.
    ch_mul, n_blocks : int
        U-Net width and depth (published: 64, 4).
    logit_bn : bool
        Standardise logits with a non-affine BatchNorm (not in W-Net; see
        Kanezaki, ICASSP 2018). Used by clusterseg's SP-WNet to avoid collapse
        to a single class in short CPU trainings.

    Examples
    --------
    >>> net = WNet(3, n_classes=4, ch_mul=4, n_blocks=2)
    >>> logits, recon = net(torch.zeros(1, 3, 16, 16))
    >>> tuple(logits.shape), tuple(recon.shape)
    ((1, 4, 16, 16), (1, 3, 16, 16))
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 32, ch_mul: int = 64, n_blocks: int = 4,
                 logit_bn: bool = False) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.encoder = UNet(in_channels, n_classes, ch_mul, n_blocks)
        self.decoder = UNet(n_classes, in_channels, ch_mul, n_blocks)
        # optional non-affine BatchNorm on the logits (Kanezaki 2018): every class channel
        # is standardised over pixels, which stops short trainings collapsing to one class
        self.logit_bn = nn.BatchNorm2d(n_classes, affine=False) if logit_bn else nn.Identity()

    @property
    def multiple(self) -> int:
        return self.encoder.multiple

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, K, H, W)."""
        return self.logit_bn(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.encode(x)
        return logits, self.decoder(torch.softmax(logits, dim=1))
