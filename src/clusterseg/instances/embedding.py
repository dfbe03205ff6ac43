"""Moved to :mod:`clusterseg.nn.spatial_embedding` (one model layer); this name stays for old imports.

The old module name is an alias of the new module, so that every name,
private ones included, and monkeypatching keep working.
"""

import sys

from ..nn import spatial_embedding as _moved

sys.modules[__name__] = _moved
