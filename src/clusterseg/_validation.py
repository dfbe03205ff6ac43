"""Input validation and normalisation shared by every clusterseg function.

Every public function that takes an image calls :func:`check_image` (or
:func:`to_float_rgb`, which calls it) so that bad input fails early with a
:class:`ValueError` or :class:`TypeError` naming the problem, instead of a deep
NumPy/PyTorch traceback.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_image", "to_float_rgb", "check_n_segments", "check_labels"]

#: Number of channels accepted along the channel axis: greyscale, RGB, RGBA.
_VALID_CHANNELS = (1, 3, 4)


def _check_dtype(image: np.ndarray, name: str) -> None:
    kind = image.dtype.kind
    if kind in "biu":
        return
    if kind == "f" and image.dtype.itemsize <= 8:
        return
    raise ValueError(
        f"{name} has unsupported dtype {image.dtype}; expected bool, an integer type "
        "(uint8, uint16, int8..int64) or float16/float32/float64"
    )


def _normalise_axis(channel_axis: int, ndim: int, name: str) -> int:
    if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for {name} with {ndim} dimensions"
        )
    return int(channel_axis) % ndim


def check_image(
    image: np.ndarray,
    *,
    channel_axis: int | None = -1,
    allow_3d: bool = False,
    name: str = "image",
) -> np.ndarray:
    """Validate an image array and return it unchanged.

    Parameters
    ----------
    image : numpy.ndarray
        Candidate image. Lists and other array-likes are *not* accepted (wrap
        them with :func:`numpy.asarray` first) so that silent copies and
        object arrays never reach the algorithms.
    channel_axis : int or None, optional
        Axis holding the colour channels. ``None`` means the image is
        greyscale (2-D, or 3-D when ``allow_3d``). With an integer axis a 2-D
        array is still accepted as greyscale; a 3-D array must have 1, 3 or 4
        channels (greyscale, RGB, RGBA) along ``channel_axis``.
    allow_3d : bool, optional
        Also accept volumes: ``(Z, H, W)`` (greyscale) or ``(Z, H, W, C)``
        with ``C`` in {1, 3, 4} along ``channel_axis``. With an integer
        ``channel_axis`` a 3-D array whose channel axis has 1, 3 or 4 entries
        is interpreted as a 2-D colour image, any other size as a greyscale
        volume.
    name : str, optional
        Name used in error messages (e.g. the argument or file name).

    Returns
    -------
    numpy.ndarray
        The same array (no copy, no conversion).

    Raises
    ------
    TypeError
        If ``image`` is not a :class:`numpy.ndarray`.
    ValueError
        If it is empty (0 pixels), has the wrong number of dimensions or
        channels, an unsupported dtype (complex, object, string, ...), or
        contains NaN/inf.

    Examples
    --------
    >>> import numpy as np
    >>> check_image(np.zeros((4, 5, 3), dtype=np.uint8)).shape
    (4, 5, 3)
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray, got {type(image).__name__}; "
            "convert it with numpy.asarray first"
        )
    _check_dtype(image, name)
    ndim = image.ndim
    if channel_axis is None:
        allowed = (2, 3) if allow_3d else (2,)
        if ndim not in allowed:
            kind = "2-D (H, W) or 3-D (Z, H, W)" if allow_3d else "2-D (H, W)"
            raise ValueError(
                f"{name} must be {kind} when channel_axis=None, got {ndim} dimensions "
                f"(shape {image.shape})"
            )
    else:
        max_ndim = 4 if allow_3d else 3
        if not 2 <= ndim <= max_ndim:
            kind = (
                "2-D (H, W), 3-D (H, W, C) or (Z, H, W), or 4-D (Z, H, W, C)"
                if allow_3d
                else "2-D (H, W) or 3-D (H, W, C)"
            )
            raise ValueError(f"{name} must be {kind}, got {ndim} dimensions (shape {image.shape})")
        if ndim >= 3:
            axis = _normalise_axis(channel_axis, ndim, name)
            n_channels = image.shape[axis]
            volume_ok = allow_3d and ndim == 3
            if n_channels not in _VALID_CHANNELS and not volume_ok:
                hint = "" if allow_3d else "; for 3-D volumes use a function that accepts volumes"
                raise ValueError(
                    f"{name} has {n_channels} channels along axis {channel_axis} "
                    f"(shape {image.shape}); expected 1, 3 or 4 (greyscale, RGB, RGBA){hint}"
                )
    if image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        n_bad = int(np.count_nonzero(~np.isfinite(image)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")
    return image


def to_float_rgb(image: np.ndarray, *, channel_axis: int | None = -1) -> np.ndarray:
    """Convert a 2-D image to float32 RGB ``(H, W, 3)`` with values in [0, 1].

    This is the normalisation every method that needs colour applies
    internally:

    * the channel axis is moved last; ``channel_axis=None`` or a 2-D input
      means greyscale;
    * greyscale (or 1-channel) images are replicated to three channels and
      the alpha channel of RGBA images is dropped (not composited);
    * ``bool`` becomes 0/1; ``uint8`` and ``uint16`` are divided by their
      dtype maximum (255, 65535);
    * other integer types (signed, uint32, uint64) are min-max rescaled to
      [0, 1] over the whole image (all channels together);
    * floats already in [0, 1] are kept; any other float range is min-max
      rescaled over the whole image;
    * a constant image that cannot be rescaled is clipped to [0, 1].

    Parameters
    ----------
    image : numpy.ndarray
        2-D greyscale or 3-D image with 1, 3 or 4 channels, validated with
        :func:`check_image`.
    channel_axis : int or None, optional
        Axis holding the channels (default last); ``None`` for greyscale.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 array of shape ``(H, W, 3)`` with values in
        [0, 1]; always a new array.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = to_float_rgb(np.array([[0, 255]], dtype=np.uint8))
    >>> rgb.shape, rgb.dtype, float(rgb[0, 1, 0])
    ((1, 2, 3), dtype('float32'), 1.0)
    """
    check_image(image, channel_axis=channel_axis)
    if image.ndim == 3:
        image = np.moveaxis(image, channel_axis, -1)  # type: ignore[arg-type]
    else:
        image = image[..., np.newaxis]
    if image.shape[-1] == 4:
        image = image[..., :3]

    dtype = image.dtype
    if dtype == np.bool_:
        out = image.astype(np.float32)
    elif dtype == np.uint8 or dtype == np.uint16:
        out = image.astype(np.float32) / np.float32(np.iinfo(dtype).max)
    else:
        work = image.astype(np.float64)
        lo, hi = float(work.min()), float(work.max())
        if dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
            out = work
        elif hi > lo:
            out = (work - lo) / (hi - lo)
        else:
            out = np.clip(work, 0.0, 1.0)
        out = out.astype(np.float32)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


def check_n_segments(n_segments: int, n_pixels: int, name: str = "n_segments") -> int:
    """Validate a requested number of segments and return it as an ``int``.

    Parameters
    ----------
    n_segments : int
        Requested number of segments. Python or NumPy integers are accepted,
        as are floats with an integral value (``200.0``); ``bool`` and
        non-integral floats are rejected.
    n_pixels : int
        Number of pixels of the image; ``n_segments`` may not exceed it.
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``n_segments`` is not a number (or is a bool).
    ValueError
        If it is not integral, smaller than 1 or larger than ``n_pixels``.
    """
    if isinstance(n_segments, (bool, np.bool_)) or not isinstance(n_segments, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {n_segments!r}")
    if not isinstance(n_segments, numbers.Integral):
        value = float(n_segments)
        if not np.isfinite(value) or value != int(value):
            raise ValueError(f"{name} must be an integer, got {n_segments!r}")
    n = int(n_segments)
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    if n > n_pixels:
        raise ValueError(f"{name}={n} exceeds the number of pixels ({n_pixels})")
    return n


def check_nonnegative(value: float, name: str) -> float:
    """Return ``value`` as a finite ``float >= 0``, or raise ``ValueError`` naming ``name``.

    Examples
    --------
    >>> check_nonnegative(3, "weight")
    3.0
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(out) and out >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_labels(labels: np.ndarray, *, name: str = "labels", ndim: int | tuple[int, ...] = 2) -> np.ndarray:
    """Validate an integer label map and return it unchanged.

    Parameters
    ----------
    labels : numpy.ndarray
        Label map of integer or bool dtype.
    name : str, optional
        Name used in error messages.
    ndim : int or tuple of int, optional
        Accepted number(s) of dimensions (default 2).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    TypeError
        If ``labels`` is not a :class:`numpy.ndarray`.
    ValueError
        If it is empty, has the wrong number of dimensions or a non-integer
        dtype.
    """
    if not isinstance(labels, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray, got {type(labels).__name__}; "
            "convert it with numpy.asarray first"
        )
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if labels.ndim not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
            f"got {labels.ndim} (shape {labels.shape})"
        )
    if labels.dtype.kind not in "biu":
        raise ValueError(
            f"{name} must have an integer dtype, got {labels.dtype}; "
            "convert with labels.astype(np.int32) if the values are integral"
        )
    if labels.size == 0:
        raise ValueError(f"{name} is empty (shape {labels.shape})")
    return labels


def _check_int64_range(arr: np.ndarray, name: str) -> None:
    """Labels beyond int64 (uint64 above 2**63 - 1, huge floats) would wrap around on conversion."""
    if arr.dtype == np.uint64 or np.issubdtype(arr.dtype, np.floating):
        high, low = arr.max(), arr.min()
        if high > np.iinfo(np.int64).max or low < np.iinfo(np.int64).min:
            raise ValueError(
                f"{name} holds values beyond the int64 range (maximum {high}); relabel them, e.g. with "
                "skimage.segmentation.relabel_sequential"
            )


def as_int_labels(
    labels, *, name: str = "labels", ndim: int | None = None, non_negative: bool = False
) -> np.ndarray:
    """Validate an array-like label map and return it as int64.

    The lenient policy of the metrics and graph functions: any array-like of
    integer or boolean dtype, or floats that all hold finite integer values
    (e.g. ground truths read as float). :func:`check_labels` is the strict
    version for functions that document an integer ``numpy.ndarray``.

    Parameters
    ----------
    labels : array_like
    name : str, optional
        Name used in error messages.
    ndim : int, optional
        Required number of dimensions (default: any, at least 1).
    non_negative : bool, optional
        Reject negative labels.

    Returns
    -------
    numpy.ndarray of int64

    Raises
    ------
    ValueError
        For a list of arrays instead of one array, a non-numeric dtype, the
        wrong number of dimensions, an empty array, NaN/inf or non-integer
        values, or (with ``non_negative``) negative labels.
    """
    if isinstance(labels, (list, tuple)) and labels and isinstance(labels[0], np.ndarray):
        raise ValueError(f"{name} must be a single label array, got a list of arrays")
    arr = np.asarray(labels)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool
    ):
        raise ValueError(f"{name} must be an integer label array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        layout = " (H, W)" if ndim == 2 else ""
        raise ValueError(f"{name} must be a {ndim}-D label map{layout}, got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer labels, got non-integer float values")
    _check_int64_range(arr, name)
    arr = arr.astype(np.int64, copy=False)
    if non_negative and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, found {arr.min()}")
    return arr
