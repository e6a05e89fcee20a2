"""Chapter 10 (improving the CNN), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnbook import study
import bookbuild
from conftest import stored_full_run

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "10_improving.ipynb"
CLAIMS = ("depth", "data", "width", "epochs")
LEVERS = ("batch_norm", "dropout", "augmentation", "schedule")
VERDICTS = {"holds", "partly holds", "does not hold"}
EFFECTS = {"better", "worse", "no measurable difference"}

pytestmark = pytest.mark.notebook


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {
        "seeds": 2, "base_fraction": 0.02, "base_epochs": 1, "depths": [2, 3], "widths": [0.5, 1.0],
        "fractions": [0.01, 0.02], "epoch_levels": [1, 2], "validation_size": 1000, "test_size": 2000,
        "full_train_size": 2000, "full_budget_epochs": 1}


def _check_consistent(g: dict) -> None:
    """What must hold in any run, CI or full."""
    assert g["precision"] in ("float32", "bfloat16")
    assert g["trainings"] == g["configurations"] * g["seeds"]
    for key, value in g.items():
        if key.endswith(("accuracy", "_low", "_high")) and isinstance(value, float):
            assert 0.0 <= value <= 1.0, key
    assert 0.0 <= g["baseline_spread"] < 1.0
    for factor in CLAIMS:
        verdict = g[f"{factor}_verdict"]
        assert verdict in VERDICTS
        if verdict == "holds":
            # The largest level beats the smallest by more than the baseline's seed spread at least.
            assert g[f"{factor}_high"] - g[f"{factor}_low"] > 0
        if verdict == "does not hold":
            # No level beats the smallest measurably, so the gains stop at once.
            assert g[f"{factor}_saturation"] == g[f"{factor}_low_level"]
        assert g[f"{factor}_time_ratio"] > 0
        assert g[f"{factor}_gain"] == pytest.approx(g[f"{factor}_high"] - g[f"{factor}_low"])
    for lever in LEVERS:
        effect = g[f"{lever}_effect"]
        assert effect in EFFECTS
        if effect == "better":
            assert g[f"{lever}_accuracy"] > g["baseline_accuracy"]
        if effect == "worse":
            assert g[f"{lever}_accuracy"] < g["baseline_accuracy"]
    assert g["batch_norm_level"] == "off" and g["dropout_level"] == "off" and g["augmentation_level"] == "on"
    assert (g["better_count"] == 0) == (g["best_buy"] == "none")
    if g["better_count"]:
        assert g["best_buy_gain"] > 0
    # The validation split chooses; the test set is measured for that recipe only.
    assert g["final_recipe"] in ("the combination", "the baseline")
    assert (g["final_recipe"] == "the combination") == (g["combination_effect"] == "better than")
    if g["combination"] == "as the baseline":
        assert g["combination_effect"] == "the same as"
    expected = g["combination_accuracy"] if g["final_recipe"] == "the combination" else g["baseline_accuracy"]
    assert g["final_accuracy"] == pytest.approx(expected)
    assert g["test_low"] <= g["test_accuracy"] <= g["test_high"]
    if not g["combination_trained_again"]:  # reused runs of a configuration of the study
        assert g["combination"].count(":") <= 1
    # Exercises.
    assert g["ex10_momentum_effect"] in EFFECTS
    assert g["ex10_momentum_memory"] == pytest.approx(0.99 ** g["ex10_momentum_steps"])
    assert g["ex10_compared"] == g["configurations"] - 1 and 0 <= g["ex10_agree"] <= g["ex10_compared"]
    # The full-budget comparison: the larger network is adopted only when McNemar's test on the
    # validation split calls it better, and the test set then measures the chosen model.
    assert g["wide_parameters"] > g["part1_parameters"]
    assert g["full_only_wide"] + g["full_only_part1"] <= g["full_validation_images"]
    significant = g["full_difference"] == "a measurable difference"
    assert significant == (g["full_p_value"] < 0.05)
    adopted = g["full_choice"] == "chapter 8's network"
    assert adopted == (significant and g["full_only_wide"] > g["full_only_part1"])
    assert adopted or g["full_choice"] == "chapter 7's Part I model"
    for who in ("part1", "wide"):
        assert g[f"{who}_views"] in ("plain", "flip", "flip_shift")
        assert g[f"{who}_val_accuracy"] >= g[f"{who}_val_plain"]  # views chosen on validation, plain among them
    assert g["full_test_low"] <= g["full_test_accuracy"] <= g["full_test_high"]
    if not adopted:
        assert g["full_test_accuracy"] == pytest.approx(g["part1_test_accuracy"])


def test_improving_chapter_values(chapter_runner):
    _, g = chapter_runner("10_improving")
    assert g["seeds"] == 2 and g["configurations"] == 9
    assert g["validation_images"] == 1000 and g["test_images"] == 2000
    assert g["full_train_images"] == 2000 and g["wide_epochs"] == 1
    _check_consistent(g)


def test_stored_full_run():
    g, defaults = stored_full_run(CHAPTER)
    assert g["seeds"] == defaults["seeds"] >= 3, "the issue asks for at least three seeds"
    base = study.Variant(epochs=defaults["base_epochs"], train_fraction=defaults["base_fraction"])
    variants = study.one_factor_variants(base, depths=defaults["depths"], widths=defaults["widths"],
                                         fractions=defaults["fractions"], epochs=defaults["epoch_levels"])
    assert g["configurations"] == len(variants)
    assert g["test_images"] == 10_000 and g["validation_images"] == defaults["validation_size"]
    _check_consistent(g)
    assert g["chapter_seconds"] <= 20 * 60
    # What the prose says in words.
    assert all(g[f"{factor}_verdict"] == "holds" for factor in CLAIMS)  # "all four claims hold"
    assert g["data_gain"] > max(g["depth_gain"], g["width_gain"], g["epochs_gain"])  # "the strongest lever"
    assert g["best_buy"].endswith("of the training split")  # "the best buy ... more data"
    assert g["depth_saturation_value"] <= base.depth and g["epochs_saturation_value"] <= base.epochs
    assert g["width_saturation_value"] == max(defaults["widths"])  # "width keeps paying up to ×2"
    assert g["batch_norm_effect"] == "worse" and g["schedule_effect"] == "worse"
    assert g["dropout_effect"] == "no measurable difference" and g["augmentation_effect"] == "worse"
    # The full budget: all the training images, the recipes' own epochs.
    assert g["full_train_images"] == 55_000 and g["full_validation_images"] == 5_000 and g["full_test_images"] == 10_000
    assert g["wide_epochs"] == 12
    assert g["combination"].startswith("width")  # "its combination was a wider network"
    # "only the larger network is right on ...": the prose names it first because it wins here.
    assert g["full_choice"] == "chapter 8's network" and g["full_test_accuracy"] > g["part1_test_accuracy"]
