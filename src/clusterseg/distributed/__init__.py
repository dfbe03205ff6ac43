"""Large images, volumes and collections on dask (``pip install clusterseg[distributed]``).

* :func:`instances` and :func:`superpixels`: an image larger than memory
  (NumPy, dask, Zarr, OME-Zarr, TIFF) processed chunk by chunk with a halo,
  labels unique over the whole image, objects crossing chunk borders joined;
  the result as a dask array or written to Zarr.
* :func:`segment_frames`: a fitted SP-WNet applied to every frame of a
  video or slice of a volume held as a dask array, with consistent class ids.
* :func:`process_files`: a folder or list of files, one output set per input
  written atomically, finished files skipped on a rerun, failures reported at
  the end.

``client=None`` runs on dask's local threads; a ``dask.distributed.Client``
(a laptop, a workstation or a cluster) is used as is.
"""

from .arrays import instances, superpixels
from .files import process_files
from .frames import segment_frames

__all__ = ["instances", "superpixels", "process_files", "segment_frames"]
