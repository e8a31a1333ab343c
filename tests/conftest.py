"""Hypothesis draws the same examples on every machine, so a red run is reproducible and
``main`` stays green; ``make fuzz`` sets ``LIB_FUZZ_RANDOM=1`` to explore fresh random examples
(failures found then are kept in ``.hypothesis/`` and replayed first next time)."""

import os

from hypothesis import settings

RANDOM = os.environ.get("LIB_FUZZ_RANDOM", "") not in ("", "0")
settings.register_profile("reproducible", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if RANDOM else "reproducible")
