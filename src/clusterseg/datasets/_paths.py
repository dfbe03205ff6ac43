"""Locating the data folder shared by benchmarks and training scripts."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "data_root"]

#: Environment variable that overrides the data folder.
DATA_ENV_VAR = "CLUSTERSEG_DATA"


def _candidates() -> list[Path]:
    # src/clusterseg/datasets/_paths.py -> parents[3] is the repository root
    # in a source checkout (for an installed package it is some lib folder,
    # where ../shared/data simply does not exist).
    repo = Path(__file__).resolve().parents[3]
    cwd = Path.cwd()
    out = [repo.parent / "shared" / "data", cwd.parent / "shared" / "data", cwd / "shared" / "data"]
    unique: list[Path] = []
    for path in out:
        if path not in unique:
            unique.append(path)
    return unique


def data_root() -> Path:
    """Return the folder holding the data sets (``bsds500/``, ``cheetah/``, ...).

    Resolution order:

    1. the ``CLUSTERSEG_DATA`` environment variable, if set (it must exist);
    2. ``<repository>/../shared/data``, where ``<repository>`` is the source
       checkout this package is imported from (``src/clusterseg/..``);
    3. ``<cwd>/../shared/data`` and ``<cwd>/shared/data``, for installed
       packages run from inside a checkout.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If ``CLUSTERSEG_DATA`` points to a missing folder or no candidate
        exists; the message lists what was tried.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_ENV_VAR}={env!r} is not an existing folder")
        return path
    candidates = _candidates()
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    tried = ", ".join(f"'{p}'" for p in candidates)
    raise FileNotFoundError(
        f"no data folder found (tried {tried}); set the {DATA_ENV_VAR} environment "
        "variable to the folder that contains e.g. 'bsds500/'"
    )
