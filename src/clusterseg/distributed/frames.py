"""A fitted SP-WNet applied to every frame of a video or slice of a volume held as a dask array."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["segment_frames"]


def _frame_block(block: np.ndarray, model: Any, channel_axis: int | None, threads: int | None) -> np.ndarray:
    from .arrays import torch_threads

    with torch_threads(threads):
        return np.stack([model.predict(frame, channel_axis=channel_axis) for frame in block])


def segment_frames(
    data: Any,
    model: Any,
    *,
    axis: int = 0,
    channel_axis: int | None = None,
    frames_per_task: int = 1,
    client: Any = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    torch_threads: int | None = 1,
):
    """Class maps ``(T, H, W)`` of every frame / slice, one task per ``frames_per_task`` frames.

    Parameters
    ----------
    data : ndarray, dask array, zarr array or path
        ``(T, H, W)`` grey or ``(T, H, W, C)`` colour frames (``axis``: the
        frame axis, moved first; ``channel_axis``: the colour axis after
        that move, e.g. -1).
    model : SPWNetModel or path
        A fitted model (:func:`clusterseg.unsupervised.fit_sequence_model`) or its file;
        sent to each worker once. One model for all frames, so class ids
        (``0..K-1``) mean the same thing in every frame.
    client, out, overwrite, torch_threads
        As for :func:`clusterseg.distributed.instances`.

    Returns
    -------
    dask.array.Array of int32 ``(T, H, W)``.
    """
    import dask
    import dask.array as da

    from ..unsupervised.spwnet import SPWNetModel
    from .arrays import _check_out, _write_zarr
    from .sources import open_array

    out_path = _check_out(out, overwrite)
    if isinstance(model, (str, os.PathLike)):
        model = SPWNetModel.load(model)
    if not getattr(model, "fitted", False):
        raise ValueError("model must be a fitted SPWNetModel (fit_sequence_model or SPWNetModel.load)")
    frames = da.moveaxis(open_array(data), axis, 0)
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected (T, H, W) or (T, H, W, C) frames, got shape {frames.shape}")
    frames = frames.rechunk((int(frames_per_task),) + frames.shape[1:])
    reference = dask.delayed(model, pure=True)
    labels = frames.map_blocks(_frame_block, reference, channel_axis, torch_threads, dtype=np.int32,
                               drop_axis=[3] if frames.ndim == 4 else [], chunks=frames.chunks[:3])
    if out_path is None:
        return labels
    return _write_zarr(labels, out_path, overwrite=overwrite, client=client, tmp=None)
