"""Running the tests and labs leaves no files behind outside ``_build/``.

Runs last in ``make test`` (after the labs, the book build and the browser
tests). Allowed outside ``_build/``: what the set-up makes (``.venv``, npm's
``node_modules``, the copied front-end files in ``book/_vendor``, the package's
``*.egg-info``). Python caches go to ``_build/pycache`` (``PYTHONPYCACHEPREFIX``
in the Makefile), IPython's files to ``_build/ipython``, Hypothesis's to
``_build/hypothesis``. Together with a fresh kernel per lab, this is what makes
the labs independent of each other and of the order they run in.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("_build/", ".venv/", "node_modules/", "book/_vendor/")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_no_files_outside_build():
    # -z: NUL-separated, unquoted paths; untracked and ignored folders are listed whole
    status = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--ignored"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    stray = []
    for entry in filter(None, status.split("\0")):
        code, path = entry[:2], entry[3:]
        if code not in ("??", "!!"):
            continue  # tracked files are the developer's business
        if path.startswith(ALLOWED) or ".egg-info/" in path:
            continue
        stray.append(path)
    assert not stray, f"files left behind outside _build/: {stray[:10]}"
