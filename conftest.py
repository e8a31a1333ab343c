"""Test-wide settings of the book: no network, budgets of the labs, their outputs.

* No network: the test process and every kernel it starts (through an IPython
  start-up file in ``_build/ipython``) refuse connections off this machine
  (``tools/nonet.py``). Hypothesis keeps its database under ``_build/``.
* Budgets: each lab's first cell states "runs in about N s on a laptop CPU".
  When pytest runs labs with ``--nbval`` or ``--nbval-lax``, this plugin adds
  up the time of each lab's cells and reads the peak memory (RSS) of its
  kernel, prints the slowest five, writes ``_build/lab_times.json`` and fails
  the run when a lab takes more than 1.5x its stated time or more than 90 s,
  when the labs together take more than 15 minutes, or when a kernel's peak
  memory passes 2 GB. On a GPU (``BOOK_DEVICE=cuda``) times are recorded but
  not held to the CPU statements.
* Outputs: the printed (stdout) output of every lab cell is saved to
  ``_build/nbval_outputs.json``; ``tests/built/test_determinism.py`` compares it
  with the book build's independent run of the same labs.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "_build"
STATED = re.compile(r"runs in about (\d+) s on a laptop CPU")
HARD_LIMIT_S = 90.0
TOTAL_LIMIT_S = 15 * 60.0
MEMORY_LIMIT_MB = 2048.0
TOLERANCE = 1.5

_times: dict[str, float] = defaultdict(float)
_peak_mb: dict[str, float] = {}
_outputs: dict[str, dict[str, str]] = defaultdict(dict)

# ---------------------------------------------------------------- no network, no stray files

from tools import nonet  # noqa: E402

nonet.install()
os.environ["IPYTHONDIR"] = str(BUILD / "ipython")  # kernels started from here read it
nonet.write_ipython_startup(BUILD / "ipython")

try:  # Hypothesis keeps its example database and caches under _build/ too
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(BUILD / "hypothesis")
except ImportError:  # hypothesis is a test dependency; labs do not need it
    pass


def stated_seconds(notebook: Path) -> float | None:
    """The run time a lab's first cell states, or None."""
    cells = json.loads(notebook.read_text())["cells"]
    first = "".join(cells[0]["source"]) if cells else ""
    match = STATED.search(first)
    return float(match.group(1)) if match else None


def pytest_runtest_logreport(report):
    path = os.path.abspath(str(report.fspath))
    if path.endswith(".ipynb") and report.when in ("setup", "call", "teardown"):
        _times[path] += report.duration


def _kernel_peak_mb(item) -> float | None:
    """Peak resident memory (VmHWM) of the kernel running ``item``'s notebook, Linux only."""
    try:
        pid = item.parent.kernel.km.provisioner.process.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (AttributeError, OSError, ValueError):
        return None
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    path = os.path.abspath(str(getattr(item, "fspath", "")))
    if not path.endswith(".ipynb") or not hasattr(item, "cell_num"):
        return
    peak = _kernel_peak_mb(item)
    if peak is not None:
        _peak_mb[path] = max(_peak_mb.get(path, 0.0), peak)
    outs = getattr(item, "test_outputs", None) or []
    text = "".join(o.get("text", "") for o in outs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    text += "".join(o.get("data", {}).get("text/plain", "") for o in outs if o.get("output_type") == "execute_result")
    _outputs[Path(path).stem][str(item.cell_num)] = text


def _budget_violations() -> list[str]:
    problems = []
    total = sum(_times.values())
    if total > TOTAL_LIMIT_S:
        problems.append(f"all labs together took {total:.0f} s, over the {TOTAL_LIMIT_S:.0f} s budget")
    for path, mb in sorted(_peak_mb.items()):
        if mb > MEMORY_LIMIT_MB:
            problems.append(f"{Path(path).name}: kernel peak memory {mb:.0f} MB, over {MEMORY_LIMIT_MB:.0f} MB")
    for path, seconds in sorted(_times.items()):
        stated = stated_seconds(Path(path))
        name = Path(path).name
        if seconds > HARD_LIMIT_S:
            problems.append(f"{name}: {seconds:.1f} s, over the {HARD_LIMIT_S:.0f} s limit per lab")
        if stated is None:
            problems.append(f"{name}: first cell does not state 'runs in about N s on a laptop CPU'")
        elif seconds > TOLERANCE * stated:
            problems.append(f"{name}: {seconds:.1f} s, over {TOLERANCE}x its stated {stated:.0f} s")
    return problems


def _on_cpu() -> bool:
    wanted = os.environ.get("BOOK_DEVICE", "").strip().lower()
    if wanted:
        return wanted == "cpu"
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


def pytest_terminal_summary(terminalreporter):
    if not _times:
        return
    tr = terminalreporter
    tr.section("lab run times")
    slowest = sorted(_times.items(), key=lambda kv: -kv[1])
    tr.write_line(f"slowest labs (of {len(_times)}), total {sum(_times.values()):.0f} s:")
    for path, seconds in slowest[:5]:
        stated = stated_seconds(Path(path))
        memory = f", peak memory {_peak_mb[path]:.0f} MB" if path in _peak_mb else ""
        tr.write_line(f"  {seconds:6.1f} s  {Path(path).name}  (stated about {stated:.0f} s{memory})"
                      if stated else f"  {seconds:6.1f} s  {Path(path).name}")
    BUILD.mkdir(exist_ok=True)
    record = {Path(p).stem: {"seconds": round(s, 2), "stated_seconds": stated_seconds(Path(p)),
                             "peak_rss_mb": round(_peak_mb[p], 1) if p in _peak_mb else None}
              for p, s in sorted(_times.items())}
    (BUILD / "lab_times.json").write_text(json.dumps(record, indent=1) + "\n")
    (BUILD / "nbval_outputs.json").write_text(json.dumps(_outputs, indent=1, sort_keys=True) + "\n")
    if _on_cpu():
        for problem in _budget_violations():
            tr.write_line(f"LAB TIME BUDGET: {problem}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _times and _on_cpu() and _budget_violations() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
