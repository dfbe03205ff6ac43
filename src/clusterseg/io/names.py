"""Output names for batches: one per input, unique even when inputs share a stem.

Shared by the command line and :func:`clusterseg.distributed.process_files`,
so that both name the outputs of ``a/x.png`` and ``b/x.png`` the same way
(``a_x``, ``b_x``) instead of one refusing what the other accepts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fold_name", "output_names"]


def fold_name(name: str) -> str:
    """Compare output names as the file system will (case-insensitive on macOS and Windows)."""
    return name.casefold() if sys.platform in ("darwin", "win32") else name


def _distinct_name(path: Path, others: Sequence[Path]) -> str:
    """Name of ``path``'s outputs that differs from ``others`` (absolute paths with the same stem).

    The fewest enclosing folders that tell ``path`` apart from inputs in other folders are
    prefixed (``a/x.png`` -> ``a_x``); an input in the same folder adds the extension (``x_png``).
    """
    if not others:
        return path.stem
    folder = path.parent.parts[1:]
    elsewhere = [o.parent.parts[1:] for o in others if o.parent != path.parent]
    depth = 1 if elsewhere else 0
    while depth and depth < len(folder) and any(o[-depth:] == folder[-depth:] for o in elsewhere):
        depth += 1
    ext = path.suffix.lstrip(".") if any(o.parent == path.parent for o in others) else ""
    return "_".join(part for part in (*folder[len(folder) - depth:], path.stem, ext) if part)


def output_names(paths: Sequence[Path]) -> list[str]:
    """Output name (``<name>_labels.png``...) of each distinct input: its stem, made unique.

    Raises ValueError naming both inputs, before anything is written, if two names still clash.
    """
    full = [Path(os.path.abspath(p)) for p in paths]
    by_stem: dict[str, list[Path]] = {}
    for path in full:
        by_stem.setdefault(fold_name(path.stem), []).append(path)
    names = [_distinct_name(p, [o for o in by_stem[fold_name(p.stem)] if o != p]) for p in full]
    owner: dict[str, Path] = {}
    for path, name in zip(paths, names):
        other = owner.setdefault(fold_name(name), path)
        if other is not path:
            raise ValueError(f"{other} and {path} would both write {name}_*; rename one of them")
    return names
