"""Moved to :mod:`clusterseg.graph.connectivity` (the LNSNet model below this layer uses it too);
this name stays for old imports, as an alias of the new module."""

import sys

from ..graph import connectivity as _moved

sys.modules[__name__] = _moved
