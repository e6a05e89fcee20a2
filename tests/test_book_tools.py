"""Tests of the chapters' runtime (:mod:`cnnbook.book`: glue) and of the build
tools (:mod:`bookbuild`, in ``tools/``: provenance hashes, execution, staleness).

A tiny notebook is really executed (papermill, the ``python3`` kernel) once per
module; the hash tests edit copies of notebooks in memory.  The tests of what a
chapter reaches point :data:`bookbuild.staleness.PACKAGE_DIR` at a small package
written to a temporary folder, so that "a definition changed" can be tested
without touching the real package that other tests (and people) are using.
"""

from __future__ import annotations

import copy
import json
import subprocess
import os
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cnnbook import book
import bookbuild
from bookbuild import staleness

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


def _executed(path: Path, *sources: str) -> tuple[Path, nbformat.NotebookNode]:
    """A chapter of the code cells ``sources``, written to ``path`` and executed in place."""
    nbformat.write(_notebook(*(new_code_cell(source) for source in sources)), path)
    return path, bookbuild.execute(path, timeout=120)


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
    nb = bookbuild.execute(src, output=out, parameters={"n": 2}, timeout=120)
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
    # The kernels the chapter ran with: oneDNN's state as the kernel process inherited it.
    from cnnbook import hardware

    assert meta["kernels"] == hardware.expected_onednn_state()
    assert meta["kernels"]["vector_extensions"] and meta["kernels"]["decided_by"]
    # The injected-parameters cell is not part of the hash: the copy records the source's code hash.
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags
    assert meta["source_hash"] == bookbuild.source_hash(src)
    assert not bookbuild.is_stale(out)
    assert bookbuild.is_stale(src)  # never executed: no stored hash
    assert not list(out.parent.glob(".*.running.ipynb"))


def test_failed_execution_leaves_the_stored_chapter_alone(tmp_path):
    nb = _notebook(new_markdown_cell("# Broken"), new_code_cell("raise RuntimeError('boom')"))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored output\n")]
    path = tmp_path / "02_broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="boom"):
        bookbuild.execute(path, timeout=60)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["02_broken.ipynb"]


# --- The provenance hash ----------------------------------------------------------------


def test_source_hash_follows_code_not_markdown_outputs_or_parameters():
    nb = _source()
    base = bookbuild.source_hash(nb)

    code = copy.deepcopy(nb)
    code.cells[2].source += "\nprint('one more line')"
    assert bookbuild.source_hash(code) != base

    prose = copy.deepcopy(nb)
    prose.cells[0].source = "# A tiny chapter\n\nDifferent prose, same code."
    prose.cells.append(new_markdown_cell("## A new section"))
    assert bookbuild.source_hash(prose) == base

    outputs = copy.deepcopy(nb)
    outputs.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    outputs.cells[2].execution_count = 5
    outputs.metadata["cnnbook"]["executed_seconds"] = 1.0
    assert bookbuild.source_hash(outputs) == base

    injected = copy.deepcopy(nb)
    cell = new_code_cell("# Parameters\nn = 1\n")
    cell.metadata["tags"] = ["injected-parameters"]
    injected.cells.insert(2, cell)
    assert bookbuild.source_hash(injected) == base

    as_dict = json.loads(nbformat.writes(nb))
    assert bookbuild.source_hash(as_dict) == base


def test_source_hash_ignores_comments_layout_and_ipython_syntax():
    nb = _notebook(new_code_cell("%pip install -q tiny\nx = [1, 2]\nprint(x)"))
    base = bookbuild.source_hash(nb)
    same = copy.deepcopy(nb)
    same.cells[0].source = "%pip install -q tiny\n# a comment\nx = [\n    1,\n    2,\n]\n\nprint( x )  # shown\n"
    assert bookbuild.source_hash(same) == base
    for changed_source in ("%pip install -q other\nx = [1, 2]\nprint(x)", "%pip install -q tiny\nx = [1, 3]\nprint(x)"):
        changed = copy.deepcopy(nb)
        changed.cells[0].source = changed_source
        assert bookbuild.source_hash(changed) != base
    broken = copy.deepcopy(nb)  # a cell that does not parse counts as its text
    broken.cells[0].source = "x = ("
    assert bookbuild.source_hash(broken) != base
    broken2 = copy.deepcopy(broken)
    broken2.cells[0].source = "x = (  "
    assert bookbuild.source_hash(broken2) != bookbuild.source_hash(broken)


def test_reached_definitions_of_the_real_package():
    reached = bookbuild.reached_definitions(["from cnnbook.conv import conv2d\nconv2d(image, kernel)"])
    assert "conv.conv2d" in reached and "conv._check_padding" in reached  # a helper conv2d calls
    assert "training.fit_classifier" not in reached and "conv.max_pool2d" not in reached
    assert all(name.startswith("conv.") for name in reached)
    glued = bookbuild.reached_definitions(["from cnnbook.book import glue\nglue('x', 1)"])
    assert {"book.glue", "book._plain", "book.GLUE_PREFIX"} <= set(glued)
    # The build tools are not in the package: changing them stales no chapter.
    assert all(name.startswith("book.") for name in glued)
    assert bookbuild.reached_definitions(["import numpy as np\nnp.zeros(3)"]) == []


FAKE_PACKAGE = {
    "__init__.py": '"""Fake package."""\n\n__version__ = "0.1"\n',
    "training.py": textwrap.dedent(
        '''\
        """Training."""

        from . import models
        from .data import prepare

        EPOCHS = 3
        FIRST, LAST = 1, 9


        def fit():
            """Fit a model."""
            return models.build(), prepare(), EPOCHS


        def unused():
            return LAST
        '''
    ),
    "models.py": textwrap.dedent(
        """\
        import numpy as np


        def build():
            return layer()


        def layer():
            from . import conv  # imported inside the function

            return conv.kernel()


        def other():
            return np.zeros(1)
        """
    ),
    "conv.py": "def kernel():\n    return 3\n\n\ndef unused_kernel():\n    return 4\n",
    "data.py": "import numpy as np\n\n\ndef prepare():\n    return np.ones(1)\n",
    "plots.py": "import matplotlib\n\n\ndef show():\n    return 2\n",
}


@pytest.fixture
def fake_package(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cnnbook"
    folder.mkdir()
    for name, text in FAKE_PACKAGE.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(staleness, "PACKAGE_DIR", folder)
    return folder


def _edit(folder: Path, file: str, old: str, new: str) -> None:
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new))


FIT = "from cnnbook import training\ntraining.fit()"
FIT_REACHES = ["conv.kernel", "data.np", "data.prepare", "models.build", "models.layer", "training.EPOCHS", "training.fit"]


@pytest.mark.parametrize(
    "code, expected",
    [
        (FIT, FIT_REACHES),
        ("from cnnbook.training import fit as f", FIT_REACHES),
        ("from cnnbook.plots import show", ["plots.show"]),
        ("import cnnbook.plots as p\np.show()", ["plots.show"]),
        ("import cnnbook.plots\ncnnbook.plots.show()", ["plots.show"]),
        ("import cnnbook\ncnnbook.plots.show()", ["plots.show"]),
        ("from cnnbook import plots, training", []),  # imported, nothing used
        ("from cnnbook import plots\nhelp(plots)", ["plots.matplotlib", "plots.show"]),  # a bare module: all of it
        ("from cnnbook.conv import *", ["conv.kernel", "conv.unused_kernel"]),
        ("from cnnbook import nonexistent\nimport numpy as np", []),
    ],
)
def test_reached_definitions(fake_package, code, expected):
    assert bookbuild.reached_definitions([code]) == expected


def test_docstrings_comments_and_layout_do_not_count(fake_package):
    nb = _notebook(new_code_cell(FIT))
    base = bookbuild.source_hash(nb)
    _edit(fake_package, "training.py", '"""Fit a model."""', '"""Fit a model, better explained."""')
    _edit(fake_package, "training.py", '"""Training."""', '"""Training, the module docstring."""')
    _edit(fake_package, "models.py", "# imported inside the function", "# a different comment")
    reformatted = "return (\n        models.build(),  # the model\n        prepare(),\n        EPOCHS,\n    )"
    _edit(fake_package, "training.py", "return models.build(), prepare(), EPOCHS", reformatted)
    _edit(fake_package, "data.py", "def prepare():\n", "def prepare():\n    '''Now with a docstring.'''\n\n")
    assert bookbuild.source_hash(nb) == base


def test_code_no_chapter_reaches_does_not_count(fake_package):
    nb = _notebook(new_code_cell(FIT))
    base = bookbuild.source_hash(nb)
    _edit(fake_package, "training.py", "return LAST", "return LAST + 1")
    _edit(fake_package, "training.py", "FIRST, LAST = 1, 9", "FIRST, LAST = 1, 10")
    _edit(fake_package, "conv.py", "return 4", "return 5")
    _edit(fake_package, "models.py", "np.zeros(1)", "np.ones(1)")
    (fake_package / "plots.py").write_text("import matplotlib.pyplot as plt\n\n\ndef show():\n    return plt\n")
    (fake_package / "unrelated.py").write_text("def anything():\n    return 1\n")
    main = "\n\nif __name__ == '__main__':  # not run on import\n    print(fit())\n"
    _edit(fake_package, "training.py", "return LAST + 1\n", "return LAST + 1\n" + main)
    assert bookbuild.source_hash(nb) == base


@pytest.mark.parametrize(
    "file, old, new",
    [
        ("training.py", "return models.build(), prepare(), EPOCHS", "return models.build(), prepare(), EPOCHS + 1"),
        ("training.py", "EPOCHS = 3", "EPOCHS = 4"),  # a constant the reached function uses
        ("models.py", "return layer()", "return layer() * 2"),  # from . import models; models.build()
        ("data.py", "np.ones(1)", "np.ones(2)"),  # from .data import prepare
        ("data.py", "import numpy as np", "import jax.numpy as np"),  # an import a reached function uses
        ("conv.py", "return 3", "return 30"),  # through an import inside a function body
        ("training.py", '"""Training."""\n', '"""Training."""\nprint("imported")\n'),  # runs on import
        ("__init__.py", '__version__ = "0.1"\n', '__version__ = "0.1"\nimport sys\nsys.setrecursionlimit(50)\n'),
    ],
)
def test_a_change_the_chapter_can_reach_stales_it(fake_package, file, old, new):
    nb = _notebook(new_code_cell(FIT))
    base = bookbuild.source_hash(nb)
    _edit(fake_package, file, old, new)
    assert bookbuild.source_hash(nb) != base


def test_only_the_chapter_reaching_a_change_becomes_stale(fake_package, tmp_path):
    chapters = {
        "01_conv.ipynb": "from cnnbook.conv import kernel\nkernel()",
        "02_data.ipynb": "from cnnbook import data\ndata.prepare()",
    }
    paths = []
    for name, code in chapters.items():
        nb = _notebook(new_code_cell(code))
        nb.metadata["cnnbook"].update(source_hash=bookbuild.source_hash(nb), hash_scheme=bookbuild.HASH_SCHEME)
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)

    def stale() -> list[str]:
        return [p.name for p in paths if bookbuild.is_stale(p)]

    assert stale() == []
    _edit(fake_package, "models.py", "return layer()", "return layer() - 1")  # neither reaches it
    assert stale() == []
    _edit(fake_package, "conv.py", "return 3", "return 33")
    assert stale() == ["01_conv.ipynb"]
    _edit(fake_package, "conv.py", "return 33", "return 3  # back")
    assert stale() == []
    _edit(fake_package, "data.py", "np.ones(1)", "np.ones(3)")
    assert stale() == ["02_data.ipynb"]
    _edit(fake_package, "__init__.py", '"""Fake package."""\n', '"""Fake package."""\nprint("hello")\n')
    assert stale() == ["01_conv.ipynb", "02_data.ipynb"]  # every chapter imports the package


def test_command_line_lists_reached_definitions(tmp_path):
    nb = _notebook(new_code_cell("from cnnbook.conv import relu\nrelu(1)"))
    path = tmp_path / "07_relu.ipynb"
    nbformat.write(nb, path)
    listed = _cli("reached", str(path))
    assert listed.returncode == 0, listed.stderr
    assert "conv.relu" in listed.stdout.split() and "training.fit_classifier" not in listed.stdout


# --- Staleness, parameters and the command line -----------------------------------------


def test_is_stale(tmp_path):
    nb = _source()
    nb.metadata["cnnbook"].update(source_hash=bookbuild.source_hash(nb), hash_scheme=bookbuild.HASH_SCHEME)
    path = tmp_path / "03_fresh.ipynb"
    nbformat.write(nb, path)
    assert not bookbuild.is_stale(path)

    nb.cells[0].source += "\n\nMore prose."
    nbformat.write(nb, path)
    assert not bookbuild.is_stale(path)

    nb.cells[1].source = "n = 4  # CI: 1"
    nbformat.write(nb, path)
    assert bookbuild.is_stale(path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    tools = str(Path(bookbuild.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [tools, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bookbuild", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )


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



def test_deprecated_module_command_forwards_to_bookbuild(executed, tmp_path):
    """`python -m cnnbook.book` (the tools' old home) still runs them from a clone."""
    _, out, _ = executed
    stale = tmp_path / "05_stale.ipynb"
    nb = nbformat.read(out, as_version=4)
    nb.cells[-1].source += "\nprint('changed')"
    nbformat.write(nb, stale)
    old = [sys.executable, "-m", "cnnbook.book", "check"]
    ok = subprocess.run([*old, str(out)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout == "", ok.stdout + ok.stderr
    bad = subprocess.run([*old, str(stale)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and f"stale: {stale}" in bad.stdout

def test_ci_parameters_and_prepare_ci(tmp_path):
    src = tmp_path / "06_tiny.ipynb"
    nbformat.write(_source(), src)
    assert bookbuild.ci_parameters(src) == {"n": 1}
    copy_path = bookbuild.prepare_ci(src, tmp_path / "ci" / "06_tiny.ipynb")
    prepared = nbformat.read(copy_path, as_version=4)
    injected = [c for c in prepared.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 1" in injected[0].source
    assert not any(c.get("outputs") for c in prepared.cells if c.cell_type == "code")
    assert bookbuild.source_hash(prepared) == bookbuild.source_hash(src)


def test_machine_info():
    info = book.machine_info()
    assert set(info) == {"cpu", "cpu_family", "cpu_model_number", "cores", "python", "system"}
    assert info["cores"] >= 1 and info["python"] == ".".join(map(str, sys.version_info[:3]))


def test_cpu_description_names_family_and_model_where_known():
    zen5 = {"cpu": "AMD EPYC", "cpu_family": "26", "cpu_model_number": "2", "cores": 2}
    assert book.cpu_description(zen5) == "AMD EPYC (CPU family 26, model 2)"
    assert book.cpu_description({"cpu": "AMD EPYC", "cores": 2}) == "AMD EPYC"  # a record from before the family
    assert book.cpu_description({"cpu": "Apple M2", "cpu_family": None, "cpu_model_number": None}) == "Apple M2"
    assert book.cpu_description({}) == "unknown CPU"


def test_stored_outputs_hide_this_machines_folders(tmp_path):
    import site

    package_file = Path(site.getsitepackages()[0]) / "keras" / "src" / "layers" / "input_layer.py"
    _, out = _executed(
        tmp_path / "07_paths.ipynb",
        "import sys, warnings\n"
        f"print({str(package_file)!r} + ':27: UserWarning: Argument input_shape', file=sys.stderr)\n"
        "print(sys.prefix)",
    )
    text = "".join(o.get("text", "") for o in out.cells[0].outputs)
    assert "site-packages/keras/src/layers/input_layer.py:27: UserWarning" in text
    assert str(Path(site.getsitepackages()[0])) not in text and sys.prefix not in text
    assert "<venv>" in text


def test_stored_outputs_name_the_data_folder_by_its_variable(tmp_path, monkeypatch):
    """A chapter that says where it read the data shows ``$CNNBOOK_DATA_DIR``, not this machine's folder."""
    data_dir = tmp_path / "shared data"
    data_dir.mkdir()
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(data_dir))
    _, out = _executed(tmp_path / "08_data_dir.ipynb", f"print('read from:', {str(data_dir / 'mnist')!r})")
    text = "".join(o.get("text", "") for o in out.cells[0].outputs)
    assert text == "read from: $CNNBOOK_DATA_DIR/mnist\n"


def test_stored_chapters_keep_their_figures_in_a_headless_shell(tmp_path, monkeypatch):
    """MPLBACKEND=Agg (CI's setting) must not reach the kernel: Agg would draw every figure into nothing."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _, out = _executed(tmp_path / "09_figure.ipynb",
                       "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1], [1, 0]);")
    assert [o.output_type for o in out.cells[0].outputs] == ["display_data"]
    assert "image/png" in out.cells[0].outputs[0].data
    assert os.environ["MPLBACKEND"] == "Agg"  # restored for the rest of this process


def test_an_edit_during_the_run_leaves_the_chapter_stale(fake_package, tmp_path):
    """The hash is taken before the run: outputs of the old code are never stamped with the new code's hash."""
    kernel_py = fake_package / "conv.py"
    reach = new_code_cell("if False:  # reaches conv.kernel for the hash, never runs\n"
                          "    from cnnbook import conv\n    conv.kernel()")
    edit = new_code_cell(f"from pathlib import Path\np = Path({str(kernel_py)!r})\n"
                         "p.write_text(p.read_text().replace('return 3', 'return 30'))")
    path = tmp_path / "03_edited.ipynb"
    nbformat.write(_notebook(new_markdown_cell("# Edited while running"), reach, edit), path)
    before = bookbuild.source_hash(path)
    bookbuild.execute(path, timeout=120)
    assert "return 30" in kernel_py.read_text()  # the chapter did edit the reached definition
    meta = json.loads(path.read_text())["metadata"]["cnnbook"]
    assert meta["source_hash"] == before
    assert bookbuild.is_stale(path)


def test_time_in_records_a_float32_run_and_keeps_the_stored_outputs(tmp_path, monkeypatch):
    """`bookbuild time`: a copy runs with $CNNBOOK_DTYPE forced; the stored chapter keeps its outputs, gains the timing."""
    monkeypatch.setenv("CNNBOOK_DTYPE", "mixed_bfloat16")
    path, stored = _executed(tmp_path / "08_timed.ipynb", "import os\nprint(os.environ['CNNBOOK_DTYPE'])")
    assert stored.cells[0].outputs[0]["text"] == "mixed_bfloat16\n"
    record = bookbuild.time_in(path, "float32", timeout=120)
    after = nbformat.read(path, as_version=4)
    assert after.cells[0].outputs[0]["text"] == "mixed_bfloat16\n"  # the stored run's outputs, untouched
    meta = after.metadata["cnnbook"]
    assert meta["runs_in"]["float32"] == record and record["executed_seconds"] > 0
    assert record["source_hash"] == meta["source_hash"] == bookbuild.source_hash(path)
    assert os.environ["CNNBOOK_DTYPE"] == "mixed_bfloat16"  # restored
    assert not list(tmp_path.glob(".*.ipynb"))  # no scratch copy left behind
    with pytest.raises(ValueError, match="dtype must be"):
        bookbuild.time_in(path, "float16")


# --- Hash scheme 2: moves are free -----------------------------------------------


def test_moving_an_unchanged_definition_to_a_new_module_stales_nothing(fake_package):
    nb = _notebook(new_code_cell(FIT))
    base = bookbuild.source_hash(nb)
    # conv.kernel moves to a new module; conv imports it back.
    (fake_package / "kernels.py").write_text("def kernel():\n    return 3\n")
    (fake_package / "conv.py").write_text(
        "from .kernels import kernel\n\n\ndef unused_kernel():\n    return 4\n"
    )
    assert "kernels.kernel" in bookbuild.reached_definitions([FIT])
    assert bookbuild.source_hash(nb) == base
    _edit(fake_package, "kernels.py", "return 3", "return 30")  # its code, wherever it lives
    assert bookbuild.source_hash(nb) != base


def test_how_a_definition_is_referred_to_does_not_count(fake_package):
    nb = _notebook(new_code_cell(FIT))
    base = bookbuild.source_hash(nb)
    # models.build written with an aliased import instead of its own module's name,
    # and training.fit with `from .models import build` instead of `models.build`.
    _edit(fake_package, "models.py", "return layer()", "return make()")
    _edit(fake_package, "models.py", "import numpy as np\n", "import numpy as np\nfrom .models import layer as make\n")
    _edit(fake_package, "training.py", "from . import models\n", "from .models import build\n")
    _edit(fake_package, "training.py", "models.build()", "build()")
    assert bookbuild.source_hash(nb) == base
    _edit(fake_package, "training.py", "build(), prepare()", "build(), build()")  # another definition
    assert bookbuild.source_hash(nb) != base


def test_moving_a_definition_into_the_module_it_uses_stales_nothing(fake_package):
    nb = _notebook(new_code_cell("from cnnbook.training import fit\nfit()"))
    base = bookbuild.source_hash(nb)
    # training.fit moves into models (which it calls as models.build); training imports it back.
    (fake_package / "training.py").write_text(
        "from .models import fit\n\nEPOCHS = 3\nFIRST, LAST = 1, 9\n"
    )
    _edit(
        fake_package,
        "models.py",
        "import numpy as np\n",
        "import numpy as np\nfrom .data import prepare\nfrom .training import EPOCHS\n\n\n"
        "def fit():\n    return build(), prepare(), EPOCHS\n",
    )
    assert bookbuild.source_hash(nb) == base


def test_moving_a_function_of_the_real_package_leaves_every_chapter_fresh(tmp_path, monkeypatch):
    """The issue's own check: conv.relu, unchanged, moved to a new module and imported back."""
    import shutil

    chapters = bookbuild.chapter_paths(Path(__file__).resolve().parents[1] / "notebooks")
    before = {p.name: bookbuild.source_hash(p) for p in chapters}
    copy_dir = tmp_path / "cnnbook"
    shutil.copytree(staleness.PACKAGE_DIR, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(staleness, "PACKAGE_DIR", copy_dir)
    assert {p.name: bookbuild.source_hash(p) for p in chapters} == before  # the copy is the package
    conv = (copy_dir / "conv.py").read_text()
    start = conv.index("def relu(")
    end = conv.index("\ndef ", start + 1)
    relu = conv[start:end]
    (copy_dir / "activations.py").write_text(
        '"""Activations."""\n\nfrom __future__ import annotations\n\nimport numpy as np\n\n\n' + relu
    )
    (copy_dir / "conv.py").write_text(conv[:start] + "from .activations import relu  # noqa: E402\n\n" + conv[end:])
    reaching = [p.name for p in chapters if any(d.endswith(".relu") for d in bookbuild.reached_definitions(bookbuild.code_cells(p)))]
    assert "01_what_a_cnn_sees.ipynb" in reaching
    assert {p.name: bookbuild.source_hash(p) for p in chapters} == before
    (copy_dir / "activations.py").write_text((copy_dir / "activations.py").read_text().replace("np.maximum", "np.fmax"))
    after = {p.name: bookbuild.source_hash(p) for p in chapters}
    assert [name for name in after if after[name] != before[name]] == reaching


def _v1_chapter(path: Path, code: str) -> Path:
    nb = _notebook(new_code_cell(code))
    nb.metadata["cnnbook"]["source_hash"] = bookbuild.source_hash(nb, scheme=1)
    nb.metadata["cnnbook"]["runs_in"] = {"float32": {"source_hash": bookbuild.source_hash(nb, scheme=1)}}
    nbformat.write(nb, path)
    return path


def test_migrate_restamps_a_fresh_chapter_and_refuses_a_stale_one(fake_package, tmp_path):
    fresh = _v1_chapter(tmp_path / "01_fresh.ipynb", FIT)
    stale = _v1_chapter(tmp_path / "02_stale.ipynb", "from cnnbook.conv import kernel\nkernel()")
    assert not bookbuild.is_stale(fresh)  # read in the scheme it was written with
    _edit(fake_package, "conv.py", "return 3", "return 33")  # 02 reaches it, 01 too (via models.layer)
    (fake_package / "conv.py").write_text((fake_package / "conv.py").read_text().replace("33", "3"))
    assert bookbuild.source_hash(fresh, scheme=1) != bookbuild.source_hash(fresh)  # the schemes differ
    assert bookbuild.migrate_hash(fresh) is True
    meta = nbformat.read(fresh, as_version=4).metadata["cnnbook"]
    assert meta["hash_scheme"] == bookbuild.HASH_SCHEME
    assert meta["source_hash"] == bookbuild.source_hash(fresh) == meta["runs_in"]["float32"]["source_hash"]
    assert not bookbuild.is_stale(fresh)
    assert bookbuild.migrate_hash(fresh) is False  # already current
    _edit(fake_package, "conv.py", "return 3", "return 4")  # 02's code changed after its run
    with pytest.raises(ValueError, match="stale under hash scheme 1"):
        bookbuild.migrate_hash(stale)
    assert "hash_scheme" not in nbformat.read(stale, as_version=4).metadata["cnnbook"]


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="scheme must be 1 or 2"):
        bookbuild.source_hash(_notebook(new_code_cell("1")), scheme=3)
