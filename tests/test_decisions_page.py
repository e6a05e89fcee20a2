"""The measurements that chose the recipes live on one book page, not in the code.

``book/decisions.md`` ("How the recipes were chosen") has a section per
recipe of :mod:`cnnbook.recipes`; each recipe's docstring points there, and
the training modules' docstrings and comments carry no measured accuracies
or machines any more.  Read from the sources (no TensorFlow import).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cnnbook"
PAGE = ROOT / "book" / "decisions.md"
TRAINING_MODULES = ("training", "engine", "recipes", "model_cache", "train_steps")
POINTER = "How the recipes were chosen"
# A measurement as the old logs wrote them: an accuracy with decimals, or the machine.
MEASUREMENT = re.compile(r"\d+\.\d+ ?%|AMD EPYC|\d\.\d+ s\b")


def _tree(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def _recipes() -> dict[str, ast.FunctionDef]:
    """The recipe factories: functions of :mod:`cnnbook.recipes` that return a ``TrainConfig``."""
    return {
        node.name: node for node in _tree("recipes").body
        if isinstance(node, ast.FunctionDef) and ast.unparse(node.returns) == "TrainConfig"
    }


def _sections() -> list[str]:
    return [line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]


def _toc_parts() -> list[list[str]]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [[chapter["file"] for chapter in part["chapters"]] for part in toc["parts"]]


def test_the_page_has_its_label_and_sits_beside_results_in_the_toc():
    assert PAGE.read_text(encoding="utf-8").startswith(f"(decisions)=\n# {POINTER}\n")
    (part,) = [files for files in _toc_parts() if "book/results" in files]
    assert "book/decisions" in part


def test_every_recipe_has_a_section_and_its_docstring_points_there():
    recipes = _recipes()
    assert {"default_config", "cifar_cnn_config", "resnet_config", "ensemble_config"} <= set(recipes)
    sections = _sections()
    for name, node in recipes.items():
        assert any(f"`{name}`" in heading for heading in sections), f"no section for {name}"
        assert POINTER in " ".join((ast.get_docstring(node) or "").split()), f"{name}'s docstring"
    assert any("`AUGMENTATIONS`" in heading for heading in sections)


def test_the_sections_name_what_the_code_defines():
    defined = {
        target.id if isinstance(node, ast.Assign) else node.target.id
        for module in ("recipes", "engine")
        for node in _tree(module).body if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    } | {
        node.name for module in ("recipes", "engine") for node in _tree(module).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    augmentations = next(
        node.value for node in _tree("recipes").body
        if isinstance(node, ast.AnnAssign) and node.target.id == "AUGMENTATIONS"
    )
    keys = {f'"{key.value}"' for key in augmentations.keys}
    for heading in [line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("#")]:
        for name in re.findall(r"`([^`]+)`", heading):
            assert name in defined or name in keys, f"{heading!r} names {name}, which the code does not define"


def test_the_training_modules_keep_no_experiment_log():
    for module in TRAINING_MODULES:
        text = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
        found = MEASUREMENT.findall(text)
        assert not found, f"{module}.py records measurements {found}: they belong on book/decisions.md"
    assert len(MEASUREMENT.findall(PAGE.read_text(encoding="utf-8"))) > 50, "the page lost its measurements"
