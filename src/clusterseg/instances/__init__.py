"""Instance segmentation: spatial embeddings with learned clustering bandwidth.

- :func:`clusterseg.instances` (in :mod:`.api`): segment one image with a
  shipped or trained model.
- :mod:`.model`: :class:`~.model.SpatialEmbeddingModel` (branched ERFNet,
  normalisation, tiling, test-time augmentation, save/load).
- :mod:`.embedding`, :mod:`.loss`, :mod:`.clustering`: the method's pieces
  (Neven et al., CVPR 2019).
- :mod:`.classical`: an Otsu + distance-transform watershed baseline for
  nuclei.

Training lives in :mod:`clusterseg.training.instances`.
"""

from .api import PRETRAINED_MODELS, InstanceResult, instances, load_instance_model

__all__ = ["PRETRAINED_MODELS", "InstanceResult", "instances", "load_instance_model"]
