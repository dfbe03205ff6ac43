"""Berkeley Segmentation Data Set 500 (BSDS500) loader.

Expected layout (the standard one)::

    bsds500/
        images/{train,val,test}/<id>.jpg
        groundTruth/{train,val,test}/<id>.mat

Each ``.mat`` file holds the key ``groundTruth``: a 1 x G MATLAB cell array of
structs with fields ``Segmentation`` (uint16 labels starting at 1) and
``Boundaries`` (0/1 boundary map), one per human annotator.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes and J. Malik, "Contour Detection and
   Hierarchical Image Segmentation", IEEE TPAMI 33(5), 898-916, 2011.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..io.read import natural_sort_key, read_image
from ._paths import DATA_ENV_VAR, data_root

__all__ = ["BSDS500", "BSDSSample", "bsds500", "read_bsds_ground_truth"]

SPLITS = ("train", "val", "test")


class BSDSSample(NamedTuple):
    """One BSDS500 image with its human annotations.

    Unpacks as ``image_id, image, segmentations, boundaries``.
    """

    #: Image id (file stem), e.g. ``"100007"``.
    image_id: str
    #: ``uint8`` RGB image ``(H, W, 3)``.
    image: np.ndarray
    #: One ``int32`` label map ``(H, W)`` per annotator, labels from 0
    #: (the file's 1-based labels minus one).
    segmentations: list[np.ndarray]
    #: One ``bool`` boundary map ``(H, W)`` per annotator.
    boundaries: list[np.ndarray]


def _unwrap(value):
    """Strip the 1x1 object/struct wrappers scipy.io.loadmat puts around fields."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def read_bsds_ground_truth(path: str | os.PathLike) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read a BSDS500 ground-truth ``.mat`` file.

    Parameters
    ----------
    path : str or os.PathLike
        ``groundTruth/<split>/<id>.mat``.

    Returns
    -------
    segmentations : list of numpy.ndarray
        ``int32`` label maps with labels from 0 (original labels minus 1).
    boundaries : list of numpy.ndarray
        ``bool`` boundary maps.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not a MATLAB file with the expected ``groundTruth`` cell.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such ground-truth file: '{path}'")
    try:
        mat = loadmat(path)
    except Exception as exc:
        raise ValueError(f"cannot read '{path}': {type(exc).__name__}: {exc}") from exc
    if "groundTruth" not in mat:
        raise ValueError(f"'{path}' has no 'groundTruth' variable")
    cells = np.asarray(mat["groundTruth"]).reshape(-1)
    segmentations, boundaries = [], []
    for g, cell in enumerate(cells):
        struct = _unwrap(cell)
        try:
            seg = _unwrap(struct["Segmentation"])
            bnd = _unwrap(struct["Boundaries"])
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ValueError(
                f"'{path}': annotation {g} lacks 'Segmentation'/'Boundaries' fields"
            ) from exc
        seg = np.asarray(seg)
        bnd = np.asarray(bnd)
        if seg.ndim != 2 or bnd.shape != seg.shape:
            raise ValueError(
                f"'{path}': annotation {g} has Segmentation {seg.shape} and Boundaries "
                f"{bnd.shape}; expected two equal 2-D shapes"
            )
        segmentations.append(seg.astype(np.int32) - 1)
        boundaries.append(bnd.astype(bool))
    if not segmentations:
        raise ValueError(f"'{path}' holds no annotations")
    return segmentations, boundaries


def _resolve_root(root: str | os.PathLike | None) -> Path:
    base = data_root() if root is None else Path(root).expanduser()
    for candidate in (base / "bsds500", base / "BSDS500", base):
        if (candidate / "images").is_dir() and (candidate / "groundTruth").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no BSDS500 data under '{base}': expected 'images/' and 'groundTruth/' folders "
        f"in '{base}' or '{base / 'bsds500'}'. Pass root=... or set {DATA_ENV_VAR} to the "
        "folder containing 'bsds500/'"
    )


class BSDS500:
    """BSDS500 split as a sequence of :class:`BSDSSample`.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Either the ``bsds500`` folder itself or the folder containing it.
        Default: :func:`clusterseg.datasets.data_root` (``CLUSTERSEG_DATA`` or
        ``../shared/data``).
    split : {"train", "val", "test"}, optional
        Which split (default ``"val"``).
    limit : int, optional
        Keep only the first ``limit`` images (in numeric id order).

    Attributes
    ----------
    root : pathlib.Path
        The resolved ``bsds500`` folder.
    split : str
    ids : list of str
        Image ids in numeric order.

    Examples
    --------
    >>> ds = BSDS500(split="val")  # doctest: +SKIP
    >>> image_id, image, segs, bounds = ds[0]  # doctest: +SKIP
    """

    def __init__(
        self, root: str | os.PathLike | None = None, split: str = "val", limit: int | None = None
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        self.root = _resolve_root(root)
        self.split = split
        image_dir = self.root / "images" / split
        if not image_dir.is_dir():
            available = sorted(
                p.name for p in (self.root / "images").iterdir() if p.is_dir() and p.name in SPLITS
            )
            raise FileNotFoundError(
                f"BSDS500 split '{split}' not found: no folder '{image_dir}' "
                f"(available splits: {', '.join(available) or 'none'})"
            )
        ids = sorted((p.stem for p in image_dir.glob("*.jpg")), key=natural_sort_key)
        if not ids:
            raise FileNotFoundError(f"no .jpg images in '{image_dir}'")
        self.ids: list[str] = ids if limit is None else ids[: int(limit)]

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, image_id: str) -> Path:
        """Path of the JPEG image of ``image_id``."""
        return self.root / "images" / self.split / f"{image_id}.jpg"

    def ground_truth_path(self, image_id: str) -> Path:
        """Path of the ground-truth ``.mat`` file of ``image_id``."""
        return self.root / "groundTruth" / self.split / f"{image_id}.mat"

    def __getitem__(self, index: int | str) -> BSDSSample:
        """Load a sample by position or by image id."""
        if isinstance(index, str):
            if index not in self.ids:
                raise KeyError(f"image id {index!r} not in BSDS500 {self.split}")
            image_id = index
        else:
            image_id = self.ids[index]
        image = read_image(self.image_path(image_id))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        segmentations, boundaries = read_bsds_ground_truth(self.ground_truth_path(image_id))
        for seg in segmentations:
            if seg.shape != image.shape[:2]:
                raise ValueError(
                    f"ground truth of {image_id} has shape {seg.shape}, image has "
                    f"{image.shape[:2]}"
                )
        return BSDSSample(image_id, image, segmentations, boundaries)

    def __iter__(self) -> Iterator[BSDSSample]:
        for image_id in self.ids:
            yield self[image_id]

    def __repr__(self) -> str:
        return f"BSDS500(root='{self.root}', split='{self.split}', n={len(self)})"


def bsds500(
    root: str | os.PathLike | None = None, split: str = "val", limit: int | None = None
) -> BSDS500:
    """Open a BSDS500 split; iterate it for ``(image_id, image, segmentations, boundaries)``.

    See :class:`BSDS500` for the parameters.

    Returns
    -------
    BSDS500
        Lazy sequence of :class:`BSDSSample` (each image and ``.mat`` file is
        read when accessed).
    """
    return BSDS500(root, split=split, limit=limit)
