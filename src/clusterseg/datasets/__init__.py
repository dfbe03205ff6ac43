"""Data sets: locating the data folder, BSDS500, and instance-segmentation data (DSB2018, Cityscapes, folders)."""

from ._paths import DATA_ENV_VAR, data_root
from .bsds500 import BSDS500, BSDSSample, bsds500, read_bsds_ground_truth
from .instances import (
    CITYSCAPES_INSTANCE_CLASSES,
    CityscapesInstances,
    InstanceFolder,
    InstanceSample,
    cityscapes_instances,
    dsb2018,
    image_modality,
    split_by_name,
)

__all__ = [
    "BSDS500",
    "BSDSSample",
    "CITYSCAPES_INSTANCE_CLASSES",
    "CityscapesInstances",
    "DATA_ENV_VAR",
    "InstanceFolder",
    "InstanceSample",
    "bsds500",
    "cityscapes_instances",
    "data_root",
    "dsb2018",
    "image_modality",
    "read_bsds_ground_truth",
    "split_by_name",
]
