"""Helpers shared by the benchmark scripts: provenance header, thread control, tables.

Every benchmark writes a Markdown file that starts with :func:`header_lines`
(the command that produced it, the machine, the date and library versions) so
that a table can always be traced back and rerun.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_PACKAGES = ("numpy", "scipy", "scikit-image", "torch", "opencv-contrib-python-headless", "pysnic")


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran this script, relative to the repository root when possible."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        script = Path(argv[0]).resolve()
        try:
            argv[0] = str(script.relative_to(REPO_ROOT))
        except ValueError:
            pass
    return "python " + " ".join(shlex.quote(a) for a in argv)


def cpu_model() -> str:
    """CPU model name (from /proc/cpuinfo on Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(threads: int | None = None) -> str:
    """One line: CPU model, logical CPUs, OS, Python, and the thread setting used."""
    parts = [
        cpu_model(),
        f"{os.cpu_count()} logical CPUs",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
    ]
    if threads is not None:
        parts.append(f"{threads} threads for torch/OpenCV/BLAS")
    return ", ".join(parts)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def package_versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> str:
    """``name version`` for each installed package, comma separated (missing ones skipped)."""
    out = []
    for name in packages:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        import clusterseg

        out.insert(0, f"clusterseg {getattr(clusterseg, '__version__', 'dev')}")
    except ImportError:
        pass
    return ", ".join(out)


def git_revision() -> str:
    """Short git commit of the checkout (with ``+dirty`` when files differ), or ``unknown``."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev


def header_lines(
    title: str, *, threads: int | None = None, command: str | None = None, packages: Iterable[str] = DEFAULT_PACKAGES
) -> list[str]:
    """Markdown provenance header: title, command, machine, date, versions."""
    return [
        f"# {title}",
        "",
        f"- Command: `{command or command_line()}`",
        f"- Machine: {machine_description(threads)}",
        f"- Date: {utc_now()} (git {git_revision()})",
        f"- Versions: {package_versions(packages)}",
        "",
    ]


def set_threads(n: int) -> None:
    """Limit torch, OpenCV and BLAS/OpenMP threads to ``n`` (call in scripts only).

    Environment variables only affect libraries loaded afterwards, so call this
    before heavy imports where possible.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> list[str]:
    """Lines of a GitHub Markdown table; ``align`` is one char per column (l/r/c)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
