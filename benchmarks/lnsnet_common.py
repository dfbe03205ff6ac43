"""Shared helpers for the LNSNet benchmark scripts (evaluation on BSDS500)."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone

import numpy as np


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(segment, samples, ks) -> dict:
    """Mean ASA/BR/BP/UE/count/ms over ``samples`` for every K; ``segment(rgb, k) -> labels``."""
    from clusterseg.metrics import (
        achievable_segmentation_accuracy,
        boundary_precision,
        boundary_recall,
        undersegmentation_error,
    )

    out = {}
    for k in ks:
        rows = []
        for rgb, gts in samples:
            t = time.perf_counter()
            lab = segment(rgb, k)
            ms = 1000 * (time.perf_counter() - t)
            rows.append(
                (
                    achievable_segmentation_accuracy(lab, gts),
                    boundary_recall(lab, gts),
                    boundary_precision(lab, gts),
                    undersegmentation_error(lab, gts),
                    int(lab.max()) + 1,
                    ms,
                )
            )
        a = np.array(rows, dtype=float)
        out[k] = {
            "asa": a[:, 0].mean(),
            "br": a[:, 1].mean(),
            "bp": a[:, 2].mean(),
            "ue": a[:, 3].mean(),
            "count": a[:, 4].mean(),
            "ms": float(np.median(a[:, 5])),
        }
    return out


def load_samples(split: str = "val", limit: int | None = None, ids=None):
    """``[(rgb float32 in [0,1], [gt label maps])]`` from BSDS500."""
    from clusterseg.datasets import bsds500

    samples = []
    for sample in bsds500(split=split, limit=limit):
        image_id, rgb, segs = sample[0], sample[1], sample[2]
        if ids is not None and image_id not in ids:
            continue
        samples.append((np.asarray(rgb, dtype=np.float32) / 255.0, list(segs)))
    return samples
