"""Data sets: locating the data folder and loading BSDS500."""

from ._paths import DATA_ENV_VAR, data_root
from .bsds500 import BSDS500, BSDSSample, bsds500, read_bsds_ground_truth

__all__ = ["BSDS500", "BSDSSample", "DATA_ENV_VAR", "bsds500", "data_root", "read_bsds_ground_truth"]
