"""clusterseg: image segmentation by clustering pixels in a learned embedding space.

Functions over NumPy arrays, in the style of scikit-image:

- :func:`clusterseg.superpixels` -- superpixels (LNSNet and classical baselines),
  always a connected int32 label map ``0..n-1``.
- :func:`clusterseg.enforce_connectivity` -- the shared connectivity post-processing.
- :mod:`clusterseg.metrics` -- superpixel, region (BSDS500) and instance metrics.
- :mod:`clusterseg.io`, :mod:`clusterseg.datasets`, :mod:`clusterseg.visualize`.
"""

from . import datasets, io, metrics, visualize
from .io import read_image, read_labels, write_image, write_labels
from .superpixels import available_methods, enforce_connectivity, superpixels
from .visualize import label2rgb_random, overlay_boundaries

__version__ = "0.1.0"

__all__ = [
    "available_methods",
    "datasets",
    "enforce_connectivity",
    "io",
    "label2rgb_random",
    "metrics",
    "overlay_boundaries",
    "read_image",
    "read_labels",
    "superpixels",
    "visualize",
    "write_image",
    "write_labels",
]
