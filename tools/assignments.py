"""Student versions of the labs, made with nbgrader, offline.

    python -m tools.assignments generate        # every lab -> _build/assignments/
    python -m tools.assignments generate 00_tour

``make assignments`` runs the first. The instructor versions in ``notebooks/`` hold
the solutions (between ``### BEGIN SOLUTION`` / ``### END SOLUTION``) and hidden
tests (``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``); nbgrader replaces
the former with ``raise NotImplementedError()`` and deletes the latter.

The nbgrader course directory is ``_build/nbgrader/`` (``source/``, ``release/``,
the gradebook); ``book/assignments.md`` explains the workflow for instructors.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
COURSE = ROOT / "_build" / "nbgrader"
OUT = ROOT / "_build" / "assignments"
COURSE_ID = "following-the-gradient"
EXERCISES_HEADING = "## Exercises"


# Written into the course directory so that nbgrader's own commands
# (`nbgrader autograde`, `nbgrader export`) work when run from there.
_CONFIG_FILE = """\
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "{course}"
c.CourseDirectory.root = "."
"""


def labs() -> list[Path]:
    """Every lab notebook, in book order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _api():
    # nbgrader runs the `alembic` command of its own environment to set up the
    # gradebook: make sure that environment's bin/ is on PATH.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(COURSE)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = f"sqlite:///{COURSE / 'gradebook.db'}"
    config.BaseConverter.force = True
    config.Exchange.root = str(COURSE / "exchange")
    return NbGraderAPI(config=config)


def generate(slugs: list[str] | None = None) -> dict[str, Path]:
    """Write student versions of the given labs (all if None) to ``_build/assignments``.

    Each lab is its own nbgrader assignment named by its slug. Returns
    ``{slug: path of the student notebook}``. Raises RuntimeError with nbgrader's
    log when a lab cannot be converted (e.g. malformed nbgrader markup).
    """
    chosen = labs() if not slugs else [NOTEBOOKS / f"{s}.ipynb" for s in slugs]
    for path in chosen:
        if not path.is_file():
            raise FileNotFoundError(f"no lab {path.relative_to(ROOT)}")
    for path in chosen:
        src = COURSE / "source" / path.stem
        src.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / path.name)
    (COURSE / "nbgrader_config.py").write_text(_CONFIG_FILE.format(course=COURSE_ID))
    api = _api()
    OUT.mkdir(parents=True, exist_ok=True)
    made = {}
    for path in chosen:
        result = api.generate_assignment(path.stem)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {path.stem}:\n{result['log']}\n{result.get('error', '')}")
        student = COURSE / "release" / path.stem / path.name
        target = OUT / path.name
        shutil.copy2(student, target)
        made[path.stem] = target
    return made


def exercise_subset(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The cells a grader needs: the lab's setup cell and its whole exercise section.

    The setup cell is the first code cell; the exercise section starts at the
    markdown cell that begins with ``## Exercises`` and runs to the end. Raises
    ValueError when either is missing.
    """
    cells = nb.cells
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    start = [i for i, c in enumerate(cells)
             if c.cell_type == "markdown" and c.source.lstrip().startswith(EXERCISES_HEADING)]
    if not code:
        raise ValueError("the notebook has no code cell (expected a setup cell)")
    if not start:
        raise ValueError(f"the notebook has no markdown cell starting with {EXERCISES_HEADING!r}")
    if code[0] > start[0]:
        raise ValueError("the first code cell comes after the exercise heading")
    sub = copy.deepcopy(nb)
    sub.cells = [copy.deepcopy(cells[code[0]])] + [copy.deepcopy(c) for c in cells[start[0]:]]
    return sub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.assignments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="student versions into _build/assignments/")
    gen.add_argument("labs", nargs="*", help="lab slugs such as 00_tour (default: all)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        made = generate(args.labs or None)
        for slug, path in made.items():
            print(f"{slug}: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
