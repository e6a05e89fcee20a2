"""Shared fixtures: the repository layout and chapters executed with their CI parameters."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnbook import book

ROOT = Path(__file__).resolve().parents[1]
# The book's build tools (tools/bookbuild) are not installed with the package.
sys.path.insert(0, str(ROOT / "tools"))

import bookbuild  # noqa: E402
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = bookbuild.chapter_paths(NOTEBOOKS)

_executed: dict[str, tuple[dict, dict]] = {}


def run_chapter(stem: str, tmp_root: Path) -> tuple[dict, dict]:
    """Execute ``notebooks/<stem>.ipynb`` with its CI parameters once per session.

    Returns ``(notebook, glued values)``.  Trained models go to a per-session
    model directory, so CI never reuses a full-run model from a developer's cache.
    """
    from cnnbook import book

    if stem not in _executed:
        path = NOTEBOOKS / f"{stem}.ipynb"
        if not path.exists():
            pytest.fail(f"{path} does not exist")
        out = tmp_root / f"{stem}.ipynb"
        nb = bookbuild.execute(path, output=out, parameters=bookbuild.ci_parameters(path), timeout=600)
        _executed[stem] = (nb, book.read_glued(nb))
    return _executed[stem]


@pytest.fixture(scope="session")
def chapter_runner(tmp_path_factory):
    tmp_root = tmp_path_factory.mktemp("executed")
    models = tmp_path_factory.mktemp("models")
    old = os.environ.get("CNNBOOK_MODEL_DIR")
    os.environ["CNNBOOK_MODEL_DIR"] = str(models)
    try:
        yield lambda stem: run_chapter(stem, tmp_root)
    finally:
        if old is None:
            os.environ.pop("CNNBOOK_MODEL_DIR", None)
        else:
            os.environ["CNNBOOK_MODEL_DIR"] = old


def code_cell(nb: dict, marker: str) -> dict:
    """The first code cell whose source contains ``marker``."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return cell
    raise AssertionError(f"no code cell contains {marker!r}")


def stream_text(cell: dict) -> str:
    """Everything a code cell printed (stdout and stderr streams)."""
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def parameter_defaults(nb: dict) -> dict:
    """The full-run defaults of a chapter: the assignments of its ``parameters`` cell."""
    import ast

    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse("".join(cell["source"])).body
        if isinstance(node, ast.Assign)
    }


class FakeModel:
    """Stands in for a Keras model: ``predict`` returns fixed logits (no TensorFlow needed)."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, dtype=np.float32)
        self.calls = []

    def predict(self, x, batch_size=32, verbose=0):
        self.calls.append((np.asarray(x).shape, batch_size))
        return np.tile(self.logits, (len(x), 1))


def stored_full_run(path: Path) -> tuple[dict, dict]:
    """The glued values of a stored chapter and its parameters' defaults; fails unless it holds a full run."""
    import json

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    assert nb["metadata"].get("cnnbook", {}).get("parameters") == {}, "the stored chapter must hold a full run"
    return book.read_glued(nb), parameter_defaults(nb)


def pytest_collection_modifyitems(config, items):
    """Mark ``stored`` the tests of chapter modules (``notebook``) that execute no chapter.

    They read a chapter's stored full run or its source, in milliseconds, so
    ``make test-unit`` selects them although their module is marked ``notebook``.
    """
    for item in items:
        if item.get_closest_marker("notebook") and "chapter_runner" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stored)
