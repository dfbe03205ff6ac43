"""Per-image scores to one number: the mean, or the best over ground truths / images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Aggregate = Literal["mean", "best"] | None


def aggregate(values: Sequence[float] | np.ndarray, how: Aggregate, *, higher_is_better: bool = True):
    """``how=None``: the values as an array; ``"mean"``; ``"best"`` (max, or min when lower is better)."""
    values = np.asarray(values, dtype=float)
    if how is None:
        return values
    if how == "mean":
        return float(values.mean())
    if how == "best":
        return float(values.max() if higher_is_better else values.min())
    raise ValueError(f"aggregate must be 'mean', 'best' or None, got {how!r}")
