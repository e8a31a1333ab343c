"""Student versions of the labs and autograding, made with nbgrader, offline.

    python -m tools.assignments generate        # every lab -> _build/assignments/
    python -m tools.assignments generate 00_tour
    python -m tools.assignments autograde DIR   # grade DIR/<student>/<lab>.ipynb -> _build/grades.csv

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
    config.ExecutePreprocessor.timeout = 300  # per cell, like the book build
    config.Autograde.create_student = True
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


def autograde(submissions: Path | str) -> list[dict]:
    """Grade every ``<submissions>/<student>/<lab>.ipynb`` with nbgrader.

    Each notebook is copied into the course directory as nbgrader expects
    (``submitted/<student>/<lab>/<lab>.ipynb``), run by ``nbgrader autograde``
    with the hidden tests restored from the instructor version, and scored.
    Students are added to the gradebook as they appear. Writes
    ``_build/grades.csv`` (student, lab, score, max_score), HTML feedback per
    submission to ``_build/nbgrader/feedback/<student>/<lab>/`` and returns
    the rows. Raises FileNotFoundError for a missing folder and ValueError for
    a notebook that is not one of the labs.
    """
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"no submissions folder {root}")
    found = sorted(root.glob("*/*.ipynb"))
    lab_names = {p.stem for p in labs()}
    for nb in found:
        if nb.stem not in lab_names:
            raise ValueError(f"{nb}: not a lab of the book (expected one of {sorted(lab_names)})")
    generate(sorted({nb.stem for nb in found}) or None)
    api = _api()
    rows = []
    for nb in found:
        student, lab = nb.parent.name, nb.stem
        target = COURSE / "submitted" / student / lab
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb, target / nb.name)
        result = api.autograde(lab, student)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not grade {nb}:\n{result['log']}\n{result.get('error', '')}")
        api.generate_feedback(lab, student)
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{COURSE / 'gradebook.db'}", COURSE_ID) as gradebook:
            submission = gradebook.find_submission(lab, student)
            rows.append({"student": student, "lab": lab, "score": float(submission.score),
                         "max_score": float(submission.max_score)})
    out = ROOT / "_build" / "grades.csv"
    with out.open("w") as f:
        f.write("student,lab,score,max_score\n")
        for r in rows:
            f.write(f"{r['student']},{r['lab']},{r['score']:g},{r['max_score']:g}\n")
    return rows


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
    grade = sub.add_parser("autograde", help="grade DIR/<student>/<lab>.ipynb into _build/grades.csv")
    grade.add_argument("submissions", help="folder with one sub-folder of notebooks per student")
    args = parser.parse_args(argv)
    if args.command == "generate":
        made = generate(args.labs or None)
        for slug, path in made.items():
            print(f"{slug}: {path.relative_to(ROOT)}")
    else:
        rows = autograde(args.submissions)
        print(f"{'student':<20} {'lab':<24} {'score':>7} / max")
        for r in rows:
            print(f"{r['student']:<20} {r['lab']:<24} {r['score']:7g} / {r['max_score']:g}")
        print(f"grades: {(ROOT / '_build' / 'grades.csv').relative_to(ROOT)}; feedback: "
              f"{(COURSE / 'feedback').relative_to(ROOT)}/<student>/<lab>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
