"""Chapter 11 (inside the CNN), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbook import book
import bookbuild
from conftest import parameter_defaults

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "11_inside_the_cnn.ipynb"
METHODS = ("gradient", "smoothgrad", "grad_cam", "occlusion")
NAMES = {"gradient": "gradient", "smoothgrad": "SmoothGrad", "grad_cam": "Grad-CAM", "occlusion": "occlusion"}

pytestmark = pytest.mark.notebook


def _listed(text: str) -> set[str]:
    return set() if text == "none" else set(text.split(", "))


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {
        "mnist_train_size": 2000, "mnist_epochs": 1, "check_images": 40, "randomisation_images": 16,
        "smoothgrad_samples": 4, "cifar_train_size": 1000, "cifar_epochs": 1, "cifar_width": 8,
        "photo_images": 20, "seed": 0}


def _check_consistency(g: dict) -> None:
    """What must hold for any run: ranges, and verdicts that follow from the chapter's own numbers."""
    assert 0.0 <= g["initial_edge_median"] <= 1.0 and 0.0 <= g["learned_edge_median"] <= 1.0
    assert 0 <= g["learned_edge_kernels"] <= 16 and 0 <= g["initial_edge_kernels"] <= 16
    assert g["edge_verdict"] == ("more" if g["edge_rank_p"] < 0.05 else "no more")
    assert g["ex11_stage2_verdict"] == ("falls faster" if g["ex11_area_stage2"] < g["ex11_area_stage3"]
                                        else "does not fall faster")
    for m in METHODS:
        assert -1.0 <= g[f"random_corr_{m}"] <= 1.0
        assert 0.0 <= g[f"deletion_area_{m}"] <= 0.5  # accuracy ≤ 1 over fractions 0 … 0.5
        assert 0.0 <= g[f"deletion_p_{m}"] <= 1.0
    deletion = _listed(g["deletion_passing"])
    randomisation = _listed(g["randomisation_passing"])
    for m in METHODS:
        # The deletion verdict follows from the areas and the paired test.
        expected = g[f"deletion_area_{m}"] < g["deletion_area_random"] and g[f"deletion_p_{m}"] < 0.05
        assert (NAMES[m] in deletion) == expected, m
        # A method whose mean correlation is above the threshold cannot pass (the interval's top is higher still).
        if g[f"random_corr_{m}"] >= g["trust_threshold"]:
            assert NAMES[m] not in randomisation, m
    assert randomisation | _listed(g["randomisation_failing"]) == set(NAMES.values())
    photo = _listed(g["photo_deletion_passing"])
    assert photo | _listed(g["photo_deletion_failing"]) == set(NAMES.values()) and not photo & _listed(
        g["photo_deletion_failing"])
    for m in METHODS:
        assert 0.0 <= g[f"photo_area_{m}"] <= 0.5
        expected = g[f"photo_area_{m}"] < g["photo_area_random"] and g[f"photo_p_{m}"] < 0.05
        assert (NAMES[m] in photo) == expected, m
    assert _listed(g["both_passing"]) == deletion & randomisation
    assert g["both_passing_count"] == len(deletion & randomisation)
    assert g["pair_a"] != g["pair_b"] and g["pair_count"] >= 0
    assert 0.0 <= g["cifar_val_accuracy"] <= 1.0
    assert 0.0 < g["ex11_background_fraction"] < 1.0
    assert 0.0 <= g["ex11_area_stage2"] <= 0.5 and g["ex11_area_stage3"] == g["deletion_area_grad_cam"]


def test_inside_chapter_values(chapter_runner):
    _, g = chapter_runner("11_inside_the_cnn")
    ci = bookbuild.ci_parameters(CHAPTER)
    assert g["check_images"] == ci["check_images"] and g["randomisation_images"] == ci["randomisation_images"]
    assert g["cifar_train_images"] == ci["cifar_train_size"] and g["cifar_epochs"] == ci["cifar_epochs"]
    assert g["mnist_test_accuracy"] > 0.5  # even one epoch on 2,000 digits is far above chance
    assert g["mistakes_shown"] == 4
    assert g["photo_images"] == ci["photo_images"]
    _check_consistency(g)
    # Even a model trained for one epoch is explained by occlusion better than by random deletion:
    # covering the strokes removes the evidence, covering the background does not.
    assert g["deletion_area_occlusion"] < g["deletion_area_random"]
    assert g["occlusion_ms"] > g["gradient_ms"]  # one prediction per position against one gradient
    assert g["random_corr_grad_cam"] < 1.0 and g["random_corr_occlusion"] < 1.0
    assert g["chapter_seconds"] < 300


def test_stored_full_run():
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    assert nb["metadata"].get("cnnbook", {}).get("parameters") == {}, "the stored chapter must hold a full run"
    g = book.read_glued(nb)
    defaults = parameter_defaults(nb)
    assert g["check_images"] == defaults["check_images"] and g["randomisation_images"] == defaults["randomisation_images"]
    assert g["precision"] == "float32"
    _check_consistency(g)
    assert g["mnist_test_accuracy"] >= 0.99  # the Part I model
    assert g["cifar_val_accuracy"] > 0.4  # short training, but far above chance (10 %)
    # What the prose says about the measured results.
    assert g["learned_edge_kernels"] > g["initial_edge_kernels"]  # "a few first-layer kernels are edge detectors"
    assert g["random_corr_smoothgrad"] > g["random_corr_grad_cam"]
    assert g["random_corr_smoothgrad"] > g["random_corr_occlusion"]
    assert "occlusion" in _listed(g["deletion_passing"]) and "occlusion" in _listed(g["both_passing"])
    assert "SmoothGrad" not in _listed(g["randomisation_passing"])
    assert g["deletion_area_grad_cam"] > max(g["deletion_area_gradient"], g["deletion_area_occlusion"])
    assert g["deletion_at_10_random"] > g["deletion_at_10_occlusion"]
    assert g["random_corr_gradient"] > max(g["random_corr_grad_cam"], g["random_corr_occlusion"]) + 0.2  # "far from unrelated"
    assert g["occlusion_ms"] > g["gradient_ms"]  # "the slowest"
    # The prose reads any curve above the random order's as a limit of the test, and Grad-CAM's is above it.
    assert g["photo_area_grad_cam"] > g["photo_area_random"]  # the prose explains why Grad-CAM's region deletion scores worse
    assert g["chapter_seconds"] <= 10 * 60
