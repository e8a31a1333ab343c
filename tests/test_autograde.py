"""The instructor's one-command grading (`make autograde`) on a real lab.

A generated student version of the tour with the reference solutions pasted back
must get full marks; the untouched student version must get zero.
"""

import csv

import nbformat

from tools import assignments

LAB = "00_tour"


def test_autograde_full_marks_and_zero(tmp_path):
    student_nb = assignments.generate([LAB])[LAB]
    instructor = nbformat.read(assignments.NOTEBOOKS / f"{LAB}.ipynb", as_version=4)
    solutions = {c.metadata.nbgrader["grade_id"]: c.source for c in instructor.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}

    untouched = nbformat.read(student_nb, as_version=4)
    solved = nbformat.read(student_nb, as_version=4)
    pasted = 0
    for cell in solved.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            assert "raise NotImplementedError" in cell.source
            cell.source = solutions[meta["grade_id"]]
            pasted += 1
    assert pasted >= 3
    for student, nb in (("ada", solved), ("bert", untouched)):
        (tmp_path / student).mkdir()
        nbformat.write(nb, tmp_path / student / f"{LAB}.ipynb")

    rows = {r["student"]: r for r in assignments.autograde(tmp_path)}
    assert rows["ada"]["max_score"] > 0
    assert rows["ada"]["score"] == rows["ada"]["max_score"], rows["ada"]
    assert rows["bert"]["score"] == 0, rows["bert"]

    with open(assignments.ROOT / "_build" / "grades.csv") as f:
        table = {r["student"]: r for r in csv.DictReader(f)}
    assert float(table["ada"]["score"]) == rows["ada"]["max_score"]
    feedback = assignments.COURSE / "feedback" / "ada" / LAB / f"{LAB}.html"
    assert feedback.is_file()


def test_autograde_rejects_unknown_notebooks(tmp_path):
    (tmp_path / "ada").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "ada" / "not_a_lab.ipynb")
    import pytest

    with pytest.raises(ValueError, match="not a lab"):
        assignments.autograde(tmp_path)
