"""clusterseg.graph: the superpixel-graph layer shared by DSC and SP-WNet.

- :mod:`~clusterseg.graph.adjacency`: region adjacency (4/8-connectivity).
- :mod:`~clusterseg.graph.pooling`: scatter-mean pooling, majority votes.
- :mod:`~clusterseg.graph.affinity`: colour/deep edge weights, affinity matrices.
- :mod:`~clusterseg.graph.losses`: soft normalised cut, DSC cut, continuity,
  similarity (pseudo-label cross-entropy), SuperAE smoothing.
- :mod:`~clusterseg.graph.spectral`: spectral NCut baseline, Ward region merging.
- :mod:`~clusterseg.graph.globalisation`: pixel-level spectral globalisation of a boundary map (sPb).
"""

from .adjacency import adjacency_matrix, directed_edges, region_adjacency
from .affinity import affinity_matrix, edge_distances, exp_weights, gaussian_weights, mean_colour
from .losses import (
    continuity_loss,
    dsc_cut_loss,
    neighbour_softmax,
    pseudo_labels,
    similarity_loss,
    soft_ncut_loss,
    superpixel_smoothing_loss,
)
from .pooling import majority_vote, pool_mean, pool_sizes, unpool
from .spectral import merge_hierarchy, ncut_eigenvectors, spectral_embedding, spectral_ncut

__all__ = [
    "adjacency_matrix",
    "affinity_matrix",
    "continuity_loss",
    "directed_edges",
    "dsc_cut_loss",
    "edge_distances",
    "exp_weights",
    "gaussian_weights",
    "majority_vote",
    "mean_colour",
    "merge_hierarchy",
    "neighbour_softmax",
    "pool_mean",
    "pool_sizes",
    "pseudo_labels",
    "region_adjacency",
    "similarity_loss",
    "soft_ncut_loss",
    "ncut_eigenvectors",
    "spectral_embedding",
    "spectral_ncut",
    "superpixel_smoothing_loss",
    "unpool",
]
