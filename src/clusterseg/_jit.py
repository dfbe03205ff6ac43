"""Numba compilation shared by the compiled CPU kernels (one place for the flags and the cache).

Kernels are plain Python functions compiled on first use, cached on disk by
Numba between processes, and built serial: any thread may call them at the
same time (threaded Dask workers), and their results do not depend on the
number of threads.
"""

from __future__ import annotations

from typing import Callable

try:  # numba is a dependency; callers keep a NumPy / PyTorch path for where it cannot be imported
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

__all__ = ["available", "jit"]

_COMPILED: dict[Callable, Callable] = {}


def available() -> bool:
    """Whether Numba can be imported (the compiled kernels can run)."""
    return numba is not None


def jit(function: Callable) -> Callable:
    """``function`` compiled with Numba on first use (``nopython``, ``nogil``, disk cache).

    Only reassociation and contraction are allowed as fast-math flags: they let
    the channel sums vectorise, while infinities keep their meaning.
    """
    if function not in _COMPILED:
        options = dict(fastmath={"reassoc", "contract"}, nogil=True)
        try:
            compiled = numba.njit(cache=True, **options)(function)
        except RuntimeError:  # no writable cache location (read-only install and home): compile per process
            compiled = numba.njit(cache=False, **options)(function)
        _COMPILED[function] = compiled
    return _COMPILED[function]
