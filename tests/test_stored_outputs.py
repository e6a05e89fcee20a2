"""Clean pages (issue 15): what the stored chapters show a reader.

Read from the stored notebooks, without executing anything:

* no folder of the machine that ran them (a data folder, the venv, a home or temp folder);
* no native TensorFlow log lines (absl/oneDNN/CUDA start-up chatter);
* no stray echoes: a value shown only because a ``glue(...)`` call ended its cell;
* no per-epoch Keras logs (two lines an epoch), except where listed below with the reason;
* a chapter that draws shows its figures (a kernel started with ``MPLBACKEND=Agg`` stores none).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import bookbuild

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = bookbuild.chapter_paths(ROOT / "notebooks")

MACHINE_PATH = re.compile(r"(?<![\w$.~<>-])/(?:work|home|root|tmp|Users|mnt|opt|srv|scratch)/|\.venv/")
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|cpu_feature_guard|cuda_(?:dnn|blas|fft|platform)|"
                        r"Could not find cuda|oneDNN custom operations", re.M)
EPOCH_LOG = re.compile(r"^Epoch \d+/\d+$", re.M)
# TensorFlow's Python-level warnings, and the memory addresses its messages print (different every run).
PYTHON_TF_LOG = re.compile(r"^WARNING:tensorflow:| at 0x[0-9a-f]{6,}>", re.M)

# Chapters still allowed Keras' own epoch log, and why.
EPOCH_LOGS_ALLOWED: dict[str, str] = {}


def _texts(cell: dict) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append("".join(value))
    return texts


def _code_cells(path: Path) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _ends_with_glue(source: str) -> bool:
    """Whether the cell's last statement is a bare ``glue(...)`` call (whose value Jupyter would echo)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        body = ast.parse("\n".join(lines)).body
    except SyntaxError:
        return False
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
        return False
    func = body[-1].value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "glue"  # a trailing ";" hides the echo when the cell runs


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_machine_paths_or_native_logs(path):
    for i, cell in enumerate(_code_cells(path)):
        for text in _texts(cell):
            assert not MACHINE_PATH.search(text), f"code cell {i} shows a folder of this machine: {text[:200]!r}"
            assert not NATIVE_LOG.search(text), f"code cell {i} shows TensorFlow's native log: {text[:200]!r}"
            assert not PYTHON_TF_LOG.search(text), f"code cell {i} shows a TensorFlow warning: {text[:200]!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_stray_echoes(path):
    for i, cell in enumerate(_code_cells(path)):
        source = "".join(cell["source"])
        echoed = [o for o in cell.get("outputs", []) if o["output_type"] == "execute_result"]
        assert not (echoed and _ends_with_glue(source)), f"code cell {i} echoes the value its last glue() stored"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_per_epoch_keras_logs(path):
    if path.stem in EPOCH_LOGS_ALLOWED:
        pytest.skip(EPOCH_LOGS_ALLOWED[path.stem])
    for i, cell in enumerate(_code_cells(path)):
        epochs = sum(len(EPOCH_LOG.findall(text)) for text in _texts(cell))
        assert epochs <= 1, f"code cell {i} prints Keras' log of {epochs} epochs; show a compact table instead"


DRAWS = re.compile(r"\bplots\.\w+\(|\bplt\.(?:subplots|figure|imshow|plot)\(")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapters_that_draw_show_their_figures(path):
    cells = _code_cells(path)
    drawing = [i for i, c in enumerate(cells) if DRAWS.search("".join(c["source"]))]
    without = [i for i in drawing
               if not any("image/png" in o.get("data", {}) for o in cells[i].get("outputs", []))]
    assert not without, f"code cells {without} draw a figure but the stored chapter shows none"


def test_the_rules_catch_what_they_promise():
    assert _ends_with_glue('x = 1\nglue("x", x)') and _ends_with_glue('glue("x", x);')
    assert not _ends_with_glue('y = glue("x", 1)') and not _ends_with_glue("%pip install x\nprint(1)")
    assert MACHINE_PATH.search("read from: /work/shared/data/mnist")
    assert not MACHINE_PATH.search("read from: $CNNBOOK_DATA_DIR/mnist")
    assert not MACHINE_PATH.search("site-packages/keras/src/x.py:3: UserWarning")
    assert NATIVE_LOG.search("I0000 00:00:1796058079.823099   32046 cudart_stub.cc:31] Could not find cuda drivers")
    assert len(EPOCH_LOG.findall("Epoch 1/3\n430/430 - 9s\nEpoch 2/3\n")) == 2
    assert PYTHON_TF_LOG.search("WARNING:tensorflow:5 out of the last 13 calls to <function f at 0x7f485a3ff1a0> "
                                "triggered tf.function retracing.")
    assert not PYTHON_TF_LOG.search("WARNING:absl:You are saving your model as an HDF5 file")  # chapter A1 shows it
