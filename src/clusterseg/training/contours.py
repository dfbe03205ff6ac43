"""Moved to :mod:`clusterseg.contours` (inference uses contour maps too); kept for old imports."""

from ..contours import canny_contours, contour_map, folder_contours, sobel_contours

__all__ = ["sobel_contours", "canny_contours", "folder_contours", "contour_map"]
