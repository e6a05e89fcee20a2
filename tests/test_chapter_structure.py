"""What a teaching book is expected to have, in every chapter (issue 15).

Read from the stored notebooks, without executing anything:

* learning objectives at the top (before the first code cell): "By the end of this chapter
  you can:" and 3-5 items;
* a "## Summary" section of 4-6 bullets, after the objectives and before the exercises, whose
  numbers are all glued values of the stored run;
* a "## Exercises" section with at least three ``{exercise}`` directives, labelled
  ``ex-NN-k`` in order, each with a ``{solution}`` (or gated ``{solution-start}`` ...
  ``{solution-end}``) that stays hidden until opened (``:class: dropdown``);
* at least one solution that is a real code cell, which records its answer with ``glue`` (the
  chapter tests assert on it) — except in :data:`MARKDOWN_ONLY_SOLUTIONS`;
* at least three ``{term}`` links to the glossary, in prose (not headings), each to an entry
  that book/glossary.md defines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnbook import book
import bookbuild

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = bookbuild.chapter_paths(ROOT / "notebooks")

# Chapters whose solutions are worked on paper only, and why.
MARKDOWN_ONLY_SOLUTIONS: dict[str, str] = {}

_FENCE = r"(?:`{3,}|:{3,})"
_EXERCISE = re.compile(rf"^{_FENCE}\{{exercise\}}[^\n]*\n:label:\s*(\S+)", re.M)
_SOLUTION = re.compile(rf"^{_FENCE}\{{(solution|solution-start)\}}[ \t]+(\S+)[ \t]*\n((?::[\w-]+:.*\n?)*)", re.M)
_SOLUTION_END = re.compile(rf"^{_FENCE}\{{solution-end\}}", re.M)
_TERM = re.compile(r"\{term\}`([^`]*)`")
_GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")


def _cells(path: Path) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [{**c, "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"]} for c in nb["cells"]]


def _heading_index(cells: list[dict], heading: str) -> int:
    hits = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
            and re.search(rf"^{re.escape(heading)}\s*$", c["source"], re.M)]
    assert len(hits) == 1, f"expected exactly one markdown cell with the heading {heading!r}, found {len(hits)}"
    return hits[0]


def _section(cell_source: str, heading: str) -> str:
    """The text of a cell from ``heading`` to the next heading of the same or a higher level."""
    start = re.search(rf"^{re.escape(heading)}\s*$", cell_source, re.M).end()
    level = heading.split()[0]
    end = re.search(rf"^#{{1,{len(level)}}}\s", cell_source[start:], re.M)
    return cell_source[start: start + end.start()] if end else cell_source[start:]


def _bullets(text: str) -> list[str]:
    return re.findall(r"^[-*] ", text, re.M)


def _glossary_terms() -> set[str]:
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return {line.strip().lower() for line in body.splitlines() if line.strip() and not line[0].isspace()}


@pytest.fixture(scope="module")
def glossary() -> set[str]:
    return _glossary_terms()


def test_every_chapter_is_checked():
    assert len(CHAPTERS) >= 10
    assert set(MARKDOWN_ONLY_SOLUTIONS) <= {p.stem for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_learning_objectives_at_the_top(path):
    cells = _cells(path)
    i = _heading_index(cells, "## Learning objectives")
    first_code = next(k for k, c in enumerate(cells) if c["cell_type"] == "code")
    assert i < first_code, "the learning objectives come before the first code cell"
    assert all(c["cell_type"] == "markdown" for c in cells[:i]), "only the title and introduction precede them"
    text = _section(cells[i]["source"], "## Learning objectives")
    assert "By the end of this chapter you can" in text
    assert 3 <= len(_bullets(text)) <= 5, "3-5 learning objectives"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_summary_before_the_exercises(path):
    cells = _cells(path)
    objectives = _heading_index(cells, "## Learning objectives")
    summary = _heading_index(cells, "## Summary")
    exercises = _heading_index(cells, "## Exercises")
    assert objectives < summary < exercises
    text = _section(cells[summary]["source"], "## Summary")
    assert 4 <= len(_bullets(text)) <= 6, "a summary of 4-6 bullets"
    # Numbers in the summary and the exercises are glued values of the stored run, never typed.
    glued = set(book.read_glued(json.loads(path.read_text(encoding="utf-8"))))
    quoted = set(_GLUE.findall("\n".join(c["source"] for c in cells[summary:] if c["cell_type"] == "markdown")))
    assert quoted <= glued, f"quoted but not glued by the stored run: {sorted(quoted - glued)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_exercises_have_hidden_solutions(path):
    cells = _cells(path)
    start = _heading_index(cells, "## Exercises")
    markdown = "\n".join(c["source"] for c in cells[start:] if c["cell_type"] == "markdown")
    labels = _EXERCISE.findall(markdown)
    number = path.stem.split("_", 1)[0]
    assert len(labels) >= 3, "at least three exercises"
    assert labels == [f"ex-{number}-{k}" for k in range(1, len(labels) + 1)], labels
    solutions = _SOLUTION.findall(markdown)
    assert sorted(label for _, label, _ in solutions) == sorted(labels), "exactly one solution per exercise"
    for _kind, label, options in solutions:
        assert re.search(r"^:class:.*\bdropdown\b", options, re.M), f"the solution of {label} is not hidden"
    # No exercise or solution outside the Exercises section.
    before = "\n".join(c["source"] for c in cells[:start] if c["cell_type"] == "markdown")
    assert not _EXERCISE.search(before) and not _SOLUTION.search(before)


def _gated_solutions(cells: list[dict]) -> dict[str, list[dict]]:
    """label -> the code cells between its {solution-start} cell and the next {solution-end} cell."""
    found: dict[str, list[dict]] = {}
    open_label = None
    for cell in cells:
        if cell["cell_type"] == "markdown":
            start = _SOLUTION.search(cell["source"])
            if start and start.group(1) == "solution-start":
                assert open_label is None, f"{start.group(2)} starts inside the solution of {open_label}"
                open_label = start.group(2)
                found[open_label] = []
            if _SOLUTION_END.search(cell["source"]):
                assert open_label is not None, "a {solution-end} without a {solution-start}"
                open_label = None
        elif open_label is not None:
            found[open_label].append(cell)
    assert open_label is None, f"the solution of {open_label} is never closed"
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_a_solution_runs_as_code(path):
    cells = _cells(path)
    gated = _gated_solutions(cells)
    code_solutions = {label: code for label, code in gated.items() if code}
    if path.stem in MARKDOWN_ONLY_SOLUTIONS:
        assert not code_solutions, f"{path.stem}: {MARKDOWN_ONLY_SOLUTIONS[path.stem]}"
        return
    assert code_solutions, "at least one solution is a real code cell"
    for label, code in code_solutions.items():
        source = "\n".join(c["source"] for c in code)
        assert re.search(r"\bglue\(\s*f?[\"']ex\d\d_", source), f"the solution of {label} glues its answer (ex{path.stem[:2]}_...)"
        for cell in code:
            assert "# NBVAL_CHECK_OUTPUT" not in cell["source"], "solution outputs depend on the run"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_glossary_links(path, glossary):
    cells = _cells(path)
    targets = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for line in cell["source"].splitlines():
            roles = _TERM.findall(line)
            assert not (roles and line.lstrip().startswith("#")), f"a glossary link in a heading: {line!r}"
            for role in roles:
                target = re.search(r"<([^>]+)>\s*$", role)
                targets.append((target.group(1) if target else role).strip())
    assert len(targets) >= 3, "at least three links to the glossary"
    missing = sorted({t for t in targets if t.lower() not in glossary})
    assert not missing, f"not in book/glossary.md: {missing}"
    assert len({t.lower() for t in targets}) == len(targets), "each term is linked once, at its first use"
