"""Shared timing helpers of the benchmarks (see benchmarks/run.py)."""

from __future__ import annotations

import gc
import statistics
import time


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_times(ours, peer, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median times of ``ours()`` and ``peer()``, alternated so both see the same machine load.

    Before each timed call the garbage collector runs (untimed), so neither side pays
    for collecting the other's leftovers: a graph with reference cycles (micrograd's)
    is otherwise collected during the next allocation-heavy call, whoever makes it.
    """
    for _ in range(warmup):
        ours(), peer()
    a, b = [], []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter(); ours(); t1 = time.perf_counter()
        gc.collect()
        t2 = time.perf_counter(); peer(); t3 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t3 - t2)
    return statistics.median(a), statistics.median(b)


def row(name, ours_s, peer_s, bound, agree, note="", ratio=None) -> dict:
    """One line of the table: times in seconds, ``ratio`` defaults to ours / peer."""
    ratio = ours_s / peer_s if ratio is None else ratio
    return {"row": name, "ours_s": ours_s, "peer_s": peer_s, "ratio": ratio, "bound": bound,
            "agree": bool(agree), "ok": bool(agree) and ratio <= bound, "note": note}


def pending(name: str, bound: float, module: str) -> dict:
    """A row for a module that does not exist yet: listed, never faked."""
    return {"row": name, "bound": bound, "ok": None, "note": f"pending: {module} not written yet"}
