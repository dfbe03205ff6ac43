"""Instances and superpixels of images larger than one machine's memory, on dask.

Each chunk is processed with a halo (``dask.array.overlap``), keeps ids that
are unique per chunk, and is stored once (in the cluster's memory, or in a
temporary Zarr array next to ``out``). Objects cut by chunk borders are then
joined by :mod:`clusterseg.distributed.merge` and everything is renumbered
``1..n`` (instances) or ``0..n-1`` (superpixels) over the whole image.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .merge import border_pairs, merge_labels
from .sources import as_dask_image

__all__ = ["instances", "superpixels", "ID_STRIDE"]

#: Largest side run through the network at once inside a chunk (larger chunks are tiled; memory).
MAX_TILE = 4096

#: Block-unique ids before the global relabelling: ``block_index * ID_STRIDE + local_id``.
ID_STRIDE = 1 << 32


# ----------------------------------------------------------------- per-chunk work (runs on workers)
@functools.lru_cache(maxsize=4)
def _worker_model(reference: str):
    """The instance model of a name or path, loaded once per worker process."""
    from ..instances.api import load_instance_model

    return load_instance_model(reference)


def _block_index(block_info: dict) -> int:
    location, counts = block_info[None]["chunk-location"], block_info[None]["num-chunks"]
    return int(location[0]) * int(counts[1]) + int(location[1])


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Torch intra-op threads set to ``n`` for the block (restored after), so tasks do not oversubscribe cores."""
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _instances_block(block: np.ndarray, model: Any, options: dict, threads: int | None, block_info=None) -> np.ndarray:
    net = _worker_model(model) if isinstance(model, str) else model
    with torch_threads(threads):
        labels, _ = net.segment(block, channel_axis=-1 if block.ndim == 3 else None, **options)
    return np.where(labels > 0, labels.astype(np.int64) + _block_index(block_info) * ID_STRIDE, 0)


def _superpixels_block(block: np.ndarray, segment_size: float, method: str, options: dict, threads: int | None,
                       block_info=None) -> np.ndarray:
    from ..superpixels.api import superpixels as superpixels_2d

    n_segments = max(1, min(block.shape[0] * block.shape[1], round(block.shape[0] * block.shape[1] / segment_size)))
    with torch_threads(threads):
        labels = superpixels_2d(block, n_segments, method=method, channel_axis=-1 if block.ndim == 3 else None,
                                **options)
    return labels.astype(np.int64) + 1 + _block_index(block_info) * ID_STRIDE


def _split_cut_segments(core: np.ndarray) -> np.ndarray:
    """Superpixels cut by the halo trim can fall apart inside a chunk: give each 4-connected part its own id."""
    from skimage.measure import label

    parts = label(core, connectivity=1, background=0)
    ids = np.unique(core[core > 0])
    return np.where(parts > 0, ids.min() + parts - 1 if ids.size else 0, 0).astype(np.int64)


def _positive_ids(block: np.ndarray) -> np.ndarray:
    return np.unique(block[block > 0])


def _relabel(block: np.ndarray, lookup: tuple[np.ndarray, np.ndarray], shift: int, dtype) -> np.ndarray:
    ids, new = lookup
    out = np.zeros(block.shape, dtype)
    inside = block > 0
    out[inside] = new[np.searchsorted(ids, block[inside])] + shift
    return out


# ----------------------------------------------------------------- orchestration (runs on the client)
def _chunk_sizes(size: int, chunk: int, depth: int) -> tuple[int, ...]:
    """``chunk``-sized pieces, the last merged into its neighbour when thinner than the halo."""
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else [])
    if len(sizes) > 1 and sizes[-1] < depth:
        sizes[-2] += sizes.pop()
    return tuple(sizes)


def _labels_per_chunk(image, chunks: int, depth: int, block_function, *args, out: Path | None, client):
    """Run ``block_function(block, *args)`` on every chunk with its halo; store the results once.

    Returns the stored ``(H + halos, W + halos)`` block-unique labels and the
    temporary Zarr folder holding them (``None`` when persisted in memory).
    """
    import dask.array as da

    image = image.rechunk((_chunk_sizes(image.shape[0], chunks, depth), _chunk_sizes(image.shape[1], chunks, depth))
                          + image.chunks[2:])
    depths = {0: depth, 1: depth, **({2: 0} if image.ndim == 3 else {})}
    padded = da.overlap.overlap(image, depth=depths, boundary="reflect")
    blocks = padded.map_blocks(block_function, *args, dtype=np.int64, drop_axis=[2] if padded.ndim == 3 else [],
                               chunks=padded.chunks[:2])
    return _store(blocks, out, client)


def _scheduler(client):
    return client if client is not None else "threads"


def _store(blocks, out: Path | None, client):
    """Compute the per-chunk labels once: persisted in memory, or in a temporary Zarr array next to ``out``."""
    import dask.array as da

    if out is None:
        return (client.persist(blocks) if client is not None else blocks.persist(scheduler="threads")), None
    tmp = out.with_name(out.name + ".chunks-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with _local_scheduler(client):
        blocks.to_zarr(str(tmp))
    return da.from_zarr(str(tmp)), tmp


def _border_strips(blocks, depth: int) -> list:
    """Pairs of label strips of the ``2 depth`` pixels around every inner chunk border."""
    rows, cols = blocks.numblocks
    strips = []
    for i in range(rows):
        for j in range(cols):
            if j + 1 < cols:
                strips.append((blocks.blocks[i, j][:, -2 * depth:], blocks.blocks[i, j + 1][:, : 2 * depth]))
            if i + 1 < rows:
                strips.append((blocks.blocks[i, j][-2 * depth:, :], blocks.blocks[i + 1, j][: 2 * depth, :]))
    return strips


def _finish(blocks, depth: int, *, merge: bool, shift: int, min_fraction: float, client, out: Path | None,
            overwrite: bool, tmp: Path | None, split: bool = False):
    """Join objects across borders (``merge``), renumber globally, and return or write the labels."""
    import dask
    import dask.array as da

    core = da.overlap.trim_overlap(blocks, {0: depth, 1: depth}, boundary="reflect")
    if split:
        core = core.map_blocks(_split_cut_segments, dtype=np.int64)
    ids_tasks = [dask.delayed(_positive_ids)(b) for b in core.to_delayed().ravel()]
    strips = _border_strips(blocks, depth) if merge else []
    ids, strips = dask.compute(ids_tasks, strips, scheduler=_scheduler(client))
    ids = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)
    pairs = [border_pairs(a, b, min_fraction) for a, b in strips]
    new = merge_labels(ids, np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64))
    dtype = np.int32 if new.size + shift < np.iinfo(np.int32).max else np.int64
    lookup = dask.delayed((ids, new), pure=True)
    labels = core.map_blocks(_relabel, lookup, shift, dtype, dtype=dtype)
    if out is None:
        return labels
    return _write_zarr(labels, out, overwrite=overwrite, client=client, tmp=tmp)


def _write_zarr(labels, out: Path, *, overwrite: bool, client, tmp: Path | None):
    import dask.array as da

    staging = out.with_name(out.name + ".writing-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with _local_scheduler(client):
            labels.to_zarr(str(staging))
        if out.exists():
            shutil.rmtree(out)  # only reached with overwrite=True (checked before any work)
        os.replace(staging, out)  # the finished array appears at once
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return da.from_zarr(str(out))


@contextlib.contextmanager
def _local_scheduler(client):
    import dask

    if client is not None:
        yield
        return
    with dask.config.set(scheduler="threads"):
        yield


def _check_out(out, overwrite: bool) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    return out


def _global_normalisation(image, net, options: dict) -> dict:
    """The model's percentile normalisation (and ``invert="auto"``, ``modality="auto"``) decided once
    for the whole image.

    Per-chunk percentiles would normalise chunks differently (masks changed by
    up to 10 % IoU on a test image); they are computed instead on a strided
    sample of at most about 4 Mpx. The imaging modality, which picks the
    model's clustering thresholds, is decided on the same sample, so that a
    chunk of bare background does not get other thresholds than its neighbours.
    """
    from .._validation import to_float_rgb
    from ..features import image_modality

    step = max(1, math.ceil(math.sqrt(image.shape[0] * image.shape[1] / 4e6)))
    sample = to_float_rgb(np.asarray(image[::step, ::step].compute(scheduler="threads")),
                          channel_axis=-1 if image.ndim == 3 else None)
    if options.get("modality", "auto") == "auto":
        options = {**options, "modality": image_modality(sample, channel_axis=-1 if image.ndim == 3 else None)}
    if options.get("intensity_range") is not None:
        return options
    low, high = np.percentile(sample, net.percentiles)
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    options = {**options, "intensity_range": (float(low), float(high))}
    if options.get("invert") == "auto":
        normalised = (sample.mean(axis=-1) - low) / max(high - low, 1e-6)
        options["invert"] = bool(np.median(normalised) > 0.5)
    return options


def _suggest_overlap(image, net, options: dict, chunks: int) -> int:
    """Twice the largest object (95th percentile of bounding-box diagonals) seen in the central chunk."""
    rows, cols = image.numblocks[:2]
    sample = np.asarray(image.blocks[rows // 2, cols // 2].compute(scheduler="threads"))
    labels, _ = net.segment(sample, channel_axis=-1 if sample.ndim == 3 else None, **options)
    from scipy import ndimage

    boxes = [b for b in ndimage.find_objects(labels) if b is not None]
    largest = chunks // 2 // 8 * 8
    if not boxes:
        return min(64, largest)
    diagonals = [math.hypot(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes]
    return int(min(largest, max(16, math.ceil(2 * np.percentile(diagonals, 95) / 8) * 8)))


def _check_depth(depth: Any, chunks: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 0 < depth <= chunks // 2:
        raise ValueError(f"overlap must be an integer in [1, chunks / 2 = {chunks // 2}], got {depth!r}")
    return int(depth)


# ----------------------------------------------------------------- public functions
def instances(
    data: Any,
    model: Any = "dsb2018-nuclei",
    *,
    chunks: int = 2048,
    overlap: int | None = None,
    channel_axis: int | None = -1,
    client: Any = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    min_fraction: float = 0.5,
    torch_threads: int | None = 1,
    **options: Any,
):
    """Instance labels of a large image, chunk by chunk on dask, unique over the whole image.

    Every chunk is segmented with a halo of ``overlap`` pixels by
    :meth:`~clusterseg.models.spatial_embedding.SpatialEmbeddingModel.segment`; an
    object crossing a chunk border is seen by both chunks, matched in the
    shared ``2 x overlap`` strip (``min_fraction`` of its pixels there) and
    gets one label.

    Parameters
    ----------
    data : ndarray, dask array, zarr array or path
        ``(H, W)`` or ``(H, W, C)``; a path may be a Zarr or OME-Zarr folder
        (level 0), a TIFF (read lazily), ``.npy`` or an image file.
    model : str, path or SpatialEmbeddingModel
        As for :func:`clusterseg.instances`. Names and paths are loaded once
        per worker; a model object is sent to each worker once.
    chunks : int
        Chunk side in pixels, a multiple of 8.
    overlap : int, optional
        Halo in pixels, rounded up to a multiple of 8 (the network's stride,
        so that every chunk sees the full image's pixel grid); default: twice
        the largest objects (95th percentile) the model finds in the central
        chunk, at most ``chunks / 2``. Intensities are normalised once for
        the whole image (the model's percentiles on a strided sample).
    channel_axis : int or None
        Channel axis of ``data``; ``None`` for grey.
    client : dask.distributed.Client, optional
        Used as is (any scheduler address); default: dask's local threads.
    out : path, optional
        Write the labels to this Zarr array chunk by chunk (atomically: it
        appears when complete) and return it lazily; the per-chunk labels are
        kept in a temporary Zarr array next to it, so nothing holds the whole
        image in memory. Without ``out`` they are persisted in memory.
    overwrite : bool
        Replace an existing ``out``.
    min_fraction : float
        Matching threshold across borders.
    torch_threads : int or None
        Torch threads per chunk task (1: one per worker thread, no
        oversubscription); ``None`` leaves torch's setting.
    **options
        Passed to ``segment`` (``tta``, ``precision``, clustering thresholds...);
        ``tile_size`` defaults to the padded chunk (one network pass per
        chunk, at most :data:`MAX_TILE` pixels a side).

    Returns
    -------
    dask.array.Array of int32 (int64 beyond 2**31 objects), 0 = background.

    Examples
    --------
    >>> labels = instances("slide.ome.zarr", chunks=2048, out="labels.zarr")  # doctest: +SKIP
    """
    out_path = _check_out(out, overwrite)
    image = as_dask_image(data, chunks, channel_axis)
    net = _worker_model(str(model)) if isinstance(model, (str, os.PathLike)) else model
    if isinstance(model, (str, os.PathLike)):
        reference = str(model)  # loaded once per worker process
    else:
        import dask

        reference = dask.delayed(model, pure=True)  # one key: sent to each worker once
    if options.get("intensity_range") is None or options.get("modality", "auto") == "auto":
        options = _global_normalisation(image, net, options)
    if chunks % 8:
        raise ValueError(f"chunks must be a multiple of 8 for instances (the network's stride), got {chunks}")
    if overlap is None:
        depth = _suggest_overlap(image, net, options, chunks)
    else:  # the network's stride is 8: halos of whole cells keep every chunk on the full image's grid
        depth = _check_depth(overlap, chunks) + (-overlap) % 8
    depth = _check_depth(depth, chunks)
    # one network pass per chunk (the largest padded chunk is chunks + 3 depth): tiling a chunk again
    # runs the network on 9 overlapping 1024 tiles per 2048 chunk: about twice the pixels of one pass
    options = {"tile_size": min(MAX_TILE, chunks + 3 * depth), **options}
    blocks, tmp = _labels_per_chunk(image, chunks, depth, _instances_block, reference, options, torch_threads,
                                    out=out_path, client=client)
    return _finish(blocks, depth, merge=True, shift=0, min_fraction=min_fraction, client=client, out=out_path,
                   overwrite=overwrite, tmp=tmp)


def superpixels(
    data: Any,
    *,
    segment_size: float | None = None,
    n_segments: int | None = None,
    method: str = "lnsnet",
    chunks: int = 2048,
    overlap: int | None = None,
    channel_axis: int | None = -1,
    client: Any = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    torch_threads: int | None = 1,
    **options: Any,
):
    """Superpixels of a large image, chunk by chunk on dask, labels ``0..n-1`` unique over the image.

    The count is set by the superpixel size (``segment_size`` pixels, or the
    image area over ``n_segments``), so chunking does not change it. Each
    chunk is segmented with a halo of ``overlap`` pixels (default: one
    superpixel side) by :func:`clusterseg.superpixels`, so superpixels near a
    chunk border take their shape from both sides; they are then cut at the
    border (a superpixel crossing it becomes two) and every 4-connected part
    gets its own label.

    Returns
    -------
    dask.array.Array of int32 (int64 beyond 2**31 superpixels).

    Examples
    --------
    >>> labels = superpixels("big.tif", segment_size=400, chunks=2048)  # doctest: +SKIP
    """
    if (segment_size is None) == (n_segments is None):
        raise ValueError("give exactly one of segment_size (pixels per superpixel) or n_segments")
    out_path = _check_out(out, overwrite)
    image = as_dask_image(data, chunks, channel_axis)
    size = float(segment_size) if segment_size is not None else image.shape[0] * image.shape[1] / int(n_segments)
    if not 1.0 <= size <= image.shape[0] * image.shape[1]:
        raise ValueError(f"segment_size must be between 1 pixel and the image area, got {size:g}")
    depth = _check_depth(overlap if overlap is not None else min(chunks // 2, max(8, math.ceil(math.sqrt(size)))),
                         chunks)
    blocks, tmp = _labels_per_chunk(image, chunks, depth, _superpixels_block, size, method, options, torch_threads,
                                    out=out_path, client=client)
    return _finish(blocks, depth, merge=False, shift=-1, min_fraction=1.0, client=client, out=out_path,
                   overwrite=overwrite, tmp=tmp, split=True)
