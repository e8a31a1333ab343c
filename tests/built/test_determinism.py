"""Every lab prints the same numbers on every CPU run.

The test command runs each lab twice, independently: once under nbval (whose
printed output ``conftest.py`` saves to ``_build/nbval_outputs.json``) and once
in the book build (whose executed notebooks jupyter-cache keeps in
``_build/.jupyter_cache``). Every code cell's printed output must be identical in
the two runs, claim checks included, except cells tagged ``nbval-ignore-output``
(widgets and wall-clock timings, which vary by design). Runs with ``make test``
after both; skipped when either record is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NBVAL = ROOT / "_build" / "nbval_outputs.json"
CACHE = ROOT / "_build" / ".jupyter_cache"
LABS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.skipif(not NBVAL.exists() or not CACHE.exists(),
                                reason="needs an nbval run and a book build (make test)")


def _book_build_outputs(slug: str) -> dict[str, str] | None:
    from jupyter_cache import get_cache

    nb = nbformat.read(ROOT / "notebooks" / f"{slug}.ipynb", as_version=4)
    try:
        _, merged = get_cache(str(CACHE)).merge_match_into_notebook(nb)
    except KeyError:
        return None  # not executed by the build with this code
    out = {}
    code_cells = [c for c in merged.cells if c.cell_type == "code"]
    for i, cell in enumerate(code_cells):  # nbval numbers code cells only
        text = "".join(o.get("text", "") for o in cell.outputs
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        text += "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs
                        if o.get("output_type") == "execute_result")
        out[str(i)] = text
    return out


@pytest.mark.parametrize("slug", LABS)
def test_two_runs_print_the_same(slug):
    nbval_runs = json.loads(NBVAL.read_text())
    if slug not in nbval_runs:
        pytest.skip(f"{slug} was not run by nbval in this session")
    built = _book_build_outputs(slug)
    assert built is not None, f"{slug}: the book build has no executed copy of the current notebook"
    nb = nbformat.read(ROOT / "notebooks" / f"{slug}.ipynb", as_version=4)
    compared = 0
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code_cells):
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        first, second = nbval_runs[slug].get(str(i), ""), built.get(str(i), "")
        assert first == second, (f"{slug}, code cell {i}: the two runs printed different output\n"
                                 f"--- nbval run ---\n{first}\n--- book build ---\n{second}")
        compared += bool(first)
    assert compared > 0, f"{slug}: no printed output to compare"
