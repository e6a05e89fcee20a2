"""Tests of :mod:`cnnbook.book`: glue, provenance hashes, execution and staleness.

A tiny notebook is really executed (papermill, the ``python3`` kernel) once per
module; the hash tests edit copies of notebooks in memory.  The transitive
dependency tests point :data:`cnnbook.book.PACKAGE_DIR` at a small package
written to a temporary folder, so that "a module changed" can be tested
without touching the real package that other tests (and people) are using.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cnnbook import book

GLUE_CELL = textwrap.dedent(
    """\
    import numpy as np
    from cnnbook import book
    from myst_nb import glue as myst_glue

    book.glue("answer", n * 14)
    book.glue("ratio", np.float64(0.25))
    book.glue("count", np.int64(7))
    book.glue("name", "mnist")
    book.glue("shape", (28, 28, 1))
    book.glue("counts", np.array([1, 2, 3]))
    book.glue("info", {"accuracy": 0.5, "epochs": 3})
    book.glue("thing", object())
    book.glue("shown", 12, display=True)
    myst_glue("reference", 42, display=False)
    _ = book.glue("last", 1.5)"""
)


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["cnnbook"] = {"ci_parameters": {"n": 1}}
    return nb


def _source() -> nbformat.NotebookNode:
    params = new_code_cell("n = 3  # CI: 1")
    params.metadata["tags"] = ["parameters"]
    return _notebook(new_markdown_cell("# A tiny chapter\n\nSome prose."), params, new_code_cell(GLUE_CELL))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """(source path, output path, returned notebook) of one real execution with n=2."""
    folder = tmp_path_factory.mktemp("nb")
    src = folder / "01_tiny.ipynb"
    nbformat.write(_source(), src)
    out = folder / "01_tiny.out.ipynb"
    nb = book.execute(src, output=out, parameters={"n": 2}, timeout=120)
    return src, out, nb


# --- Glue ------------------------------------------------------------------------------


def test_glue_round_trip_through_a_real_kernel(executed):
    _, out, nb = executed
    glued = book.read_glued(out)
    assert glued["answer"] == 28  # the injected n=2, not the default 3
    assert glued["ratio"] == 0.25 and isinstance(glued["ratio"], float)
    assert glued["count"] == 7 and isinstance(glued["count"], int)
    assert glued["name"] == "mnist"
    assert glued["shape"] == (28, 28, 1)
    assert glued["counts"] == [1, 2, 3]
    assert glued["info"] == {"accuracy": 0.5, "epochs": 3}
    assert isinstance(glued["thing"], str) and glued["thing"].startswith("<object")  # not a literal: its text
    assert glued["shown"] == 12
    assert glued["last"] == 1.5
    # The same values whether read from a path, an nbformat node or a plain dict.
    assert book.read_glued(nb) == glued == book.read_glued(json.loads(out.read_text()))


def test_glue_writes_what_myst_nb_writes(executed):
    """Jupyter Book renders ``{glue:text}`` from this format: compare with myst_nb.glue's own output."""
    _, out, _ = executed
    outputs = {
        o["metadata"]["scrapbook"]["name"]: o
        for cell in json.loads(out.read_text())["cells"]
        for o in cell.get("outputs", [])
        if "scrapbook" in o.get("metadata", {})
    }
    ours, theirs = outputs["answer"], outputs["reference"]
    assert ours["output_type"] == theirs["output_type"] == "display_data"
    assert ours["metadata"]["scrapbook"]["mime_prefix"] == theirs["metadata"]["scrapbook"]["mime_prefix"]
    assert sorted(ours["data"]) == sorted(theirs["data"]) == [book.GLUE_PREFIX + "text/plain"]
    assert book.read_glued(out)["reference"] == 42
    # display=True glues without the prefix, so the value is also shown.
    assert list(outputs["shown"]["data"]) == ["text/plain"]


# --- Execution records provenance -------------------------------------------------------


def test_execute_records_provenance(executed):
    src, out, nb = executed
    meta = json.loads(out.read_text())["metadata"]["cnnbook"]
    assert meta["parameters"] == {"n": 2}
    assert meta["ci_parameters"] == {"n": 1}  # kept from the source
    assert meta["executed_seconds"] > 0
    assert meta["executed_on"]["cores"] >= 1 and meta["executed_on"]["cpu"]
    # The injected-parameters cell is not part of the hash: the copy records the source's code hash.
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags
    assert meta["source_hash"] == book.source_hash(src)
    assert not book.is_stale(out)
    assert book.is_stale(src)  # never executed: no stored hash
    assert not list(out.parent.glob(".*.running.ipynb"))


def test_failed_execution_leaves_the_stored_chapter_alone(tmp_path):
    nb = _notebook(new_markdown_cell("# Broken"), new_code_cell("raise RuntimeError('boom')"))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored output\n")]
    path = tmp_path / "02_broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="boom"):
        book.execute(path, timeout=60)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["02_broken.ipynb"]


# --- The provenance hash ----------------------------------------------------------------


def test_source_hash_follows_code_not_markdown_outputs_or_parameters():
    nb = _source()
    base = book.source_hash(nb)

    code = copy.deepcopy(nb)
    code.cells[2].source += "\nprint('one more line')"
    assert book.source_hash(code) != base

    prose = copy.deepcopy(nb)
    prose.cells[0].source = "# A tiny chapter\n\nDifferent prose, same code."
    prose.cells.append(new_markdown_cell("## A new section"))
    assert book.source_hash(prose) == base

    outputs = copy.deepcopy(nb)
    outputs.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    outputs.cells[2].execution_count = 5
    outputs.metadata["cnnbook"]["executed_seconds"] = 1.0
    assert book.source_hash(outputs) == base

    injected = copy.deepcopy(nb)
    cell = new_code_cell("# Parameters\nn = 1\n")
    cell.metadata["tags"] = ["injected-parameters"]
    injected.cells.insert(2, cell)
    assert book.source_hash(injected) == base

    as_dict = json.loads(nbformat.writes(nb))
    assert book.source_hash(as_dict) == base


@pytest.mark.parametrize(
    "code, expected",
    [
        ("from cnnbook import data", ["__init__", "data"]),
        ("from cnnbook import data as d", ["__init__", "data"]),
        ("import cnnbook.data as cd", ["__init__", "data"]),
        ("from cnnbook.data import load_dataset", ["__init__", "data"]),
        ("from cnnbook import (\n    book,\n    data,\n)", ["__init__", "book", "data"]),
        ("import numpy as np", ["__init__"]),
    ],
)
def test_module_dependencies_of_the_real_package(code, expected):
    # data and book import no other cnnbook module (CONTRIBUTING.md's package map).
    assert book.module_dependencies([code]) == expected


FAKE_PACKAGE = {
    "__init__.py": '"""Fake package."""\n',
    "training.py": "from . import models\nfrom .data import prepare\n",
    "models.py": "import cnnbook.layers as layers\n",
    "layers.py": "from cnnbook import (\n    conv,\n)\n",
    "conv.py": "import numpy as np\n",
    "data.py": "import numpy as np\n\ndef prepare():\n    return 1\n",
    "plots.py": "import matplotlib\n",
}


@pytest.fixture
def fake_package(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cnnbook"
    folder.mkdir()
    for name, text in FAKE_PACKAGE.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(book, "PACKAGE_DIR", folder)
    return folder


def test_module_dependencies_are_transitive(fake_package):
    assert book.module_dependencies(["from cnnbook import training"]) == [
        "__init__", "conv", "data", "layers", "models", "training",
    ]
    assert book.module_dependencies(["import cnnbook.plots"]) == ["__init__", "plots"]
    assert book.module_dependencies(["from cnnbook import nonexistent"]) == ["__init__"]


def test_source_hash_follows_the_modules_a_chapter_uses(fake_package):
    nb = _notebook(new_code_cell("from cnnbook import training\ntraining.fit()"))
    base = book.source_hash(nb)

    (fake_package / "plots.py").write_text("import matplotlib  # changed, but unused\n")
    assert book.source_hash(nb) == base

    (fake_package / "conv.py").write_text("import numpy as np  # used three imports deep\n")
    changed = book.source_hash(nb)
    assert changed != base

    (fake_package / "__init__.py").write_text('"""Every chapter depends on the package root."""\n')
    assert book.source_hash(nb) != changed


# --- Staleness, parameters and the command line -----------------------------------------


def test_is_stale(tmp_path):
    nb = _source()
    nb.metadata["cnnbook"]["source_hash"] = book.source_hash(nb)
    path = tmp_path / "03_fresh.ipynb"
    nbformat.write(nb, path)
    assert not book.is_stale(path)

    nb.cells[0].source += "\n\nMore prose."
    nbformat.write(nb, path)
    assert not book.is_stale(path)

    nb.cells[1].source = "n = 4  # CI: 1"
    nbformat.write(nb, path)
    assert book.is_stale(path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbook.book", *args], capture_output=True, text=True, timeout=120)


def test_command_line_check_and_execute_skip_up_to_date(executed, tmp_path):
    _, out, _ = executed
    fresh = tmp_path / "04_fresh.ipynb"
    fresh.write_bytes(out.read_bytes())
    stale = tmp_path / "05_stale.ipynb"
    nb = nbformat.read(out, as_version=4)
    nb.cells[-1].source += "\nprint('changed')"
    nbformat.write(nb, stale)

    ok = _cli("check", str(fresh))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cli("check", str(fresh), str(stale))
    assert bad.returncode == 1 and f"stale: {stale}" in bad.stdout and str(fresh) not in bad.stdout

    skipped = _cli("execute", str(fresh))
    assert skipped.returncode == 0 and f"up to date: {fresh}" in skipped.stdout
    assert fresh.read_bytes() == out.read_bytes()


def test_ci_parameters_and_prepare_ci(tmp_path):
    src = tmp_path / "06_tiny.ipynb"
    nbformat.write(_source(), src)
    assert book.ci_parameters(src) == {"n": 1}
    copy_path = book.prepare_ci(src, tmp_path / "ci" / "06_tiny.ipynb")
    prepared = nbformat.read(copy_path, as_version=4)
    injected = [c for c in prepared.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 1" in injected[0].source
    assert not any(c.get("outputs") for c in prepared.cells if c.cell_type == "code")
    assert book.source_hash(prepared) == book.source_hash(src)


def test_machine_info():
    info = book.machine_info()
    assert set(info) == {"cpu", "cores", "python", "system"}
    assert info["cores"] >= 1 and info["python"] == ".".join(map(str, sys.version_info[:3]))
