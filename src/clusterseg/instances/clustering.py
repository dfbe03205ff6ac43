"""Moved to :mod:`clusterseg.models.instance_clustering` (one model layer); this name stays for old imports.

The old module name is an alias of the new module, so that every name,
private ones included, and monkeypatching keep working.
"""

import sys

from ..models import instance_clustering as _moved

sys.modules[__name__] = _moved
