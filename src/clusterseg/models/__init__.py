"""clusterseg.models: the learned models and their registry.

Sits above ``nn/`` (modules and tensor functions) and below the public
functions (``superpixels/``, ``unsupervised/``, ``instances/``) and
``training/``.

- :func:`list_models`, :func:`model_info`, :func:`load_model`: every shipped
  model, per-image method and classical method by name; any checkpoint by path.
- :mod:`~clusterseg.models.lnsnet`: LNSNet weights files, inference config, test-time adaptation.
- :mod:`~clusterseg.models.lnsnet_model`: the LNSNet inference pipeline and :class:`LNSNetModel`.
- :mod:`~clusterseg.models.spatial_embedding`: the spatial-embedding instance model.
- :mod:`~clusterseg.models.instance_clustering`: seeds-and-bandwidth clustering of embeddings.
"""

from .registry import WEIGHTS_DIR, ModelEntry, list_models, load_model, model_info, weights_path

__all__ = ["WEIGHTS_DIR", "ModelEntry", "list_models", "load_model", "model_info", "weights_path"]
