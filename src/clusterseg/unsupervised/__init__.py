"""clusterseg.unsupervised: label-free segmentation on a superpixel graph.

- :func:`segment` -- one image, ``method="dsc"`` (Deep Superpixel Cut) or
  ``"spwnet"`` (SP-WNet trained on the image itself).
- :func:`segment_hierarchy` -- several region counts from one optimisation, and
  an ultrametric contour map (:func:`ucm_to_labels` cuts it at any scale).
- :func:`segment_sequence` / :func:`iter_segment_sequence` -- videos and 3-D
  volumes with one SP-WNet trained on a few frames (consistent class ids).
- :func:`fit_sequence_model` / :class:`SPWNetModel` -- fit / predict / save / load.
"""

from .api import METHODS, fit_sequence_model, iter_segment_sequence, segment, segment_hierarchy, segment_sequence
from ..graph.ucm import ucm_to_labels
from .dsc import DSCConfig, DSCResult, deep_superpixel_cut
from .hierarchy import HierarchyOptions, boundary_hierarchy
from .spwnet import PatchSampler, SPWNetConfig, SPWNetModel

__all__ = [
    "DSCConfig",
    "DSCResult",
    "HierarchyOptions",
    "boundary_hierarchy",
    "METHODS",
    "PatchSampler",
    "SPWNetConfig",
    "SPWNetModel",
    "deep_superpixel_cut",
    "fit_sequence_model",
    "iter_segment_sequence",
    "segment",
    "segment_hierarchy",
    "segment_sequence",
    "ucm_to_labels",
]
