"""clusterseg: image segmentation by clustering pixels in a learned embedding space.

Public API (scikit-image style, functions over NumPy arrays):

- :func:`clusterseg.superpixels` -- superpixels (classical methods and LNSNet).
"""

__version__ = "0.1.0"
