"""Image, volume, video-frame and label-map input/output.

Readers return arrays in their native dtype (no rescaling); methods that need
colour normalise with :func:`clusterseg._validation.to_float_rgb`. Writers are
atomic (temporary file + rename) and never replace an existing file unless
``overwrite=True``.
"""

from .read import (
    IMAGE_EXTENSIONS,
    FrameSequence,
    iter_video,
    list_frames,
    natural_sort_key,
    read_frames,
    read_image,
    read_label_image,
    read_labels,
    read_video,
    read_volume,
    rgb_to_labels,
)
from .write import atomic_write, write_gif, write_image, write_labels, write_video

__all__ = [
    "IMAGE_EXTENSIONS",
    "FrameSequence",
    "atomic_write",
    "iter_video",
    "list_frames",
    "natural_sort_key",
    "read_frames",
    "read_image",
    "read_label_image",
    "read_labels",
    "read_video",
    "read_volume",
    "rgb_to_labels",
    "write_gif",
    "write_image",
    "write_labels",
    "write_video",
]
