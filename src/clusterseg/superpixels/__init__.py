"""Superpixel methods behind one function, :func:`superpixels`.

Classical baselines (SLIC, SNIC, Felzenszwalb, compact watershed, OpenCV
SEEDS/LSC/SLIC) live in :mod:`clusterseg.superpixels.classical`; the learned
LNSNet method in :mod:`clusterseg.superpixels.lnsnet`. Every method's output goes
through :func:`enforce_connectivity`, so results are always connected int32
label maps numbered ``0..n-1``.
"""

from .api import METHODS, available_methods, superpixels
from .connectivity import enforce_connectivity

__all__ = ["superpixels", "available_methods", "enforce_connectivity", "METHODS"]
