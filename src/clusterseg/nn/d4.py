"""The 8 symmetries of the square (dihedral group D4) on ``(..., H, W)`` tensors.

A symmetry is a pair ``(quarter_turns, flip)``: flip the last axis first (if
``flip``), then rotate by ``quarter_turns`` x 90 degrees in the (H, W) plane.
Used for training augmentation and test-time augmentation; flips and
rotations are exact permutations, so :func:`invert_d4` restores a tensor
bit for bit.
"""

from __future__ import annotations

import torch

__all__ = ["d4_transforms", "apply_d4", "invert_d4"]


def d4_transforms() -> list[tuple[int, bool]]:
    """The 8 symmetries as ``(quarter_turns, flip)`` pairs, identity first."""
    return [(k, flip) for flip in (False, True) for k in range(4)]


def apply_d4(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``x`` flipped along its last axis (if ``flip``), then turned ``k`` quarter turns."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x


def invert_d4(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The inverse of :func:`apply_d4` with the same ``(k, flip)``."""
    if k % 4:
        x = torch.rot90(x, -k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x
