"""ERFNet and the branched ERFNet of spatial-embedding instance segmentation.

ERFNet [1]_ is an encoder-decoder built from *non-bottleneck-1D* residual
blocks (factorised 3x1 / 1x3 convolutions, optionally dilated). Neven et al.
[2]_ share one encoder between several decoders ("branched ERFNet"): one
decoder predicts offsets and clustering bandwidths, another the seed maps.
The output stride is 8: inputs must have a height and width divisible by 8
(:class:`BranchedERFNet` pads and crops back itself).

``width`` scales every channel count (16/64/128 at ``width=1``), so that a
small variant trains on a CPU.

References
----------
.. [1] E. Romera, J. M. Alvarez, L. M. Bergasa, R. Arroyo, "ERFNet: Efficient
       residual factorized ConvNet for real-time semantic segmentation",
       IEEE Trans. Intelligent Transportation Systems 19(1), 2018.
.. [2] D. Neven, B. De Brabandere, M. Proesmans, L. Van Gool, "Instance
       segmentation by jointly optimizing spatial embeddings and clustering
       bandwidth", CVPR 2019.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DownsamplerBlock", "NonBottleneck1D", "UpsamplerBlock", "ERFNetEncoder", "ERFNetDecoder", "BranchedERFNet"]

_BN_EPS = 1e-3


class DownsamplerBlock(nn.Module):
    """Halve the resolution: concat(3x3 stride-2 conv, 2x2 max-pool) -> BN -> ReLU.

    Shapes: ``(B, C_in, H, W) -> (B, C_out, H/2, W/2)`` with ``C_out > C_in``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels <= in_channels:
            raise ValueError(f"out_channels ({out_channels}) must exceed in_channels ({in_channels})")
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class NonBottleneck1D(nn.Module):
    """Residual block of two factorised 3x3 convolutions, the second dilated.

    3x1 -> ReLU -> 1x3 -> BN -> ReLU -> dilated 3x1 -> ReLU -> dilated 1x3 ->
    BN -> Dropout2d -> + input -> ReLU. Shape-preserving ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, dropout: float = 0.0, dilation: int = 1) -> None:
        super().__init__()
        d = int(dilation)
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv3x1_1(x))
        y = F.relu(self.bn1(self.conv1x3_1(y)))
        y = F.relu(self.conv3x1_2(y))
        y = self.dropout(self.bn2(self.conv1x3_2(y)))
        return F.relu(y + x)


class UpsamplerBlock(nn.Module):
    """Double the resolution: 3x3 transposed conv (stride 2) -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _channels(width: float) -> tuple[int, int, int]:
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    c1, c2, c3 = (max(4, int(round(c * width))) for c in (16, 64, 128))
    # Downsampler blocks need strictly growing channels.
    return c1, max(c2, c1 + 1), max(c3, max(c2, c1 + 1) + 1)


class ERFNetEncoder(nn.Module):
    """ERFNet encoder: ``(B, C_in, H, W) -> (B, 128*width, H/8, W/8)``.

    Down(16) -> Down(64) -> 5 x NB1D(64, dilation 1) -> Down(128) ->
    2 x [NB1D(128) with dilations 2, 4, 8, 16].
    """

    def __init__(self, in_channels: int = 3, *, width: float = 1.0, dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3 = _channels(width)
        layers: list[nn.Module] = [DownsamplerBlock(in_channels, c1), DownsamplerBlock(c1, c2)]
        layers += [NonBottleneck1D(c2, dropout * 0.1, 1) for _ in range(5)]
        layers.append(DownsamplerBlock(c2, c3))
        for _ in range(2):
            layers += [NonBottleneck1D(c3, dropout, d) for d in (2, 4, 8, 16)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ERFNetDecoder(nn.Module):
    """ERFNet decoder: ``(B, 128*width, H/8, W/8) -> (B, out_channels, H, W)``."""

    def __init__(self, out_channels: int, *, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = _channels(width)
        self.layers = nn.Sequential(
            UpsamplerBlock(c3, c2),
            NonBottleneck1D(c2),
            NonBottleneck1D(c2),
            UpsamplerBlock(c2, c1),
            NonBottleneck1D(c1),
            NonBottleneck1D(c1),
        )
        self.output_conv = nn.ConvTranspose2d(c1, out_channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_conv(self.layers(x))


class BranchedERFNet(nn.Module):
    """One ERFNet encoder shared by several decoders, outputs concatenated [2]_.

    Parameters
    ----------
    branch_channels : sequence of int
        Output channels of each decoder, e.g. ``(4, 1)`` for 2 offset + 2
        sigma channels and one seed map.
    in_channels : int
        Input channels.
    width : float
        Channel multiplier (1.0 = the paper's network, about 2.1 M parameters
        with two branches).
    dropout : float
        Dropout of the deep encoder blocks (0.3 in ERFNet).

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, sum(branch_channels), H, W)`` for any H, W:
    the input is reflect-padded (replicate for tiny inputs) to a multiple of 8
    and the output cropped back.
    """

    stride = 8

    def __init__(
        self,
        branch_channels: Sequence[int] = (4, 1),
        in_channels: int = 3,
        *,
        width: float = 1.0,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        branch_channels = [int(c) for c in branch_channels]
        if not branch_channels or min(branch_channels) < 1:
            raise ValueError(f"branch_channels must be positive integers, got {branch_channels}")
        self.encoder = ERFNetEncoder(in_channels, width=width, dropout=dropout)
        self.decoders = nn.ModuleList(ERFNetDecoder(c, width=width) for c in branch_channels)
        self.branch_channels = tuple(branch_channels)
        self.in_channels = int(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        features = self.encoder(x)
        out = torch.cat([decoder(features) for decoder in self.decoders], dim=1)
        return out[..., :h, :w]
