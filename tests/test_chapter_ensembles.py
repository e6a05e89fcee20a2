"""Chapter 9 (ensembles), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbook import book, training
import bookbuild
from conftest import parameter_defaults

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "09_ensembles.ipynb"

pytestmark = pytest.mark.notebook


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {"dataset": "mnist", "members": 2, "train_size": 2000, "epochs": 1,
                                           "seed": 0}


def test_ensemble_chapter_values(chapter_runner):
    _, g = chapter_runner("09_ensembles")
    assert g["members"] == 2 and g["test_images"] == 10_000
    assert 0.0 <= g["member_val_min"] <= g["member_val_max"] <= 1.0
    assert g["all_wrong_images"] <= g["some_wrong_images"]
    assert g["disagree_images"] <= g["some_wrong_images"]  # a disagreement means somebody is wrong
    # What the ensemble fixes and breaks accounts exactly for the change in errors.
    assert g["ensemble_test_errors"] == g["single_test_errors"] - g["fixed_by_ensemble"] + g["broken_by_ensemble"]
    assert g["ensemble_test_accuracy"] == pytest.approx(1 - g["ensemble_test_errors"] / 10_000)
    assert g["ensemble_train_seconds"] == pytest.approx(g["members"] * g["member_share_seconds"]) and g["members"] > 1
    assert 1 <= g["kept_epoch"] <= 1  # the CI run trains one epoch
    assert g["member_epochs"] == 1 and g["single_epochs"] == training.default_config("mnist").epochs
    assert g["ensemble_images_per_second"] < g["single_images_per_second"]



def test_ensemble_exercise_solutions(chapter_runner):
    """The coding exercises' solutions (issue 15) run with the chapter and glue consistent answers."""
    _, g = chapter_runner("09_ensembles")
    # ex-09-2: soft voting recomputed with NumPy equals the chapter's; a geometric mean can only
    # decide differently where the members disagree.
    assert g["ex10_soft_val_by_hand"] == pytest.approx(g["soft_val"], abs=2e-4)  # within one of 5,000 images
    assert 0.0 <= g["ex10_geometric_val"] <= 1.0
    assert 0 <= g["ex10_geometric_soft_differ"] <= g["disagree_images"]
    # ex-09-3: hard and soft voting of two members differ only where the two disagree.
    assert 0 <= g["ex10_pair_hard_soft_differ"] <= g["ex10_pair_disagree"]
    if g["members"] == 2:
        assert g["ex10_pair_disagree"] == g["disagree_images"]

def test_stored_full_run():
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    meta = nb["metadata"].get("cnnbook", {})
    assert meta.get("parameters") == {}, "the stored chapter must hold a full run"
    g = book.read_glued(nb)
    assert g["members"] == parameter_defaults(nb)["members"] == training.ENSEMBLE_MEMBERS  # what the benchmark trains
    assert g["test_images"] == 10_000
    # The ensemble was chosen on validation; on test it must not be worse than its first member,
    # and it must be at least as good as the Part I bar.
    assert g["ensemble_test_accuracy"] >= g["single_test_accuracy"]
    assert g["ensemble_test_accuracy"] >= 0.993
    # The prose: with members this strong both votes lie within the members' range on validation...
    assert g["member_val_min"] <= g["soft_val"] <= g["member_val_max"]
    assert g["member_val_min"] <= g["hard_val"] <= g["member_val_max"]
    # ...and on test the ensemble is "not clearly different" from its first member, the accuracy coming
    # mostly from the members.
    assert g["ensemble_difference_verdict"] == "not clearly different"
    # The prose: the two voting rules are closer than the best and the worst single seed.
    assert abs(g["soft_val"] - g["hard_val"]) < g["member_val_max"] - g["member_val_min"]
    # Each member trains the ensemble recipe's epochs, more than the single model's (the prose says so).
    assert g["member_epochs"] == training.ensemble_config("mnist").epochs > g["single_epochs"]
    assert g["single_epochs"] == training.default_config("mnist").epochs
    assert g["member_width"] == training.ENSEMBLE_WIDTH
    assert 1 <= g["kept_epoch"] <= g["member_epochs"]
    # Issue 10: a Part III study within 20 min, float32, 2 CPU cores (the prose quotes the glued chapter_seconds).
    assert g["chapter_seconds"] <= 20 * 60  # a budget, not a minimum
    assert g["precision"] == "float32"  # the time a reader without bfloat16 units can expect


def test_stored_full_run_calls_the_difference_by_its_paired_test():
    """The prose's verdict on ensemble vs single model is McNemar's, computed from the chapter's own counts."""
    from scipy.stats import binomtest

    g = book.read_glued(json.loads(CHAPTER.read_text(encoding="utf-8")))
    fixed, broken = g["fixed_by_ensemble"], g["broken_by_ensemble"]
    assert g["single_test_errors"] - g["ensemble_test_errors"] == fixed - broken
    assert g["mcnemar_p"] == pytest.approx(binomtest(min(fixed, broken), fixed + broken).pvalue)
    expected = "a real difference" if g["mcnemar_p"] < 0.05 else "not clearly different"
    assert g["ensemble_difference_verdict"] == expected
