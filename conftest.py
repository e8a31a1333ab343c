"""Run-time budget of the labs, checked whenever pytest executes notebooks (nbval).

Each lab's first cell states "runs in about N s on a laptop CPU". When pytest
runs labs with ``--nbval`` or ``--nbval-lax``, this plugin adds up the time of
each lab's cells, prints the slowest five, writes every time to
``_build/lab_times.json`` and fails the run when a lab takes more than 1.5x its
stated time or more than 90 s (the book's hard limit per lab).

On a GPU (``BOOK_DEVICE=cuda``) the times are recorded and printed but not
held to the CPU statements.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
STATED = re.compile(r"runs in about (\d+) s on a laptop CPU")
HARD_LIMIT_S = 90.0
TOLERANCE = 1.5

_times: dict[str, float] = defaultdict(float)


def stated_seconds(notebook: Path) -> float | None:
    """The run time a lab's first cell states, or None."""
    cells = json.loads(notebook.read_text())["cells"]
    first = "".join(cells[0]["source"]) if cells else ""
    match = STATED.search(first)
    return float(match.group(1)) if match else None


def pytest_runtest_logreport(report):
    path = str(report.fspath)
    if path.endswith(".ipynb") and report.when in ("setup", "call", "teardown"):
        _times[path] += report.duration


def _budget_violations() -> list[str]:
    problems = []
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
        tr.write_line(f"  {seconds:6.1f} s  {Path(path).name}  (stated about {stated:.0f} s)"
                      if stated else f"  {seconds:6.1f} s  {Path(path).name}")
    out = ROOT / "_build" / "lab_times.json"
    out.parent.mkdir(exist_ok=True)
    record = {Path(p).stem: round(s, 2) for p, s in sorted(_times.items())}
    out.write_text(json.dumps(record, indent=1) + "\n")
    if _on_cpu():
        for problem in _budget_violations():
            tr.write_line(f"LAB TIME BUDGET: {problem}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if _times and _on_cpu() and _budget_violations() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
