"""Importing cnnbook is cheap and has no side effects.

Each check runs in a fresh interpreter, so that modules imported by other
tests cannot hide (or cause) a heavy import.  The subprocess works in an empty
temporary folder with an empty temporary home, turns every warning into an
error, and reports what the import changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnbook"
HEAVY = ("tensorflow", "keras", "matplotlib", "torch", "jax", "sklearn", "papermill", "nbformat", "IPython")

# Modules that import Keras (and so TensorFlow) at import time by design, per the package map in
# CONTRIBUTING.md: they exist to build and train Keras models.
KERAS_AT_IMPORT = {
    "models": "Keras model builders: `import keras` at the top",
    "training": "the facade of engine, recipes and model_cache, which import Keras at the top",
    "engine": "the compile/fit loop: `import keras` at the top (its callbacks are Keras classes)",
    "recipes": "TrainConfig and the recipes: `import keras` at the top, and it imports models",
    "model_cache": "load-or-train the Part I model: `import keras` at the top, and it imports engine",
    "robustness": "attacks and adversarial training: `import keras` at the top (FGSMTraining is a keras.Model)",
    "study": "chapter 10's study runner: trains through training and models (Keras) at the top",
}
# Every other module promises not to import TensorFlow or Keras (or the other heavy packages) when
# imported: NumPy-only (conv, data, baselines, evaluation, images), lazy (plots: matplotlib;
# book: papermill/nbformat; baselines/evaluation: scikit-learn) or a thin command line (cli).
# Found from the files, so a new module is checked without editing this list.
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
LIGHT = [m for m in MODULES if m not in KERAS_AT_IMPORT]

_PROBE = textwrap.dedent(
    """
    import json, os, random, sys, warnings
    warnings.simplefilter("error")
    import numpy as np

    np_before = np.random.get_state()
    py_before = random.getstate()
    env_before = dict(os.environ)
    modules_before = set(sys.modules)

    import importlib
    importlib.import_module(sys.argv[1])

    np_after = np.random.get_state()
    print(json.dumps({
        "new_modules": sorted(set(sys.modules) - modules_before),
        "numpy_state_unchanged": all(
            (a == b).all() if isinstance(a, np.ndarray) else a == b for a, b in zip(np_before, np_after)
        ),
        "python_random_unchanged": random.getstate() == py_before,
        "environment_unchanged": dict(os.environ) == env_before,
    }))
    """
)


def _probe(module: str, tmp_path: Path) -> dict:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS", "MPL"))}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, module], capture_output=True, text=True, cwd=work, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    result["files_created"] = sorted(str(p) for p in tmp_path.rglob("*") if p not in (home, work))
    return result


def test_import_cnnbook_has_no_side_effects(tmp_path):
    result = _probe("cnnbook", tmp_path)
    assert not [m for m in result["new_modules"] if m.split(".")[0] in HEAVY]
    assert result["numpy_state_unchanged"]
    assert result["python_random_unchanged"]
    assert result["environment_unchanged"]
    assert result["files_created"] == []


def test_every_module_is_classified():
    """The exclusions name real modules, and at least the NumPy-only ones are checked as light."""
    assert set(KERAS_AT_IMPORT) <= set(MODULES), sorted(set(KERAS_AT_IMPORT) - set(MODULES))
    assert {"data", "book", "conv", "images", "evaluation", "plots", "baselines", "cli", "workflows", "export",
            "distributed"} <= set(LIGHT)


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_import_tensorflow(module, tmp_path):
    result = _probe(f"cnnbook.{module}", tmp_path)
    roots = {m.split(".")[0] for m in result["new_modules"]}
    assert not roots & {"tensorflow", "keras"}, f"importing cnnbook.{module} imported TensorFlow/Keras"
    heavy = [m for m in result["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"importing cnnbook.{module} imported {sorted({m.split('.')[0] for m in heavy})}"
    assert result["numpy_state_unchanged"] and result["python_random_unchanged"]
    assert result["environment_unchanged"] and result["files_created"] == []
