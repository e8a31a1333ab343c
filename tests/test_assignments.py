"""The assignment pipeline: for every lab, the autograder passes the solutions and
fails the generated student version.

Student versions are generated with nbgrader itself (``tools.assignments``, the
code behind ``make assignments``). For speed, each version is graded on its
setup cell plus its ``## Exercises`` section (exercises must not depend on the
rest of the lab; the full instructor lab runs under nbval anyway).
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tools import assignments

LABS = [p.stem for p in assignments.labs()]


@pytest.fixture(scope="module")
def student_versions():
    return assignments.generate()


def _run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(assignments.NOTEBOOKS)}})
    client.execute()
    return nb


def _graded_cells(nb):
    return [c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")]


def _errors(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.parametrize("slug", LABS)
def test_solutions_pass_and_stubs_fail(slug, student_versions):
    instructor = nbformat.read(assignments.NOTEBOOKS / f"{slug}.ipynb", as_version=4)
    student = nbformat.read(student_versions[slug], as_version=4)

    student_text = json.dumps([c.source for c in student.cells])
    assert "BEGIN SOLUTION" not in student_text and "BEGIN HIDDEN TESTS" not in student_text
    stubs = [c for c in student.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert stubs and all("raise NotImplementedError" in c.source for c in stubs), \
        f"{slug}: a solution cell of the student version is not a stub"

    ran = _run(assignments.exercise_subset(instructor))
    setup_errors = _errors(ran.cells[0])
    assert not setup_errors, f"{slug}: setup cell failed: {setup_errors}"
    graded = _graded_cells(ran)
    assert len(graded) >= 3
    for cell in graded:
        assert not _errors(cell), f"{slug}: {cell.metadata.nbgrader.grade_id} fails with the solution: {_errors(cell)}"

    ran = _run(assignments.exercise_subset(student))
    for cell in _graded_cells(ran):
        assert _errors(cell), f"{slug}: {cell.metadata.nbgrader.grade_id} passes on the student stub"


def test_exercise_subset_rejects_labs_without_exercises():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import lib")])
    with pytest.raises(ValueError, match="Exercises"):
        assignments.exercise_subset(nb)
