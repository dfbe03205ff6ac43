"""Large images as dask arrays: NumPy, dask, Zarr (arrays, stores, OME-Zarr) and TIFF opened lazily."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["as_dask_image", "open_array", "ome_zarr_level0"]


def ome_zarr_level0(path: Path) -> Path:
    """The full-resolution array of an OME-Zarr image (``multiscales[0].datasets[0].path``), else ``path``."""
    for name in ("zarr.json", ".zattrs"):
        meta = path / name
        if meta.is_file():
            attrs = json.loads(meta.read_text())
            attrs = attrs.get("attributes", attrs)  # Zarr v3 keeps them under "attributes"
            attrs = attrs.get("ome", attrs)  # OME-NGFF 0.5 under "ome", 0.4 at the top
            scales = attrs.get("multiscales")
            if scales:
                return path / scales[0]["datasets"][0]["path"]
    return path


def _open_path(path: Path):
    import dask.array as da

    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: '{path}'")
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile
        import zarr

        # tifffile exposes the pages as a Zarr store: chunks are read on demand, never the whole file.
        return da.from_zarr(zarr.open(tifffile.imread(path, aszarr=True), mode="r"))
    if path.is_dir():
        return da.from_zarr(str(ome_zarr_level0(path)))
    if path.suffix.lower() == ".npy":
        return da.from_array(np.load(path, mmap_mode="r"))
    from ..io import read_image

    return da.from_array(read_image(path))


def open_array(data: Any):
    """A dask array of ``data``: an array (NumPy, dask, Zarr) or a path (see :func:`as_dask_image`)."""
    import dask.array as da

    if isinstance(data, (str, os.PathLike)):
        return _open_path(Path(data))
    if isinstance(data, da.Array):
        return data
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        return da.from_array(data)
    raise TypeError(f"data must be an array or a path, got {type(data).__name__}")


def as_dask_image(data: Any, chunks: int, channel_axis: int | None = -1):
    """``(H, W)`` or ``(H, W, C)`` dask array chunked ``chunks`` x ``chunks`` in space, channels in one chunk.

    Parameters
    ----------
    data : ndarray, dask array, zarr array, or path
        A path may be a Zarr folder, an OME-Zarr image (level 0 is used), a
        TIFF (read lazily through tifffile's Zarr store), a ``.npy`` (memory
        mapped) or any image :func:`clusterseg.io.read_image` reads.
    chunks : int
        Spatial chunk side in pixels.
    channel_axis : int or None
        Axis of the colour channels (moved last); ``None`` for grey.
    """
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 16:
        raise ValueError(f"chunks must be an integer >= 16 pixels, got {chunks!r}")
    import dask.array as da

    array = open_array(data)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected a 2-D image (H, W) or (H, W, C), got shape {array.shape}")
    if channel_axis is not None and array.ndim == 3:
        array = da.moveaxis(array, channel_axis, -1)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels last, got shape {array.shape}")
    if min(array.shape[:2]) == 0:
        raise ValueError(f"image is empty (shape {array.shape})")
    spatial = (int(chunks), int(chunks))
    return array.rechunk(spatial + ((array.shape[2],) if array.ndim == 3 else ()))
