"""umap-learn, imported once per process with its numba kernels cached on disk.

Apart from the projection itself because it is about the library's start-up cost, not about maps.
"""

from __future__ import annotations

import functools
import logging
import warnings

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def import_umap():
    """``import umap``, with its numba kernels cached on disk from now on.

    umap-learn compiles ~10 numba functions on the first fit of every process (9 s of CPU here)
    because only one of its ~110 is declared ``cache=True``; asking numba to cache them all
    (what ``cache=True`` does) brings a later process's first fit down to ~0.1 s. The cache
    lives where numba puts it (``__pycache__`` beside umap, or numba's user cache folder); if
    numba can find no writable place, the kernels are compiled as before.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"umap\b")  # e.g. "Tensorflow not installed"
        import umap
    _cache_numba_kernels(("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.sparse", "umap.spectral"))
    return umap


def _cache_numba_kernels(module_names) -> None:
    """Turn on numba's on-disk cache for every jitted function of these (imported) modules."""
    import sys

    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return
    for module in filter(None, (sys.modules.get(name) for name in module_names)):
        for function in list(vars(module).values()):
            if isinstance(function, Dispatcher):
                try:
                    function.enable_caching()
                except Exception as exc:  # e.g. no writable cache folder: compile in memory as before
                    logger.debug("numba cache not enabled for %s: %s", getattr(function, "__name__", function), exc)
