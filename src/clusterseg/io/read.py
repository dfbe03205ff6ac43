"""Reading images, volumes, video frames and label maps.

All readers return arrays in their *native* dtype and layout (``(H, W)`` or
``(H, W, C)`` with channels last); no intensity rescaling happens here. Methods
that need colour input normalise with :func:`clusterseg._validation.to_float_rgb`
(greyscale replicated, alpha dropped, values scaled to [0, 1]).

Errors are uniform: a missing path raises :class:`FileNotFoundError` naming the
path; an unreadable or corrupt file, an empty image, a wrong number of
dimensions, NaN/inf values or an unsupported dtype raise :class:`ValueError`
naming the path and the reason.
"""

from __future__ import annotations

import glob as _glob
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from .._validation import check_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "FrameSequence",
    "image_size",
    "iter_video",
    "list_frames",
    "natural_sort_key",
    "read_frames",
    "read_image",
    "read_label_image",
    "read_labels",
    "read_video",
    "rgb_to_labels",
    "read_volume",
]

PathLike = str | os.PathLike

#: File extensions recognised as single images (and as video frames).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
#: Images above this many pixels are refused before decoding (decompression-bomb guard, twice
#: Pillow's warning limit; about 13,400 x 13,400). The ``CLUSTERSEG_MAX_IMAGE_PIXELS``
#: environment variable overrides it.
MAX_IMAGE_PIXELS = 178_956_970
_TIFF = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers
def _existing_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: '{path}'")
    if path.is_dir():
        raise ValueError(f"'{path}' is a directory, expected a file")
    return path


def _validate(array: np.ndarray, path: Path, **kwargs) -> np.ndarray:
    """Run check_image and re-raise with the file name in the message."""
    try:
        return check_image(array, name=f"image in '{path}'", **kwargs)
    except TypeError as exc:  # pragma: no cover - readers always return ndarrays
        raise ValueError(str(exc)) from exc


def _png_header(path: Path) -> tuple[int, int] | None:
    """Return (bit depth, colour type) from a PNG's IHDR chunk, or None."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png16_colour(path: Path) -> np.ndarray:
    """Read a 16-bit colour PNG without losing precision.

    Pillow silently reduces 16-bit RGB/RGBA PNGs to 8 bits, so these files are
    decoded with OpenCV (the ``opencv`` extra) when it is installed.
    """
    try:
        import cv2
    except ImportError as exc:
        raise ValueError(
            f"cannot read '{path}': 16-bit colour PNGs need OpenCV "
            "(pip install 'clusterseg[opencv]'); or save the image as TIFF"
        ) from exc
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"cannot read '{path}': OpenCV could not decode it")
    if array.ndim == 3:
        order = [2, 1, 0, 3][: array.shape[2]] if array.shape[2] in (3, 4) else None
        if order is not None:
            array = array[..., order]
    return np.ascontiguousarray(array)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
    # Planar colour ("SYX"): move the samples axis last.
    if array.ndim == 3 and axes.startswith("S") and array.shape[0] in (3, 4):
        array = np.moveaxis(array, 0, -1)
    return np.ascontiguousarray(array)


def max_image_pixels() -> int:
    """The largest image (in pixels) that the readers decode; see :data:`MAX_IMAGE_PIXELS`."""
    value = os.environ.get("CLUSTERSEG_MAX_IMAGE_PIXELS")
    if value is None:
        return MAX_IMAGE_PIXELS
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f"CLUSTERSEG_MAX_IMAGE_PIXELS must be a number of pixels, got {value!r}") from None


def _check_size(path: Path, width: int, height: int) -> None:
    limit = max_image_pixels()
    if width * height > limit:
        raise ValueError(
            f"'{path}' is {width} x {height} pixels ({width * height / 1e6:.0f} Mpx), above the limit of "
            f"{limit / 1e6:.0f} Mpx that protects against decompression bombs; if you trust the file, "
            "raise the limit with the CLUSTERSEG_MAX_IMAGE_PIXELS environment variable or "
            "clusterseg.io.read.MAX_IMAGE_PIXELS"
        )


def _read_pillow(path: Path, *, palette_indices: bool) -> np.ndarray:
    """Decode PNG/JPEG/BMP/GIF (first frame) with Pillow.

    Palette images give their indices when ``palette_indices`` (label maps in
    VOC / CVPPP / DAVIS style), else their colours; CMYK is converted to RGB
    (Pillow's conversion, as image viewers show it).
    """
    from PIL import Image

    # Pillow's own guard (a warning, then a terse error) is replaced by ours, checked on the header
    # before decoding, whose message says how to allow a trusted file.
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as img:
            _check_size(path, *img.size)
            return _pillow_array(img, palette_indices)
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _pillow_array(img, palette_indices: bool) -> np.ndarray:
    if img.mode in ("P", "PA"):
        if palette_indices:
            return np.asarray(img.convert("P") if img.mode == "PA" else img)
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif img.mode == "CMYK":
        img = img.convert("RGB")
    elif img.mode == "1":
        img = img.convert("L")
    return np.asarray(img)


def _read_any(path: Path, *, palette_indices: bool = False) -> np.ndarray:
    """Decode ``path`` by extension, mapping decoder errors to ValueError."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                if fh.read(6) != b"\x93NUMPY":
                    raise ValueError(f"cannot read '{path}': not a NumPy .npy file")
            array = np.load(path, allow_pickle=False)
        elif suffix in _TIFF:
            array = _read_tiff(path)
        else:
            header = _png_header(path) if suffix == ".png" else None
            if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
                array = _read_png16_colour(path)
            else:
                array = _read_pillow(path, palette_indices=palette_indices)
    except (FileNotFoundError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(path) in str(exc):
            raise
        raise ValueError(f"cannot read '{path}': {exc}") from exc
    except Exception as exc:  # decoder-specific errors (PIL, tifffile, OSError, ...)
        raise ValueError(f"cannot read '{path}': {type(exc).__name__}: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise ValueError(f"cannot read '{path}': it does not contain a plain array")
    return array


# --------------------------------------------------------------------------- images
def read_image(path: PathLike) -> np.ndarray:
    """Read a single 2-D image in its native dtype.

    Supported formats: PNG (8/16-bit greyscale, RGB, RGBA), JPEG, BMP, TIFF
    (``.tif``/``.tiff`` via tifffile, any integer or float dtype) and NumPy
    ``.npy``. 16-bit colour PNGs are read with OpenCV (``opencv`` extra)
    because Pillow truncates them to 8 bits.

    No rescaling is applied: the result is ``(H, W)`` or ``(H, W, C)`` with
    ``C`` in {1, 3, 4} (channels last) and the file's dtype (``uint8``,
    ``uint16``, ...). Greyscale+alpha PNGs are returned as greyscale ``(H, W)``
    (alpha dropped). Use :func:`clusterseg._validation.to_float_rgb` to get
    float RGB in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        Image file.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupt or unreadable, or the image is empty, has the
        wrong number of dimensions (e.g. a multi-page TIFF stack; use
        :func:`read_volume`), an unsupported dtype or NaN/inf values.

    Examples
    --------
    >>> img = read_image("photo.png")  # doctest: +SKIP
    >>> img.shape, img.dtype  # doctest: +SKIP
    ((321, 481, 3), dtype('uint8'))
    """
    path = _existing_file(path)
    array = _read_any(path)
    if array.ndim == 3 and array.shape[-1] == 2 and path.suffix.lower() not in (".npy",) + _TIFF:
        array = np.ascontiguousarray(array[..., 0])  # greyscale + alpha: drop alpha
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"'{path}' holds a 3-D array of shape {array.shape}, not a 2-D image; "
            "use read_volume for stacks"
        )
    return _validate(array, path)


def read_volume(path: PathLike) -> np.ndarray:
    """Read a 3-D volume (multi-page TIFF stack or ``.npy``).

    Parameters
    ----------
    path : str or os.PathLike
        ``.tif``/``.tiff`` stack or ``.npy`` file.

    Returns
    -------
    numpy.ndarray
        ``(Z, H, W)`` or ``(Z, H, W, C)`` array (C in {1, 3, 4}) in the
        file's dtype.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable, not 3-D/4-D, empty, or contains NaN/inf.
    """
    path = _existing_file(path)
    if path.suffix.lower() not in _TIFF + (".npy",):
        raise ValueError(f"cannot read '{path}' as a volume: expected a .tif, .tiff or .npy file")
    array = _read_any(path)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"'{path}' holds an array of shape {array.shape}; a volume must be "
            "(Z, H, W) or (Z, H, W, C)"
        )
    if array.ndim == 4 and array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"'{path}' holds a 4-D array of shape {array.shape}; expected (Z, H, W, C) "
            "with C in {1, 3, 4}"
        )
    return _validate(array, path, allow_3d=True, channel_axis=-1 if array.ndim == 4 else None)


def read_label_image(path: PathLike) -> np.ndarray:
    """Decode a label file as stored: palette PNGs give their indices, not their colours.

    The raw reader behind :func:`read_labels` and the instance data sets; no
    check of dtype or range (callers check and name the problem).
    """
    return _read_any(_existing_file(path), palette_indices=True)


def _rgb_label_hint(path: Path, shape: tuple[int, ...]) -> str:
    return (
        f"'{path}' holds a colour image of shape {shape}, not a label map. Label maps are single-channel "
        "integer images (grey 8/16-bit PNG, palette PNG, TIFF, .npy); to use a colour-coded label image, "
        "pass rgb='unique' to number its colours (black = background), or convert it, e.g. "
        "labels = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)[1].reshape(rgb.shape[:2])"
    )


def rgb_to_labels(rgb: np.ndarray, *, background: tuple[int, ...] | None = (0, 0, 0)) -> np.ndarray:
    """Number the distinct colours of a colour-coded label image: ``(H, W, 3|4) -> (H, W)`` int32.

    ``background`` (default black) becomes 0; other colours become 1..n in
    the order of :func:`numpy.unique`. Alpha channels are ignored.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) or (H, W, 4) colour image, got shape {rgb.shape}")
    colours, inverse = np.unique(rgb[..., :3].reshape(-1, 3), axis=0, return_inverse=True)
    labels = inverse.reshape(rgb.shape[:2]).astype(np.int32) + 1
    if background is not None:
        hit = np.flatnonzero((colours == np.asarray(background[:3])).all(axis=1))
        if hit.size:
            bg = int(hit[0]) + 1
            labels[labels == bg] = 0
            labels[labels > bg] -= 1
    return labels


def read_labels(path: PathLike, *, rgb: str = "error") -> np.ndarray:
    """Read a 2-D label map as ``int32``.

    Parameters
    ----------
    path : str or os.PathLike
        Greyscale 8/16-bit PNG, palette (mode ``P``) PNG as VOC, CVPPP and
        DAVIS ship them (the palette indices are the labels), TIFF or
        ``.npy`` file, as written by :func:`clusterseg.io.write_labels`.
    rgb : {"error", "unique"}, optional
        What to do with a colour-coded (RGB) label image: ``"error"``
        (default) explains how to convert it; ``"unique"`` numbers its
        colours with :func:`rgb_to_labels` (black = background).

    Returns
    -------
    numpy.ndarray
        ``int32`` array of shape ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable, not a single-channel 2-D array, empty,
        not integral, or holds values outside the int32 range.

    Examples
    --------
    >>> labels = read_labels("leaves/plant001_label.png")  # doctest: +SKIP
    >>> labels.dtype, int(labels.max())  # doctest: +SKIP
    (dtype('int32'), 14)
    """
    if rgb not in ("error", "unique"):
        raise ValueError(f"rgb must be 'error' or 'unique', got {rgb!r}")
    path = _existing_file(path)
    array = read_label_image(path)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        if rgb == "error":
            raise ValueError(_rgb_label_hint(path, array.shape))
        array = rgb_to_labels(array)
    if array.ndim != 2:
        raise ValueError(
            f"'{path}' holds an array of shape {array.shape}; a label map must be 2-D (H, W)"
        )
    if array.size == 0:
        raise ValueError(f"label map in '{path}' is empty (shape {array.shape})")
    kind = array.dtype.kind
    if kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise ValueError(f"label map in '{path}' has non-integer or non-finite values")
    elif kind not in "biu":
        raise ValueError(f"label map in '{path}' has unsupported dtype {array.dtype}")
    if array.size and kind != "b":
        info = np.iinfo(np.int32)
        if array.min() < info.min or array.max() > info.max:
            raise ValueError(f"label map in '{path}' has values outside the int32 range")
    return array.astype(np.int32)


def image_size(path: PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header, without decoding the pixels."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        elif suffix in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape = series.shape[1:] if series.axes.startswith("S") else series.shape
        else:
            from PIL import Image

            with Image.open(path) as img:
                return img.size[1], img.size[0]
    except Exception as exc:
        raise ValueError(f"cannot read '{path}': {type(exc).__name__}: {exc}") from exc
    if len(shape) < 2:
        raise ValueError(f"'{path}' holds an array of shape {tuple(shape)}, not an image")
    return int(shape[0]), int(shape[1])


# --------------------------------------------------------------------------- frames
def natural_sort_key(path: PathLike) -> list:
    """Sort key ordering ``frame2`` before ``frame10`` (digits compared as numbers)."""
    parts = re.split(r"(\d+)", Path(path).name)
    return [(0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts]


def list_frames(source: PathLike, *, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """List the image files of a folder or glob pattern in natural order.

    Parameters
    ----------
    source : str or os.PathLike
        A folder (all files with an image extension inside it, not recursive)
        or a glob pattern such as ``"clips/*.jpg"``.
    extensions : sequence of str, optional
        Lower-case extensions to keep (default: :data:`IMAGE_EXTENSIONS`).

    Returns
    -------
    list of pathlib.Path
        Sorted naturally by file name (``frame2`` before ``frame10``).

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or nothing matches.
    """
    text = os.fspath(source)
    exts = tuple(e.lower() for e in extensions)
    if any(ch in text for ch in "*?["):
        paths = [Path(p) for p in _glob.glob(text) if Path(p).is_file()]
        if not paths:
            raise FileNotFoundError(f"No files match the pattern '{text}'")
    else:
        folder = Path(source)
        if not folder.exists():
            raise FileNotFoundError(f"No such folder: '{folder}'")
        if not folder.is_dir():
            raise ValueError(f"'{folder}' is not a folder; pass a folder or a glob pattern")
        paths = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts]
        if not paths:
            raise FileNotFoundError(
                f"No image frames ({', '.join(exts)}) found in folder '{folder}'"
            )
    return sorted(paths, key=natural_sort_key)


class FrameSequence(Sequence):
    """Lazy, indexable sequence of video frames read on access.

    Holding 402 full-HD frames in memory takes about 2.5 GB, so frames are
    only decoded when indexed or iterated. ``len()`` is the number of files;
    slicing returns another :class:`FrameSequence`.

    Parameters
    ----------
    paths : sequence of path-like
        Frame files in display order.
    """

    def __init__(self, paths: Sequence[PathLike]):
        self.paths: list[Path] = [Path(p) for p in paths]
        self._common_size: tuple[int, int] | None = None  # set by check_same_size

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> FrameSequence: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return FrameSequence(self.paths[index])
        return read_image(self.paths[index])

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield read_image(path)

    def check_same_size(self) -> tuple[int, int]:
        """The common ``(H, W)`` of the frames, read from their headers; ValueError naming the first odd frame.

        The answer is kept, so that the several steps of one call
        (training, then segmenting every frame) read the headers once.
        """
        if self._common_size is not None:
            return self._common_size
        first = image_size(self.paths[0])
        for path in self.paths[1:]:
            size = image_size(path)
            if size != first:
                raise ValueError(f"frame '{path}' is {size[0]}x{size[1]}, but the first frame "
                                 f"'{self.paths[0]}' is {first[0]}x{first[1]}; all frames must have one size")
        self._common_size = first
        return first

    def __repr__(self) -> str:
        first = self.paths[0].name if self.paths else ""
        return f"FrameSequence({len(self)} frames, first='{first}')"


def read_frames(source: PathLike, *, as_list: bool = False) -> FrameSequence | list[np.ndarray]:
    """Read the frames of a video stored as a folder of images.

    Parameters
    ----------
    source : str or os.PathLike
        Folder of frames or glob pattern (see :func:`list_frames`). Frames are
        ordered naturally (``frame2`` before ``frame10``).
    as_list : bool, optional
        If False (default) return a lazy :class:`FrameSequence` that decodes
        each frame when accessed (supports ``len``, indexing, slicing and
        iteration). If True, decode all frames now and return a list; all
        frames must then have the same shape.

    Returns
    -------
    FrameSequence or list of numpy.ndarray
        Frames in their native dtype, as returned by :func:`read_image`.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or contains no frames.
    ValueError
        If a frame is unreadable, or (``as_list=True``) frames differ in shape.

    Examples
    --------
    >>> frames = read_frames("cheetah/clips")  # doctest: +SKIP
    >>> len(frames), frames[0].shape  # doctest: +SKIP
    (402, (1080, 1920, 3))
    """
    sequence = FrameSequence(list_frames(source))
    if not as_list:
        return sequence
    frames = list(sequence)
    shape0 = frames[0].shape
    for path, frame in zip(sequence.paths, frames):
        if frame.shape != shape0:
            raise ValueError(
                f"frame '{path}' has shape {frame.shape}, but the first frame has {shape0}"
            )
    return frames


# --------------------------------------------------------------------------- video files
_VIDEO_HINT = (
    "reading or writing video files other than GIF needs the 'av' package "
    "(pip install av) or imageio-ffmpeg (pip install imageio-ffmpeg); "
    "alternatively use a folder of frames or a .gif"
)


def iter_video(path: PathLike) -> Iterator[np.ndarray]:
    """Iterate over the frames of a video file (GIF, or MP4/AVI/... with PyAV).

    GIFs are decoded with Pillow; other formats need the ``av`` package or
    ``imageio-ffmpeg``, otherwise an :class:`ImportError` says so.

    Parameters
    ----------
    path : str or os.PathLike
        Video file.

    Yields
    ------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB frames (GIF frames with alpha are RGBA).
    """
    path = _existing_file(path)
    import imageio.v3 as iio

    if path.suffix.lower() == ".gif":
        plugin = "pillow"
    else:
        plugin = _video_plugin()
    try:
        iterator = iio.imiter(path, plugin=plugin)
        for frame in iterator:
            yield np.asarray(frame)
    except ImportError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot read video '{path}': {type(exc).__name__}: {exc}") from exc


def _video_plugin() -> str:
    try:
        import av  # noqa: F401

        return "pyav"
    except ImportError:
        pass
    try:
        import imageio_ffmpeg  # noqa: F401

        return "FFMPEG"
    except ImportError:
        raise ImportError(_VIDEO_HINT) from None


def read_video(path: PathLike) -> np.ndarray:
    """Read all frames of a video file into a ``(T, H, W, C)`` array.

    See :func:`iter_video` for supported formats; prefer :func:`iter_video`
    for long videos to avoid holding every frame in memory.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        If the format needs PyAV/imageio-ffmpeg and neither is installed.
    ValueError
        If the video cannot be decoded or has no frames.
    """
    frames = list(iter_video(path))
    if not frames:
        raise ValueError(f"video '{path}' has no frames")
    return np.stack(frames)
