"""Instance-segmentation data sets: image + instance-label pairs.

An instance label map is an integer image of the same height and width as its
image, ``0`` for background and ``1, 2, ...`` for the objects (ids need not be
consecutive). Loaders here return :class:`InstanceSample` tuples
``(name, image, labels)`` with ``labels`` as ``int32``.

* :class:`InstanceFolder`: the generic layout, one folder of images and one
  folder of label images matched by file stem (``a.png`` <-> ``a.tif``).
* :func:`dsb2018`: the Data Science Bowl 2018 stage-1 nuclei training set
  [1]_ in that layout, with a fixed train/test split by :func:`split_by_name`.
* :class:`CityscapesInstances`: Cityscapes [2]_ ``gtFine`` instance ids for
  chosen classes (car, person, ...), renumbered per image.

References
----------
.. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging experiments:
   the 2018 Data Science Bowl", Nature Methods 16, 1247-1253, 2019.
.. [2] M. Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
   Understanding", CVPR 2016.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, overload

import numpy as np

from ..features import image_modality  # noqa: F401  (re-exported by clusterseg.datasets)
from ..io.read import natural_sort_key, read_image, read_label_image
from ._paths import DATA_ENV_VAR, data_root

__all__ = [
    "CITYSCAPES_INSTANCE_CLASSES",
    "CityscapesInstances",
    "InstanceFolder",
    "InstanceSample",
    "cityscapes_instances",
    "dsb2018",
    "image_modality",
    "split_by_name",
]

PathLike = str | os.PathLike
ProgressCallback = Callable[[int, int], object]

#: File extensions (lower case) accepted for images in :class:`InstanceFolder`.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
#: File extensions (lower case) accepted for label images in :class:`InstanceFolder`.
LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy")

#: Cityscapes classes that have instance annotations: name -> class id
#: (the ``id`` column of the official ``labels.py`` table).
CITYSCAPES_INSTANCE_CLASSES: Mapping[str, int] = {
    "person": 24,
    "rider": 25,
    "car": 26,
    "truck": 27,
    "bus": 28,
    "caravan": 29,
    "trailer": 30,
    "train": 31,
    "motorcycle": 32,
    "bicycle": 33,
}

_INT32_MAX = int(np.iinfo(np.int32).max)
_MAX_LISTED = 10


class InstanceSample(NamedTuple):
    """One image with its instance labels.

    Unpacks as ``name, image, labels``.
    """

    #: Sample name (the file stem).
    name: str
    #: The image as read by :func:`clusterseg.io.read_image`: ``(H, W)`` or
    #: ``(H, W, C)`` in the file's dtype (no rescaling).
    image: np.ndarray
    #: ``int32`` ``(H, W)`` instance labels: 0 background, objects 1, 2, ...
    labels: np.ndarray


# --------------------------------------------------------------------------- helpers
def _listing(items: Sequence[str], limit: int = _MAX_LISTED) -> str:
    """``'a', 'b', 'c' and 7 more`` (at most ``limit`` items named)."""
    shown = ", ".join(repr(s) for s in items[:limit])
    extra = len(items) - limit
    return f"{shown} and {extra} more" if extra > 0 else shown


def _label_problem(array: np.ndarray) -> str | None:
    """Describe why ``array`` is not a valid instance label map, or return None."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        hint = (" (a multi-channel, colour-coded label image: convert it with clusterseg.io.rgb_to_labels, or save the "
                "label images as grey or palette PNG / TIFF)" if array.ndim == 3 else "")
        return f"label image must be a single-channel 2-D image, got shape {array.shape}{hint}"
    kind = array.dtype.kind
    if kind == "b":
        return None
    if kind not in "iu":
        return f"label image must be an integer image, got dtype {array.dtype}"
    if array.size == 0:
        return f"label image is empty (shape {array.shape})"
    low, high = int(array.min()), int(array.max())
    if low < 0:
        return f"label image has negative values (minimum {low}); 0 is background, objects >= 1"
    if high > _INT32_MAX:
        return f"label image has values above the int32 range (maximum {high})"
    return None


def _as_labels(array: np.ndarray, path: Path) -> np.ndarray:
    """Check a raw label image and return it as ``int32`` (H, W); ValueError naming ``path``."""
    problem = _label_problem(array)
    if problem is not None:
        raise ValueError(f"'{path}': {problem}")
    if array.ndim == 3:
        array = array[..., 0]
    return np.ascontiguousarray(array, dtype=np.int32)


def _scan(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    """Map file stem -> path for the files of ``folder`` with one of ``suffixes``."""
    if not folder.exists():
        raise ValueError(f"{what} folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ValueError(f"{what} folder '{folder}' is not a folder")
    found: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in suffixes:
            found.setdefault(path.stem, []).append(path)
    if not found:
        raise ValueError(
            f"{what} folder '{folder}' holds no files with extension {', '.join(suffixes)}"
        )
    clashes = sorted((stem for stem, paths in found.items() if len(paths) > 1), key=natural_sort_key)
    if clashes:
        details = "; ".join(
            " and ".join(sorted(p.name for p in found[stem])) for stem in clashes[:_MAX_LISTED]
        )
        more = f" and {len(clashes) - _MAX_LISTED} more" if len(clashes) > _MAX_LISTED else ""
        raise ValueError(
            f"{what} folder '{folder}' has several files with the same name stem: {details}{more}; "
            "keep one file per sample"
        )
    return {stem: paths[0] for stem, paths in found.items()}


def _report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


class _PairedDataset(Sequence):
    """Lazy sequence of (image file, label file) pairs addressed by name.

    Subclasses set ``_names``, ``_image_paths`` and ``_label_paths`` and
    implement :meth:`_labels_from_raw`.
    """

    _names: list[str]
    _image_paths: dict[str, Path]
    _label_paths: dict[str, Path]

    # -- sequence protocol --------------------------------------------------
    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int | str) -> InstanceSample: ...

    @overload
    def __getitem__(self, index: slice) -> _PairedDataset: ...

    def __getitem__(self, index):
        """Load a sample by position or name; a slice returns a lazy subset."""
        if isinstance(index, slice):
            return self._subset(self._names[index])
        name = self._name(index)
        image_path, label_path = self._image_paths[name], self._label_paths[name]
        image = read_image(image_path)
        labels = self._labels_from_raw(read_label_image(label_path), label_path)
        if image.shape[:2] != labels.shape:
            raise ValueError(
                f"sample {name!r}: image '{image_path}' has size {image.shape[:2]} but "
                f"label image '{label_path}' has size {labels.shape}"
            )
        return InstanceSample(name, image, labels)

    def __iter__(self) -> Iterator[InstanceSample]:
        for name in list(self._names):
            yield self[name]

    def __contains__(self, name: object) -> bool:
        """``name in dataset``: whether a sample of that name is part of it."""
        return isinstance(name, str) and name in self._image_paths and name in set(self._names)

    # -- names and paths ----------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Sample names (file stems) in dataset order."""
        return list(self._names)

    def _name(self, index: int | str) -> str:
        if isinstance(index, str):
            if index not in self._image_paths or index not in set(self._names):
                raise KeyError(f"no sample named {index!r} in {self!r}")
            return index
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"index must be an int, a sample name or a slice, got {type(index).__name__}"
            )
        return self._names[int(index)]  # IndexError for out-of-range positions

    def image_path(self, index: int | str) -> Path:
        """Path of the image file of sample ``index`` (position or name)."""
        return self._image_paths[self._name(index)]

    def label_path(self, index: int | str) -> Path:
        """Path of the label file of sample ``index`` (position or name)."""
        return self._label_paths[self._name(index)]

    def _subset(self, names: Iterable[str]) -> _PairedDataset:
        names = list(names)
        unknown = [n for n in names if n not in self._image_paths]
        if unknown:
            raise ValueError(f"unknown sample name(s): {_listing(unknown)}")
        if len(set(names)) != len(names):
            raise ValueError("sample names must be unique")
        out = copy.copy(self)
        out._names = names
        return out

    # -- checks ---------------------------------------------------------------
    def _labels_from_raw(self, raw: np.ndarray, path: Path) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _raw_label_problem(self, raw: np.ndarray) -> str | None:
        return _label_problem(raw)

    def validate(self, *, progress: ProgressCallback | None = None) -> None:
        """Read every sample and report all problems at once.

        Checks that each image and label file can be read, that the label
        image is a single-channel integer image with no negative values (and
        within the int32 range), that image and labels have the same height
        and width, and that at least one label map of the data set contains
        an object. A single image without objects is fine (background-only
        images are valid training data).

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(done, total)`` after each sample (e.g. to
            drive a progress bar).

        Raises
        ------
        ValueError
            One error whose message lists every problem found, one line per
            problem, naming the sample and its files.
        """
        total = len(self)
        if total == 0:
            raise ValueError(f"{self!r} holds no samples")
        problems: list[str] = []
        any_object = False
        for done, name in enumerate(list(self._names), start=1):
            image_path, label_path = self._image_paths[name], self._label_paths[name]
            image_shape = None
            try:
                image_shape = read_image(image_path).shape
            except (OSError, ValueError) as exc:
                problems.append(f"{name}: cannot read image: {exc}")
            try:
                raw = read_label_image(label_path)
            except (OSError, ValueError) as exc:
                problems.append(f"{name}: cannot read label image: {exc}")
                _report(progress, done, total)
                continue
            problem = self._raw_label_problem(raw)
            if problem is not None:
                problems.append(f"{name}: '{label_path}': {problem}")
                _report(progress, done, total)
                continue
            labels = self._labels_from_raw(raw, label_path)
            if image_shape is not None and image_shape[:2] != labels.shape:
                problems.append(
                    f"{name}: image '{image_path.name}' has size {image_shape[:2]} "
                    f"({'x'.join(map(str, image_shape))}) but label image "
                    f"'{label_path.name}' has size {labels.shape}"
                )
            any_object = any_object or bool(labels.any())
            _report(progress, done, total)
        if not problems and not any_object:
            problems.append(
                f"no objects at all: every one of the {total} label images is all background (0)"
            )
        if problems:
            raise ValueError(
                f"{len(problems)} problem(s) in {self!r}:\n" + "\n".join(f"  - {p}" for p in problems)
            )


# --------------------------------------------------------------------------- generic folder
class InstanceFolder(_PairedDataset):
    """Images and instance-label images in two folders, matched by file stem.

    ``images_dir/cell7.png`` pairs with ``labels_dir/cell7.tif`` (or
    ``.png``, ``.tiff``, ``.npy``). Files are listed when the object is
    created and read lazily when a sample is accessed.

    Parameters
    ----------
    images_dir : str or os.PathLike
        Folder of images (``.png``, ``.tif``, ``.tiff``, ``.jpg``,
        ``.jpeg``, ``.bmp``). Other files (and hidden files) are ignored.
    labels_dir : str or os.PathLike
        Folder of label images (``.png``, ``.tif``, ``.tiff``, ``.npy``):
        integer, single channel, 0 background and objects ``>= 1``. Must be
        a different folder from ``images_dir``.
    names : sequence of str, optional
        Use only these samples, in this order. Each must have an image and a
        label file; other files in the folders are then ignored. Default:
        every file, in natural order of the stems (``img2`` before
        ``img10``); every image must then have a label file and vice versa.

    Raises
    ------
    ValueError
        If a folder is missing or has no usable file, a folder holds two
        files with the same stem (``a.png`` and ``a.tif``), or stems do not
        match (the message lists the unmatched stems of both folders), or a
        name in ``names`` is not available.

    Notes
    -----
    Indexing with an int or a name returns an :class:`InstanceSample`
    (``labels`` cast to ``int32``, ids kept as on disk); a slice returns a new
    :class:`InstanceFolder` on the selected names. Reading raises
    :class:`ValueError` for a float or multi-channel label image, negative
    labels or an image/label size mismatch; :meth:`validate` checks the whole
    data set up front and lists every problem.

    Examples
    --------
    >>> ds = InstanceFolder("nuclei/images", "nuclei/labels")  # doctest: +SKIP
    >>> name, image, labels = ds[0]  # doctest: +SKIP
    >>> ds.validate()  # doctest: +SKIP
    >>> first_ten = ds[:10]  # doctest: +SKIP
    """

    def __init__(
        self,
        images_dir: PathLike,
        labels_dir: PathLike,
        *,
        names: Sequence[str] | None = None,
    ):
        self.images_dir = Path(images_dir)
        self.labels_dir = Path(labels_dir)
        images = _scan(self.images_dir, IMAGE_SUFFIXES, "image")
        labels = _scan(self.labels_dir, LABEL_SUFFIXES, "label")
        if names is None:
            only_images = sorted(set(images) - set(labels), key=natural_sort_key)
            only_labels = sorted(set(labels) - set(images), key=natural_sort_key)
            if only_images or only_labels:
                lines = [f"images and label images in '{self.images_dir}' and '{self.labels_dir}' do not match by name:"]
                if only_images:
                    lines.append(f"  {len(only_images)} image(s) without a label file: {_listing(only_images)}")
                if only_labels:
                    lines.append(f"  {len(only_labels)} label file(s) without an image: {_listing(only_labels)}")
                raise ValueError("\n".join(lines))
            chosen = sorted(images, key=natural_sort_key)
        else:
            if isinstance(names, str):
                raise TypeError("names must be a sequence of sample names, not a single string")
            chosen = list(names)
            missing_image = [n for n in chosen if n not in images]
            missing_label = [n for n in chosen if n not in labels]
            if missing_image or missing_label:
                lines = ["requested names are not available:"]
                if missing_image:
                    lines.append(f"  no image in '{self.images_dir}' for: {_listing(missing_image)}")
                if missing_label:
                    lines.append(f"  no label file in '{self.labels_dir}' for: {_listing(missing_label)}")
                raise ValueError("\n".join(lines))
            if len(set(chosen)) != len(chosen):
                raise ValueError("names must be unique")
        self._names = chosen
        self._image_paths = {n: images[n] for n in images if n in labels}
        self._label_paths = {n: labels[n] for n in images if n in labels}

    def _labels_from_raw(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return _as_labels(raw, path)

    def __repr__(self) -> str:
        return f"InstanceFolder('{self.images_dir}', '{self.labels_dir}', n={len(self)})"


# --------------------------------------------------------------------------- fixed split
def split_by_name(
    names: Sequence[str], fraction: float = 0.1, *, salt: str = ""
) -> tuple[list[int], list[int]]:
    """Split samples into kept and held-out parts by a hash of their names.

    A name is held out when ``int(sha1((salt + name).encode()).hexdigest(), 16)
    / 2**160 < fraction``. The decision for a name depends on that name only: it does
    not change with the order of ``names`` or with which other samples exist,
    so adding images to a data set never moves an old image between the
    parts.

    Parameters
    ----------
    names : sequence of str
        Sample names (e.g. file stems).
    fraction : float, optional
        Expected held-out fraction, ``0 <= fraction < 1`` (default 0.1).
    salt : str, optional
        Prefix hashed with every name. A second split of an already split
        set needs a different salt: with the same one, every kept name hashes
        above ``fraction`` again (e.g. a validation split inside the training
        part of :func:`dsb2018` uses ``salt="val"``).

    Returns
    -------
    kept : list of int
        Indices into ``names`` of the kept (training) samples, ascending.
    held_out : list of int
        Indices of the held-out (test/validation) samples, ascending.

    Raises
    ------
    ValueError
        If ``fraction`` is not in ``[0, 1)``.
    TypeError
        If a name is not a string.

    Notes
    -----
    Tiny data sets: when ``fraction > 0``, at least two names are given and
    the hash rule holds out none of them, the name with the smallest hash is
    held out; symmetrically, when it would hold out all of them, the name
    with the largest hash is kept. With two or more names and
    ``fraction > 0`` both parts are therefore non-empty. With
    ``fraction == 0`` nothing is held out.

    Examples
    --------
    >>> kept, held = split_by_name([f"img{i}" for i in range(1000)], 0.1)
    >>> len(kept) + len(held)
    1000
    >>> 70 < len(held) < 130
    True
    """
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, (int, float, np.number)):
        raise ValueError(f"fraction must be a number in [0, 1), got {fraction!r}")
    fraction = float(fraction)
    if not math.isfinite(fraction) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if isinstance(names, str):
        raise TypeError("names must be a sequence of names, not a single string")
    scale = float(2**160)
    hashes: list[int] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"names must be strings, got {type(name).__name__} ({name!r})")
        hashes.append(int(hashlib.sha1((salt + name).encode("utf-8")).hexdigest(), 16))
    held = [h / scale < fraction for h in hashes]
    if fraction > 0 and len(hashes) >= 2:
        if not any(held):
            held[min(range(len(hashes)), key=hashes.__getitem__)] = True
        elif all(held):
            held[max(range(len(hashes)), key=hashes.__getitem__)] = False
    kept_idx = [i for i, h in enumerate(held) if not h]
    held_idx = [i for i, h in enumerate(held) if h]
    return kept_idx, held_idx


# --------------------------------------------------------------------------- DSB2018
DSB2018_SPLITS = ("train", "test", "all")


def _resolve_dsb2018(root: PathLike | None) -> Path:
    base = data_root() if root is None else Path(root).expanduser()
    candidates = (base / "dsb2018" / "train", base / "train", base)
    for candidate in candidates:
        if (candidate / "images").is_dir() and (candidate / "labels").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no DSB2018 data under '{base}': expected 'images/' and 'labels/' folders in "
        f"'{candidates[0]}' (or '{candidates[1]}', or '{base}' itself). Pass root=... or set "
        f"{DATA_ENV_VAR} to the folder containing 'dsb2018/'"
    )


def dsb2018(
    root: PathLike | None = None, split: str = "train", *, test_fraction: float = 0.1
) -> InstanceFolder:
    """Data Science Bowl 2018 stage-1 nuclei training data [1]_ with a fixed split.

    Expected layout (664 images: RGB(A) ``uint8`` PNGs, one ``uint16`` TIFF
    instance-label image each, nuclei numbered 1..n)::

        dsb2018/train/images/<id>.png
        dsb2018/train/labels/<id>.tif

    The official stage-1 test labels are not used; instead a fixed part of
    the training images is held out by :func:`split_by_name`.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The folder containing ``dsb2018/``, the ``dsb2018`` folder, or its
        ``train`` folder. Default: :func:`clusterseg.datasets.data_root`
        (the ``CLUSTERSEG_DATA`` environment variable, else
        ``../shared/data``).
    split : {"train", "test", "all"}, optional
        ``"train"``: images not held out; ``"test"``: the held-out images
        (about ``test_fraction`` of them); ``"all"``: every image.
    test_fraction : float, optional
        Held-out fraction passed to :func:`split_by_name` (default 0.1).

    Returns
    -------
    InstanceFolder
        Lazy sequence of :class:`InstanceSample`, names in natural order.

    Raises
    ------
    FileNotFoundError
        If the data are not found (the message names the path tried and the
        ``CLUSTERSEG_DATA`` variable).
    ValueError
        For an unknown ``split``, a bad ``test_fraction``, or images and labels
        that do not match by name.

    References
    ----------
    .. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging
       experiments: the 2018 Data Science Bowl", Nature Methods 16,
       1247-1253, 2019.

    Examples
    --------
    >>> train = dsb2018(split="train")  # doctest: +SKIP
    >>> test = dsb2018(split="test")  # doctest: +SKIP
    >>> set(train.names).isdisjoint(test.names)  # doctest: +SKIP
    True
    """
    if split not in DSB2018_SPLITS:
        raise ValueError(f"split must be one of {DSB2018_SPLITS}, got {split!r}")
    folder = _resolve_dsb2018(root)
    everything = InstanceFolder(folder / "images", folder / "labels")
    kept, held = split_by_name(everything.names, test_fraction)
    if split == "all":
        return everything
    indices = kept if split == "train" else held
    names = everything.names
    return InstanceFolder(everything.images_dir, everything.labels_dir, names=[names[i] for i in indices])


# --------------------------------------------------------------------------- Cityscapes
_CS_IMAGE_SUFFIX = "_leftImg8bit.png"
_CS_LABEL_SUFFIX = "_gtFine_instanceIds.png"


def _select_instances(ids: np.ndarray, class_ids: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Renumber the instances of ``class_ids`` in a Cityscapes instanceIds map.

    Returns ``int32`` labels (0 background, objects 1..n in raster order of
    their first pixel) and ``{label: class id}``.
    """
    flat = ids.reshape(-1).astype(np.int64, copy=False)
    mask = (flat >= 1000) & np.isin(flat // 1000, class_ids)
    out = np.zeros(flat.shape, dtype=np.int32)
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return out.reshape(ids.shape), {}
    values = flat[positions]
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(uniq.size, dtype=np.int32)
    rank[order] = np.arange(1, uniq.size + 1, dtype=np.int32)
    out[positions] = rank[inverse.reshape(-1)]
    classes = {int(rank[k]): int(uniq[k] // 1000) for k in range(uniq.size)}
    return out.reshape(ids.shape), dict(sorted(classes.items()))


class CityscapesInstances(_PairedDataset):
    """Cityscapes fine instance annotations for selected classes [1]_.

    Layout (the official one)::

        root/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
        root/gtFine/<split>/<city>/<stem>_gtFine_instanceIds.png

    In ``instanceIds`` a pixel value ``v >= 1000`` is instance ``v % 1000``
    of class ``v // 1000``; ``v < 1000`` is a class id without instance
    (stuff, or a crowd "group" region such as many cars). The samples keep
    only instances of the selected classes, renumbered ``1..n`` in raster
    order of their first pixel; everything else (including crowd regions of
    the selected classes) is background 0.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The Cityscapes folder holding ``leftImg8bit/`` and ``gtFine/``.
        Default: ``<data_root()>/cityscapes``.
    split : str, optional
        ``"train"`` (default), ``"val"`` or ``"test"`` (the public test
        annotations are empty).
    classes : sequence of str, optional
        Class names from :data:`CITYSCAPES_INSTANCE_CLASSES` (``person``,
        ``rider``, ``car``, ``truck``, ``bus``, ``caravan``, ``trailer``,
        ``train``, ``motorcycle``, ``bicycle``). Default ``("car",)``.

    Attributes
    ----------
    root : pathlib.Path
    split : str
    classes : tuple of str
    class_ids : tuple of int
        Cityscapes ids of ``classes``.

    Raises
    ------
    ValueError
        For an unknown class name (the valid ones are listed) or an image
        without its ``gtFine`` file (the missing ones are listed).
    FileNotFoundError
        If ``leftImg8bit/<split>`` or ``gtFine/<split>`` does not exist, or
        holds no image.

    Notes
    -----
    Sample names are the file stems without suffix, e.g.
    ``"aachen_000000_000019"``, ordered naturally (by city, then number).
    :meth:`class_of` tells the class of each renumbered object.

    References
    ----------
    .. [1] M. Cordts, M. Omran, S. Ramos, T. Rehfeld, M. Enzweiler,
       R. Benenson, U. Franke, S. Roth and B. Schiele, "The Cityscapes
       Dataset for Semantic Urban Scene Understanding", CVPR 2016.

    Examples
    --------
    >>> ds = CityscapesInstances("cityscapes", "val", classes=("car", "person"))  # doctest: +SKIP
    >>> name, image, labels = ds[0]  # doctest: +SKIP
    >>> ds.class_of(0)  # doctest: +SKIP
    {1: 26, 2: 24, 3: 26}
    """

    def __init__(
        self,
        root: PathLike | None = None,
        split: str = "train",
        classes: Sequence[str] = ("car",),
    ):
        if isinstance(classes, str):
            classes = (classes,)
        classes = tuple(dict.fromkeys(classes))
        if not classes:
            raise ValueError(
                f"classes must name at least one of {', '.join(CITYSCAPES_INSTANCE_CLASSES)}"
            )
        unknown = [c for c in classes if c not in CITYSCAPES_INSTANCE_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown Cityscapes instance class(es) {', '.join(map(repr, unknown))}; "
                f"valid classes: {', '.join(CITYSCAPES_INSTANCE_CLASSES)}"
            )
        self.root = (data_root() / "cityscapes") if root is None else Path(root).expanduser()
        self.split = split
        self.classes = classes
        self.class_ids = tuple(CITYSCAPES_INSTANCE_CLASSES[c] for c in classes)
        image_split = self.root / "leftImg8bit" / split
        label_split = self.root / "gtFine" / split
        for folder in (image_split, label_split):
            if not folder.is_dir():
                parent = folder.parent
                available = (
                    sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
                )
                raise FileNotFoundError(
                    f"Cityscapes folder '{folder}' not found (available splits in '{parent}': "
                    f"{', '.join(available) or 'none'}); pass the folder holding 'leftImg8bit/' "
                    f"and 'gtFine/' as root (or set {DATA_ENV_VAR} to the folder containing "
                    "'cityscapes/')"
                )
        images: dict[str, Path] = {}
        labels: dict[str, Path] = {}
        missing: list[str] = []
        for image_path in image_split.glob(f"*/*{_CS_IMAGE_SUFFIX}"):
            stem = image_path.name[: -len(_CS_IMAGE_SUFFIX)]
            label_path = label_split / image_path.parent.name / f"{stem}{_CS_LABEL_SUFFIX}"
            if label_path.is_file():
                images[stem] = image_path
                labels[stem] = label_path
            else:
                missing.append(f"{image_path.parent.name}/{stem}")
        if missing:
            missing.sort(key=natural_sort_key)
            raise ValueError(
                f"{len(missing)} Cityscapes image(s) in '{image_split}' have no "
                f"'*{_CS_LABEL_SUFFIX}' file in '{label_split}': {_listing(missing)}"
            )
        if not images:
            raise FileNotFoundError(f"no '*{_CS_IMAGE_SUFFIX}' images in '{image_split}/<city>/'")
        self._names = sorted(images, key=natural_sort_key)
        self._image_paths = images
        self._label_paths = labels

    def _labels_from_raw(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return _select_instances(_as_labels(raw, path), np.asarray(self.class_ids))[0]

    def class_of(self, index: int | str) -> dict[int, int]:
        """Class id of each object of sample ``index``.

        Parameters
        ----------
        index : int or str
            Position or name of the sample.

        Returns
        -------
        dict of int to int
            ``{label: Cityscapes class id}`` for the labels ``1..n`` of
            ``self[index].labels`` (e.g. ``{1: 26, 2: 24}``: car, person).
        """
        path = self.label_path(index)
        _, classes = _select_instances(_as_labels(read_label_image(path), path), np.asarray(self.class_ids))
        return classes

    def class_map(self, index: int | str) -> np.ndarray:
        """Per-pixel class of sample ``index``, for one seed map per class.

        Returns
        -------
        (H, W) int8 ndarray
            0 background, ``c`` for an object of ``self.classes[c - 1]``, and
            -1 for crowd regions of the selected classes (pixels Cityscapes
            labels with the bare class id, e.g. a group of cars), which the
            training loss ignores instead of calling them background.
        """
        path = self.label_path(index)
        ids = _as_labels(read_label_image(path), path).astype(np.int64, copy=False)
        out = np.zeros(ids.shape, dtype=np.int8)
        for position, class_id in enumerate(self.class_ids, start=1):
            out[(ids >= 1000) & (ids // 1000 == class_id)] = position
        out[(ids < 1000) & np.isin(ids, self.class_ids)] = -1  # crowd: the bare class id
        return out

    def __repr__(self) -> str:
        return (
            f"CityscapesInstances('{self.root}', split='{self.split}', "
            f"classes={self.classes}, n={len(self)})"
        )


def cityscapes_instances(
    root: PathLike | None = None, split: str = "train", classes: Sequence[str] = ("car",)
) -> CityscapesInstances:
    """Open Cityscapes instance annotations for ``classes``.

    See :class:`CityscapesInstances` for the layout, parameters and errors.

    Returns
    -------
    CityscapesInstances
        Lazy sequence of :class:`InstanceSample` with objects of the chosen
        classes numbered ``1..n`` per image.
    """
    return CityscapesInstances(root, split=split, classes=classes)
