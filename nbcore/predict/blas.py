"""One BLAS thread per walk-forward fit, and the fits of a stage side by side.

Why: a fit is sixteen weighted least-squares solves whose big product is ``Xw.T @ X``, a
(15 x ~60 k) by (~60 k x 15) matrix product. OpenBLAS (numpy's wheels) splits it over every
core, and on a small or busy machine its threads spend more time waiting for each other than
multiplying: on the 2-core bench machine under load one fit took 0.38 s of CPU with the
default threads and 0.12 s with one (same coefficients, bit for bit: the split is over the
15 x 15 output, never over the summed rows). The stage instead fits several models at once,
one BLAS thread each (``WalkForwardModels.ensure``): numpy releases the GIL inside the
products, so the cores are busy with useful work.

OpenBLAS's ``openblas_set_num_threads_local`` sets the count for the calling thread only, so
a fit running in a worker thread never changes what other code in the process gets. Where
numpy uses another BLAS (MKL, Accelerate) or the symbol is missing, ``one_thread`` does
nothing: results never depend on it, only the time.
"""
from __future__ import annotations

import contextlib
import ctypes
from functools import lru_cache
from typing import Callable, Iterator, Optional


@lru_cache(maxsize=None)
def _local_setter() -> Optional[Callable[[int], int]]:
    """OpenBLAS's per-thread thread-count setter, from the library numpy has loaded (Linux:
    found in ``/proc/self/maps``), or None."""
    try:
        import numpy  # noqa: F401 - its BLAS must be loaded to be found

        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "blas" in line.lower() and ".so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local")
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
        return fn
    return None


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """BLAS calls made by this thread inside the block use one thread (then the count is restored)."""
    setter = _local_setter()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)
