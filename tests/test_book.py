"""Book-wide checks: the structure every chapter must keep.

- every toc entry exists, and every page and lab is in the toc;
- every chapter page ``book/NN_slug.md`` has its lab ``notebooks/NN_slug.ipynb``
  and vice versa, and the lab sits under its page in the toc;
- labs are stored without outputs;
- each lab states its run time, imports lib and picks a device in its setup
  cell, has an interactive widget, at least one claim-check cell and at least
  three nbgrader-graded exercises;
- every ``lib`` module has its ``tests/test_<module>.py``;
- every citation key used in the book is in ``book/references.bib``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK, NOTEBOOKS, LIB, TESTS = (ROOT / d for d in ("book", "notebooks", "lib", "tests"))
CHAPTER = re.compile(r"^\d\d_[a-z0-9_]+$")


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                files.append(value)
            else:
                files.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            files.extend(_toc_files(item))
    return files


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
TOC_FILES = _toc_files(TOC)
PAGES = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.md"))
LABS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _notebook(slug: str) -> dict:
    return json.loads((NOTEBOOKS / f"{slug}.ipynb").read_text())


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_toc_format_and_parts():
    assert TOC["format"] == "jb-book"
    assert TOC["root"] == "book/intro"
    captions = [part["caption"] for part in TOC["parts"]]
    assert len(captions) == len(set(captions)), f"duplicate part captions: {captions}"


@pytest.mark.parametrize("entry", TOC_FILES)
def test_toc_entry_exists(entry):
    candidates = [ROOT / f"{entry}{ext}" for ext in ("", ".md", ".ipynb")]
    assert any(c.is_file() for c in candidates), f"_toc.yml lists {entry!r}, which is not a file"


def test_every_page_and_lab_is_in_toc():
    listed = {Path(f).with_suffix("").as_posix() for f in TOC_FILES}
    on_disk = {f"book/{p.stem}" for p in BOOK.glob("*.md")} | {f"notebooks/{s}" for s in LABS}
    missing = sorted(on_disk - listed)
    assert not missing, f"not in _toc.yml: {missing}"


def test_chapter_names():
    for slug in PAGES + LABS:
        assert CHAPTER.match(slug), f"chapter slug {slug!r} must look like NN_lowercase_words"


def _page_of(lab: str) -> str:
    """The theory page of a lab: the same slug, except the front matter's pair
    book/00_setup.md + notebooks/00_tour.ipynb named in the book plan."""
    return "00_setup" if lab == "00_tour" else lab


def test_every_page_has_its_lab_and_vice_versa():
    paired = {_page_of(lab) for lab in LABS}
    assert set(PAGES) == paired, (
        f"pages without a lab: {sorted(set(PAGES) - paired)}; "
        f"labs without a page: {sorted(lab for lab in LABS if _page_of(lab) not in PAGES)}"
    )


def test_labs_sit_under_their_pages_in_toc():
    def walk(node):
        if isinstance(node, dict):
            if "file" in node and node["file"].startswith("book/"):
                page = Path(node["file"]).stem
                labs = [lab for lab in LABS if _page_of(lab) == page]
                children = [s.get("file") for s in node.get("sections", [])]
                for lab in labs:
                    assert f"notebooks/{lab}" in children, f"{lab}: lab not nested under its page {page}"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(TOC)


def test_chapters_in_book_order():
    chapter_entries = [Path(f).stem for f in TOC_FILES if f.startswith("book/") and CHAPTER.match(Path(f).stem)]
    assert chapter_entries == sorted(chapter_entries), f"chapters out of order in _toc.yml: {chapter_entries}"


@pytest.mark.parametrize("slug", LABS)
def test_lab_stored_without_outputs(slug):
    nb = _notebook(slug)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{slug}: cell {i} has stored outputs"
            assert cell.get("execution_count") is None, f"{slug}: cell {i} has an execution count"


@pytest.mark.parametrize("slug", LABS)
def test_lab_first_cells(slug):
    cells = _notebook(slug)["cells"]
    first = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.lstrip().startswith("# "), \
        f"{slug}: first cell must be a markdown title"
    assert re.search(r"runs in about \d+ s on a laptop CPU", first), \
        f"{slug}: first cell must say 'runs in about N s on a laptop CPU'"
    page = _page_of(slug)
    assert f"../book/{page}.md" in first, f"{slug}: first cell must link to ../book/{page}.md"
    setup = next(_source(c) for c in cells if c["cell_type"] == "code")
    for needle in ("import lib", "lib.device()", "lib.seed("):
        assert needle in setup, f"{slug}: setup cell lacks {needle!r}"


@pytest.mark.parametrize("slug", LABS)
def test_lab_has_widget(slug):
    src = "\n".join(_source(c) for c in _notebook(slug)["cells"] if c["cell_type"] == "code")
    assert re.search(r"\binteract(ive)?\(|widgets\.", src), f"{slug}: no interactive widget"


@pytest.mark.parametrize("slug", LABS)
def test_lab_has_claim_checks(slug):
    cells = _notebook(slug)["cells"]
    checks = [i for i, c in enumerate(cells) if "claim-check" in c["metadata"].get("tags", [])]
    assert checks, f"{slug}: no cell tagged 'claim-check'"
    for i in checks:
        assert cells[i]["cell_type"] == "code", f"{slug}: claim-check cell {i} is not code"
        assert re.search(r"^\s*assert\b", _source(cells[i]), re.M), f"{slug}: claim-check cell {i} has no assert"
        before = [c for c in cells[:i] if c["cell_type"] == "markdown"]
        assert before and re.search(r"claim", _source(before[-1]), re.I), \
            f"{slug}: claim-check cell {i} must follow a markdown cell stating the claim"


@pytest.mark.parametrize("slug", LABS)
def test_exercises_form_the_last_section(slug):
    """Exercises sit in a final '## Exercises' section, so they can be graded on their own."""
    cells = _notebook(slug)["cells"]
    heads = [i for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and _source(c).lstrip().startswith("## Exercises")]
    assert len(heads) == 1, f"{slug}: needs exactly one markdown cell starting with '## Exercises'"
    graded = [i for i, c in enumerate(cells) if c["metadata"].get("nbgrader")]
    assert graded and min(graded) > heads[0], f"{slug}: nbgrader cells must come after '## Exercises'"


@pytest.mark.parametrize("slug", LABS)
def test_lab_has_three_graded_exercises(slug):
    cells = _notebook(slug)["cells"]
    meta = [c["metadata"].get("nbgrader") for c in cells]
    solutions = [m for m in meta if m and m.get("solution")]
    graded = [m for m in meta if m and m.get("grade") and not m.get("solution")]
    assert len(solutions) >= 3, f"{slug}: {len(solutions)} solution cells, need 3"
    assert len(graded) >= 3, f"{slug}: {len(graded)} autograder test cells, need 3"
    ids = [m["grade_id"] for m in meta if m]
    assert len(ids) == len(set(ids)), f"{slug}: duplicate nbgrader grade_ids"
    for c, m in zip(cells, meta):
        if m and m.get("solution"):
            assert "### BEGIN SOLUTION" in _source(c), f"{slug}: {m['grade_id']} lacks a solution region"
        if m and m.get("grade") and not m.get("solution"):
            assert m.get("points", 0) > 0, f"{slug}: {m['grade_id']} gives no points"
            assert re.search(r"^\s*assert\b", _source(c), re.M), f"{slug}: {m['grade_id']} has no assert"


@pytest.mark.parametrize("page", PAGES)
def test_theory_page_has_a_figure_and_check_yourself(page):
    text = (BOOK / f"{page}.md").read_text()
    assert re.search(r"mystnb:\s*\n\s*figure:|```\{figure|\{glue:figure\}", text), \
        f"book/{page}.md: needs at least one figure"
    if page != "00_setup" or "## Check yourself" in text:
        assert "## Check yourself" in text, f"book/{page}.md: needs a 'Check yourself' section"


def test_every_lib_module_has_tests():
    modules = [p.stem for p in LIB.glob("*.py") if p.stem != "__init__"]
    missing = [m for m in modules if not (TESTS / f"test_{m}.py").is_file()]
    assert not missing, f"lib modules without tests/test_<module>.py: {missing}"


def test_citations_resolve():
    bib = (BOOK / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    used = set()
    texts = [p.read_text() for p in BOOK.glob("*.md")]
    texts += ["\n".join(_source(c) for c in _notebook(s)["cells"]) for s in LABS]
    for text in texts:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            used.update(k.strip() for k in group.split(","))
    missing = sorted(used - keys)
    assert not missing, f"cited but not in references.bib: {missing}"


def _glued_display_math(text: str) -> list[str]:
    """Opening ``$$`` lines that directly follow a line of prose (outside code fences).

    MyST's dollarmath reads display math only as a block of its own: glued to the
    sentence before it, the ``$$`` pairs with the wrong dollar and the rest of the
    paragraph is typeset as one long formula (seen in a lab before this check).
    """
    problems, in_code, in_math = [], False, False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("```") or s.startswith("~~~"):
            in_code = not in_code
            continue
        if in_code or not s.startswith("$$"):
            continue
        opening = not in_math
        closes_here = s.count("$$") >= 2 or (in_math and s.startswith("$$"))
        if opening and i > 0 and lines[i - 1].strip() and not lines[i - 1].strip().startswith(("$$", ":")):
            problems.append(f"line {i + 1}: {s[:50]!r} follows {lines[i - 1].strip()[-40:]!r}")
        in_math = opening and not closes_here
    return problems


@pytest.mark.parametrize("slug", LABS)
def test_lab_display_math_stands_alone(slug):
    problems = []
    for k, cell in enumerate(_notebook(slug)["cells"]):
        if cell["cell_type"] == "markdown":
            problems += [f"cell {k}, {p}" for p in _glued_display_math(_source(cell))]
    assert not problems, f"{slug}: put a blank line before display math: {problems}"


@pytest.mark.parametrize("page", PAGES)
def test_page_display_math_stands_alone(page):
    problems = _glued_display_math((BOOK / f"{page}.md").read_text())
    assert not problems, f"book/{page}.md: put a blank line before display math: {problems}"
