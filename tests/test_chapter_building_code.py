"""Chapter 4 writes its models out; the library builds them; the two agree.

Issue 32: chapter 4 shows the article's network and the book's Part I model
as Keras code, every layer in one visible cell, and then uses the library's
``models.article_cnn`` and ``models.mnist_cnn``.  These tests take those
cells from the stored notebook, run them (build only, no training) and
compare the result with the library's model: the layer types in order, each
layer's ``get_config()`` without its name, and the parameter count.  A
change to one side only (the chapter's cell or the library's function) makes
them fail, which the mutation tests below check.
"""

from __future__ import annotations

import __future__

import ast
import inspect
import json
from pathlib import Path
from typing import Any, Callable

import keras
import pytest

from cnnbook import models

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "04_building.ipynb"
HIDDEN_TAGS = {"remove-cell", "remove_cell", "remove-input", "remove_input",
               "hide-input", "hide-cell"}


def _code_cells() -> list[dict]:
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    return [c | {"source": "".join(c["source"])}
            for c in nb["cells"] if c["cell_type"] == "code"]


def _assigns(source: str, name: str, builder: str) -> bool:
    """Whether ``source`` parses and sets ``name = keras.<builder>(...)``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell with IPython magics
        return False
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name
                        for t in stmt.targets)
                and isinstance(stmt.value, ast.Call)
                and ast.unparse(stmt.value.func) == f"keras.{builder}"):
            return True
    return False


def model_cell(name: str, builder: str) -> dict:
    """The one code cell of chapter 4 that sets ``name = keras.<builder>``."""
    found = [c for c in _code_cells() if _assigns(c["source"], name, builder)]
    assert len(found) == 1, (
        f"chapter 4 should write its model out once as "
        f"`{name} = keras.{builder}(...)`; found {len(found)} such cells")
    return found[0]


def _import_cells() -> list[str]:
    """The chapter's cells that only import (they set up the names)."""
    sources = []
    for cell in _code_cells():
        try:
            body = ast.parse(cell["source"]).body
        except SyntaxError:
            continue
        if body and all(isinstance(s, (ast.Import, ast.ImportFrom))
                        for s in body):
            sources.append(cell["source"])
    return sources


def run_cell(source: str, name: str) -> keras.Model:
    """Run ``source`` after the chapter's imports; return its ``name``.

    A ``.summary()`` call is dropped: the test builds, it does not print.
    """
    tree = ast.parse(source)
    tree.body = [
        s for s in tree.body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                and isinstance(s.value.func, ast.Attribute)
                and s.value.func.attr == "summary")
    ]
    namespace: dict[str, Any] = {}
    for imports in _import_cells():
        exec(compile(imports, "<chapter 4 imports>", "exec"), namespace)
    exec(compile(tree, "<chapter 4 model cell>", "exec"), namespace)
    return namespace[name]


def blueprint(model: keras.Model) -> tuple[int, list[tuple[str, dict]]]:
    """Parameter count, and each layer's class and configuration (no name)."""
    layers = []
    for layer in model.layers:
        config = layer.get_config()
        config.pop("name", None)
        kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
        layers.append((kind, config))
    return model.count_params(), layers


def differences(ours: keras.Model, theirs: keras.Model) -> list[str]:
    """What differs between two models' blueprints, in words; [] if none."""
    (n_ours, ours_layers), (n_theirs, theirs_layers) = (
        blueprint(ours), blueprint(theirs))
    found = []
    if n_ours != n_theirs:
        found.append(f"parameters: {n_ours:,} vs {n_theirs:,}")
    if len(ours_layers) != len(theirs_layers):
        found.append(f"layers: {len(ours_layers)} vs {len(theirs_layers)}")
    for i, (a, b) in enumerate(zip(ours_layers, theirs_layers)):
        if a[0] != b[0]:
            found.append(f"layer {i}: {a[0]} vs {b[0]}")
            continue
        for key in sorted(set(a[1]) | set(b[1])):
            if a[1].get(key) != b[1].get(key):
                found.append(f"layer {i} ({a[0].rsplit('.', 1)[-1]}) {key}: "
                             f"{a[1].get(key)!r} vs {b[1].get(key)!r}")
    return found


# What each written-out model is: the chapter's name for it, the Keras
# builder it is written with, and the library's call that must build it.
CASES = {
    "article": ("article", "Sequential",
                lambda: models.article_cnn(input_shape=(28, 28, 1),
                                           num_classes=10)),
    "part1": ("model", "Model",
              lambda: models.mnist_cnn(input_shape=(28, 28, 1),
                                       num_classes=10)),
}


@pytest.mark.parametrize("case", CASES)
def test_the_chapter_writes_the_model_out_in_one_visible_cell(case):
    name, builder, library = CASES[case]
    cell = model_cell(name, builder)
    tags = set(cell["metadata"].get("tags", []))
    assert not tags & HIDDEN_TAGS, f"the model cell is hidden by {tags}"
    written = run_cell(cell["source"], name)
    # Every layer is in that one cell: it builds the whole network.
    assert len(written.layers) == len(library().layers)
    for line in cell["source"].splitlines():
        assert len(line) <= 79, f"a line runs off the page: {line!r}"


@pytest.mark.parametrize("case", CASES)
def test_the_chapter_and_the_library_build_the_same_network(case):
    name, builder, library = CASES[case]
    written = run_cell(model_cell(name, builder)["source"], name)
    assert differences(written, library()) == []


def test_part1_uses_the_books_batch_normalization_layer():
    written = run_cell(model_cell("model", "Model")["source"], "model")
    norms = [layer for layer in written.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is models.FusedBatchNormalization
                         for layer in norms)


# Mutations of the chapter's cell: (case, text in the cell, replacement).
CHAPTER_MUTATIONS = [
    ("part1", "Conv2D(32,", "Conv2D(24,"),
    ("part1", "Dropout(0.3)", "Dropout(0.5)"),
    ("part1", "models.FusedBatchNormalization()",
     "layers.BatchNormalization()"),
    ("article", "Dense(64,", "Dense(32,"),
    ("article", "layers.Dense(10)", 'layers.Dense(10, activation="softmax")'),
]


@pytest.mark.parametrize(("case", "old", "new"), CHAPTER_MUTATIONS)
def test_a_change_to_the_chapter_alone_is_caught(case, old, new):
    name, builder, library = CASES[case]
    source = model_cell(name, builder)["source"]
    assert old in source, f"the mutation no longer applies: {old!r}"
    mutated = run_cell(source.replace(old, new, 1), name)
    assert differences(mutated, library()) != []


def _mutated(function: Callable[..., Any], old: str, new: str
             ) -> Callable[..., Any]:
    """``function`` recompiled from its source with ``old`` replaced."""
    source = inspect.getsource(function)
    assert old in source, f"the mutation no longer applies: {old!r}"
    namespace = dict(vars(models))
    code = compile(source.replace(old, new, 1), "<mutated library>", "exec",
                   flags=__future__.annotations.compiler_flag,
                   dont_inherit=True)
    exec(code, namespace)
    return namespace[function.__name__]


# Mutations of the library's function: (case, function, text, replacement).
LIBRARY_MUTATIONS = [
    ("part1", models.mnist_cnn, "filters: Sequence[int] = (16, 32, 64)",
     "filters: Sequence[int] = (16, 32, 48)"),
    ("part1", models.mnist_cnn, "layers.ReLU(", "layers.ELU("),
    ("part1", models.mnist_cnn, 'padding="same"', 'padding="valid"'),
    ("article", models.article_cnn, "layers.Dense(64,", "layers.Dense(32,"),
]


@pytest.mark.parametrize(("case", "function", "old", "new"),
                         LIBRARY_MUTATIONS)
def test_a_change_to_the_library_alone_is_caught(case, function, old, new):
    name, builder, _ = CASES[case]
    written = run_cell(model_cell(name, builder)["source"], name)
    changed = _mutated(function, old, new)
    kwargs = {"input_shape": (28, 28, 1), "num_classes": 10}
    assert differences(written, changed(**kwargs)) != []
    # The unmutated source, recompiled the same way, still agrees.
    same = _mutated(function, old, old)
    assert differences(written, same(**kwargs)) == []
