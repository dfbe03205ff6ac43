"""The regular seed grid of LNSNet: ``rows x cols`` nearly square cells over an image.

Shared by the network (:mod:`clusterseg.nn.lnsnet`) and the pixel-to-seed
assignment (:mod:`clusterseg.nn.lnsnet_assignment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SeedGrid", "seed_grid"]


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

