"""Where the book's code runs: device, seeds, scale and threads.

Introduced in the tour lab (``notebooks/00_tour.ipynb``, chapter 0). This is the
only module that reads the environment; every other module takes its device
from the tensors it is given.

Environment variables
---------------------
``BOOK_DEVICE``   ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; unset means CUDA when
                  available, else CPU.
``BOOK_SCALE``    ``small`` (default: every lab in about a minute on a laptop CPU)
                  or ``full`` (larger models and more steps, meant for a GPU).
``BOOK_THREADS``  number of CPU threads torch may use; unset means 1.

Why one thread by default: the labs train small models (widths up to a few
hundred), and the book's test command runs two kernels side by side on a
2-core machine. Measured on that machine (``torch.set_num_threads``), one
training step of a 64-256-256-10 MLP on a batch of 512: one process alone
took 3.6 ms with 1 thread and 1.9 ms with 2; two processes side by side took
3.7 ms each with 1 thread and 14-20 ms each with 2 threads (oversubscription).
A modest gain alone against a 4-5x loss in the common case decides it; set
``BOOK_THREADS`` to use more cores for a single big run.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["device", "seed", "scale", "threads", "configure_threads", "SCALES"]

SCALES = ("small", "full")


def device() -> torch.device:
    """The device every lab puts its tensors and models on.

    Returns ``torch.device(BOOK_DEVICE)`` when the variable is set, else CUDA when
    available, else CPU. Chapter 0 (the tour).

    Raises ValueError for a value torch does not know, or for a CUDA/MPS device
    that this machine does not have, naming what was asked for.
    Reference: none (book infrastructure).
    """
    wanted = os.environ.get("BOOK_DEVICE", "").strip()
    if not wanted:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(wanted)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"BOOK_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got {wanted!r}"
        ) from err
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"BOOK_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got {wanted!r}"
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"BOOK_DEVICE={wanted!r} but this torch build sees no CUDA device "
                f"(torch {torch.__version__}); install a CUDA build or use BOOK_DEVICE=cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"BOOK_DEVICE={wanted!r} but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"BOOK_DEVICE={wanted!r} but MPS is not available here")
    return dev


def _check_device(device, name: str = "device") -> torch.device | None:
    """A ``device`` argument (None, a str or a torch.device) as a device this machine has.

    For the functions that take one (the data sets, the eigen-solvers); None stays None.
    Raises TypeError for another type, ValueError for a name torch does not know or a
    device that is not here.
    """
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be None, a str or a torch.device, got {type(device).__name__} "
                        f"({device!r})")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"{name}={device!r} but this machine has {torch.cuda.device_count()} "
                         "visible CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}={device!r} but MPS is not available here")
    return dev


def seed(n: int) -> int:
    """Seed Python's ``random``, NumPy and torch (all devices) with ``n``.

    Also asks cuDNN for deterministic kernels and switches off its autotuner,
    which costs little for the book's small models. Returns ``n`` so a lab can
    record it. Chapter 0 (the tour).

    Raises TypeError for a non-integer and ValueError for a negative seed or one
    of 2**32 or more (NumPy's limit).
    Reference: none (book infrastructure).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"seed expects an int, got {type(n).__name__} ({n!r})")
    n = int(n)
    if not 0 <= n < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {n}")
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)  # seeds every CUDA device too
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return n


def scale() -> str:
    """The experiment size: ``"small"`` (default) or ``"full"`` from ``BOOK_SCALE``.

    Labs size their experiments with it, e.g.
    ``steps = {"small": 2000, "full": 20000}[lib.scale()]``. Chapter 0.

    Raises ValueError for any other value, listing the allowed ones.
    Reference: none (book infrastructure).
    """
    value = os.environ.get("BOOK_SCALE", "small").strip().lower() or "small"
    if value not in SCALES:
        raise ValueError(f"BOOK_SCALE must be one of {SCALES}; got {value!r}")
    return value


_MAX_THREADS = 1024  # more is a typo: torch would start that many threads on its next parallel op


def threads() -> int:
    """Number of CPU threads for torch: ``BOOK_THREADS`` if set, else 1.

    See the module docstring for the measurement behind the default.
    Raises ValueError when ``BOOK_THREADS`` is not an integer in [1, 1024].
    Reference: none (book infrastructure).
    """
    raw = os.environ.get("BOOK_THREADS", "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"BOOK_THREADS must be a positive integer up to {_MAX_THREADS}; got {raw!r}")
    return n


def configure_threads() -> int:
    """Apply :func:`threads` to torch and to NumPy's BLAS; return the number set.

    Called once when ``lib`` is imported.
    Reference: none (book infrastructure).
    """
    n = threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:  # NumPy's BLAS too (the numpy autodiff engine of chapter 2 uses it)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; optional
        pass
    return n
