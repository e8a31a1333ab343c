"""`lib`: the reference implementations of *Following the Gradient*.

One module per idea; each names the chapter that teaches it and the papers it
follows. Labs use it as::

    import lib
    device = lib.device()      # BOOK_DEVICE, else CUDA if present, else CPU
    lib.seed(0)
    from lib import calculus   # or lib.calculus.finite_difference(...)

Submodules load on first use, so ``import lib`` stays quick.
"""

from __future__ import annotations

import importlib

from .runtime import configure_threads, device, scale, seed, threads

__all__ = ["device", "seed", "scale", "threads"]
__version__ = "0.1.0"

configure_threads()


def __getattr__(name: str):
    # PEP 562: `lib.calculus` imports lib/calculus.py on first access.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        module = importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'lib' has no attribute or submodule {name!r}") from None
        raise
    globals()[name] = module
    return module
