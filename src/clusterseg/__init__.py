"""clusterseg: image segmentation by clustering pixels in a learned embedding space.

Functions over NumPy arrays, in the style of scikit-image:

- :func:`clusterseg.superpixels` -- superpixels (LNSNet and classical baselines),
  always a connected int32 label map ``0..n-1``.
- :func:`clusterseg.segment`, :func:`clusterseg.segment_hierarchy`,
  :func:`clusterseg.segment_sequence` -- unsupervised segmentation (Deep Superpixel
  Cut, SP-WNet) of images, videos and 3D volumes.
- :func:`clusterseg.instances` -- instance segmentation with spatial embeddings
  and a learned clustering bandwidth (shipped nuclei model, or your own).
- :func:`clusterseg.enforce_connectivity` -- the shared connectivity post-processing.
- :mod:`clusterseg.metrics` -- superpixel, region (BSDS500) and instance metrics.
- :mod:`clusterseg.io`, :mod:`clusterseg.datasets`, :mod:`clusterseg.visualize`.
"""

from . import datasets, io, metrics, visualize
from .instances.api import instances
from .io import read_image, read_labels, write_image, write_labels
from .superpixels import available_methods, enforce_connectivity, superpixels
from .visualize import label2rgb_random, overlay_boundaries

__version__ = "0.1.0"

# The unsupervised methods import torch (~1.5 s); load them on first use so that
# ``import clusterseg`` and ``clusterseg --help`` stay fast.
_LAZY = {"segment", "segment_hierarchy", "segment_sequence"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import unsupervised

        return getattr(unsupervised, name)
    raise AttributeError(f"module 'clusterseg' has no attribute {name!r}")

__all__ = [
    "available_methods",
    "datasets",
    "enforce_connectivity",
    "instances",
    "io",
    "label2rgb_random",
    "metrics",
    "overlay_boundaries",
    "read_image",
    "read_labels",
    "segment",
    "segment_hierarchy",
    "segment_sequence",
    "superpixels",
    "visualize",
    "write_image",
    "write_labels",
]
