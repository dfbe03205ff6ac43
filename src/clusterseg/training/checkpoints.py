"""Moved to :mod:`clusterseg.io.checkpoints` (inference code loads checkpoints too); kept for old imports."""

from ..io.checkpoints import CheckpointError, build_checked, check_resume_config, load_checkpoint, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "check_resume_config", "build_checked", "CheckpointError"]
