"""Writing label maps, images and label videos, atomically.

Every writer

* refuses to replace an existing file unless ``overwrite=True`` (the CLI's
  ``--overwrite``), raising :class:`FileExistsError` naming the path;
* creates missing parent folders;
* writes to a temporary file in the destination folder and then moves it into
  place (:func:`os.replace`, or a hard link when not overwriting), so a crash
  never leaves a half-written output under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .._validation import check_image, check_labels

__all__ = ["atomic_write", "write_gif", "write_image", "write_labels", "write_video"]

PathLike = str | os.PathLike


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(
        f"'{path}' already exists; pass overwrite=True (--overwrite on the command line) "
        "to replace it"
    )


def _new_file_mode() -> int:
    """Permission bits a plainly created file would get (0o666 minus the umask).

    ``tempfile.mkstemp`` creates files readable by the owner only; outputs
    should look like any other file the user writes.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no portable read-only query; restore at once
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: PathLike, write: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Write a file atomically through a temporary file in the same folder.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination. Parent folders are created.
    write : callable
        ``write(tmp_path)`` writes the content to ``tmp_path``, which has the
        same extension as ``path`` (so format-by-extension writers work).
    overwrite : bool, optional
        Replace an existing file. If False and ``path`` exists,
        :class:`FileExistsError` is raised and nothing is written.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a directory; expected a file name")
    if path.exists() and not overwrite:
        _refuse_existing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:  # on disk before the rename, so a crash leaves old or new
            os.fsync(fh.fileno())
        mode = path.stat().st_mode & 0o7777 if path.exists() else _new_file_mode()
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:  # link() fails if the destination appeared meanwhile: no clobbering
                os.link(tmp, path)
            except FileExistsError:
                _refuse_existing(path)
            except OSError:  # filesystem without hard links
                if path.exists():
                    _refuse_existing(path)
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --------------------------------------------------------------------------- labels
def write_labels(path: PathLike, labels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save a 2-D integer label map, or a 3-D label volume (``.tif``/``.npy``).

    The format follows the extension:

    * ``.png``: 16-bit greyscale PNG (2-D only); labels must lie in
      [0, 65535] (otherwise a :class:`ValueError` suggests ``.tif`` or ``.npy``);
    * ``.tif``/``.tiff``: uint16 TIFF when the labels fit in [0, 65535],
      otherwise int32 TIFF; a 3-D array is written as a stack of pages
      (read it back with :func:`clusterseg.io.read_volume`);
    * ``.npy``: int32 NumPy array.

    Read back with :func:`clusterseg.io.read_labels`, which returns int32.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    labels : numpy.ndarray
        Integer (or bool) array of shape ``(H, W)`` (or ``(Z, H, W)`` for
        ``.tif``/``.npy``) with values in the int32 range.
    overwrite : bool, optional
        Replace an existing file (default False: :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
        The written path.

    Examples
    --------
    >>> import numpy as np
    >>> write_labels("seg.png", np.zeros((4, 4), dtype=np.int32))  # doctest: +SKIP
    """
    check_labels(labels, ndim=(2, 3))
    path = Path(path)
    suffix = path.suffix.lower()
    if labels.ndim == 3 and suffix == ".png":
        raise ValueError(
            f"cannot write a 3-D label volume {labels.shape} to PNG '{path}'; "
            f"use '{path.with_suffix('.tif')}' or '{path.with_suffix('.npy')}'"
        )
    lo, hi = int(labels.min()), int(labels.max())
    info = np.iinfo(np.int32)
    if lo < info.min or hi > info.max:
        raise ValueError(f"labels range [{lo}, {hi}] does not fit in int32")
    fits16 = lo >= 0 and hi <= 65535

    if suffix == ".png":
        if not fits16:
            raise ValueError(
                f"labels range [{lo}, {hi}] does not fit a 16-bit PNG (0..65535); "
                f"save to '{path.with_suffix('.tif')}' or '{path.with_suffix('.npy')}' instead"
            )
        data = np.ascontiguousarray(labels, dtype=np.uint16)

        def write(tmp: Path) -> None:
            from PIL import Image

            Image.fromarray(data).save(tmp, format="PNG")

    elif suffix in (".tif", ".tiff"):
        data = np.ascontiguousarray(labels, dtype=np.uint16 if fits16 else np.int32)

        def write(tmp: Path) -> None:
            import tifffile

            tifffile.imwrite(tmp, data, photometric="minisblack", compression="zlib")

    elif suffix == ".npy":
        data = np.ascontiguousarray(labels, dtype=np.int32)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, data, allow_pickle=False)

    else:
        raise ValueError(
            f"cannot write labels to '{path}': unsupported extension '{path.suffix}' "
            "(use .png, .tif, .tiff or .npy)"
        )
    return atomic_write(path, write, overwrite=overwrite)


# --------------------------------------------------------------------------- images
def _to_storable(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert a validated image to uint8/uint16 with channels last.

    bool -> uint8 {0, 255}; floats in [0, 1] -> uint8 (rounded); other
    integers kept if they fit uint8 (or uint16), else ValueError.
    """
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    dtype = image.dtype
    if dtype == np.uint8 or dtype == np.uint16:
        return image
    if dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    lo, hi = float(image.min()), float(image.max())
    if dtype.kind == "f":
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float {name} has values in [{lo:g}, {hi:g}]; expected [0, 1] "
                "(rescale it, or convert to uint8/uint16 first)"
            )
        return np.round(image.astype(np.float64) * 255.0).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return image.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        return image.astype(np.uint16)
    raise ValueError(
        f"integer {name} has values in [{int(lo)}, {int(hi)}], outside 0..65535; "
        "rescale it or save it as .tif/.npy"
    )


def write_image(path: PathLike, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save a greyscale, RGB or RGBA image (e.g. a colour label image or overlay).

    ``uint8`` and ``uint16`` arrays are stored as they are; ``bool`` becomes
    0/255, floats in [0, 1] are scaled to uint8, other integer types are
    stored as uint8 (or uint16) when their values fit. ``.tif``/``.tiff`` and
    ``.npy`` store the array unchanged. JPEG and BMP only take uint8 without
    alpha; 16-bit colour PNGs need OpenCV (``opencv`` extra).

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.tif``/``.tiff``
        or ``.npy``).
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` with C in {1, 3, 4}.
    overwrite : bool, optional
        Replace an existing file (default False: :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    check_image(image)
    path = Path(path)
    suffix = path.suffix.lower()

    if suffix == ".npy":

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, image, allow_pickle=False)

    elif suffix in (".tif", ".tiff"):
        data = np.ascontiguousarray(image)

        def write(tmp: Path) -> None:
            import tifffile

            photometric = "rgb" if data.ndim == 3 and data.shape[-1] in (3, 4) else "minisblack"
            tifffile.imwrite(tmp, data, photometric=photometric, compression="zlib")

    elif suffix in (".png", ".jpg", ".jpeg", ".bmp"):
        data = np.ascontiguousarray(_to_storable(image))
        colour16 = data.dtype == np.uint16 and data.ndim == 3
        if suffix != ".png" and data.dtype != np.uint8:
            raise ValueError(
                f"cannot write {data.dtype} data to '{path}': {suffix} holds 8 bits per "
                "channel; use .png or .tif"
            )
        if suffix in (".jpg", ".jpeg") and data.ndim == 3 and data.shape[-1] == 4:
            raise ValueError(f"cannot write RGBA to '{path}': JPEG has no alpha; use .png")
        if colour16:
            try:
                import cv2
            except ImportError as exc:
                raise ValueError(
                    f"cannot write a 16-bit colour PNG to '{path}' without OpenCV "
                    "(pip install 'clusterseg[opencv]'); save it as .tif instead"
                ) from exc

            def write(tmp: Path) -> None:
                order = [2, 1, 0, 3][: data.shape[-1]]
                if not cv2.imwrite(str(tmp), np.ascontiguousarray(data[..., order])):
                    raise ValueError(f"OpenCV could not write '{path}'")

        else:

            def write(tmp: Path) -> None:
                from PIL import Image

                fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}[suffix]
                kwargs = {"quality": 95} if fmt == "JPEG" else {}
                Image.fromarray(data).save(tmp, format=fmt, **kwargs)

    else:
        raise ValueError(
            f"cannot write an image to '{path}': unsupported extension '{path.suffix}' "
            "(use .png, .jpg, .bmp, .tif, .tiff or .npy)"
        )
    return atomic_write(path, write, overwrite=overwrite)


# --------------------------------------------------------------------------- videos
def _stack_frames(frames: Iterable[np.ndarray]) -> np.ndarray:
    stored = []
    for i, frame in enumerate(frames):
        check_image(frame, name=f"frame {i}")
        frame = _to_storable(frame, name=f"frame {i}")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame {i} has dtype {frame.dtype}; video frames must be 8-bit")
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        elif frame.shape[-1] == 4:
            frame = frame[..., :3]
        if stored and frame.shape != stored[0].shape:
            raise ValueError(
                f"frame {i} has shape {frame.shape}, but frame 0 has {stored[0].shape}"
            )
        stored.append(frame)
    if not stored:
        raise ValueError("no frames to write")
    return np.stack(stored)


def write_gif(
    path: PathLike,
    frames: Iterable[np.ndarray],
    *,
    fps: float = 10.0,
    loop: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write frames (e.g. colour label images or overlays) as an animated GIF.

    Frames are converted like :func:`write_image` (floats in [0, 1] to uint8;
    greyscale replicated to RGB, alpha dropped) and must share one shape.
    GIF stores at most 256 colours per frame, so colours may be quantised.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``.gif``.
    frames : iterable of numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` frames.
    fps : float, optional
        Frames per second (default 10).
    loop : int, optional
        Number of loops, 0 = forever.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    data = _stack_frames(frames)

    def write(tmp: Path) -> None:
        import imageio.v3 as iio

        iio.imwrite(tmp, data, extension=".gif", plugin="pillow",
                    duration=1000.0 / fps, loop=loop)

    return atomic_write(path, write, overwrite=overwrite)


def write_video(
    path: PathLike, frames: Iterable[np.ndarray], fps: float = 10.0, *, overwrite: bool = False
) -> Path:
    """Write frames as a video; ``.gif`` uses Pillow, other formats PyAV.

    ``.mp4``/``.avi``/... need the ``av`` package (``pip install av``);
    without it an :class:`ImportError` says so and suggests ``.gif``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    frames : iterable of numpy.ndarray
        Frames of equal shape, converted like :func:`write_gif`.
    fps : float, optional
        Frames per second.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.suffix.lower() == ".gif":
        return write_gif(path, frames, fps=fps, overwrite=overwrite)
    try:
        import av  # noqa: F401
    except ImportError:
        raise ImportError(
            f"writing '{path}' needs the 'av' package (pip install av); "
            "write a .gif or a folder of PNG frames instead"
        ) from None
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    data = _stack_frames(frames)
    if path.exists() and not overwrite:
        _refuse_existing(path)

    def write(tmp: Path) -> None:
        import imageio.v3 as iio

        iio.imwrite(tmp, data, plugin="pyav", codec="libx264", fps=fps)

    return atomic_write(path, write, overwrite=overwrite)
