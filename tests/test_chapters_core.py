"""Chapters 3, 4, 5 and 7 executed with their CI parameters; assertions on the values they glue."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.notebook


def test_data_chapter(chapter_runner):
    _, g = chapter_runner("03_data")
    assert g["n_train_files"] == 60000 and g["n_test_files"] == 10000
    assert g["image_side"] == 28
    # CI parameters: 2000 training images, 5000 validation, the full test set.
    assert g["train_split_size"] == 2000
    assert g["validation_size"] == 5000
    assert g["test_split_size"] == 10000
    assert g["rarest_class"] == "5" and g["commonest_class"] == "1"
    assert g["max_share_gap"] < 0.005  # stratified
    assert 0.75 < g["zero_share"] < 0.85
    assert g["batches_per_epoch"] == math.ceil(2000 / 128)
    # ex-03-2 (issue 15): a plain random split drifts in class shares, the stratified one hardly does.
    assert 0 < g["ex03_stratified_share_gap"] < 0.001
    assert g["ex03_random_share_gap"] > g["ex03_stratified_share_gap"]


def test_building_chapter(chapter_runner):
    _, g = chapter_runner("04_building")
    assert g["article_params"] == 93322
    assert g["part1_params"] > 0
    # The article's softmax + from_logits=True is rescued by Keras' graph inspection ...
    assert g["graph_bug_same"] == "yes"
    assert g["graph_bug_val_accuracy"] == pytest.approx(g["logits_val_accuracy"], abs=1e-6)
    # ... but a softmax Keras cannot see trains on doubly-softmaxed outputs: its loss stays high.
    assert g["eager_bug_val_loss"] > g["logits_val_loss"]



def test_building_exercise_solutions(chapter_runner):
    """The coding exercises' solutions (issue 15) run with the chapter and glue the right answers."""
    _, g = chapter_runner("04_building")
    # ex-04-2: the article's network on 32×32×3 images, by Keras and by the formulas.
    assert g["ex04_cifar_params"] == g["ex04_cifar_formula_params"] == 122_570
    # ex-04-3: a global-pooling head keeps only the convolutions and a Dense(10) on 64 numbers ...
    assert g["ex04_gap_params"] == 320 + 18_496 + 36_928 + 650
    assert g["ex04_gap_share"] == pytest.approx(g["ex04_gap_params"] / g["article_params"])
    # ... and classifies images of any size.
    assert g["ex04_gap_output_shapes"] == [[2, 10], [2, 10]]

def test_training_chapter(chapter_runner):
    nb, g = chapter_runner("05_training")
    # CI: 2000 images, one epoch; still far above chance (10 %).
    assert g["test_accuracy"] > 0.5
    assert g["test_images"] == 10000
    assert g["test_errors"] == round((1 - g["test_accuracy"]) * 10000)
    assert g["epochs_run"] == 1
    assert g["resumed_epochs_run"] == 1  # two of three epochs were restored from the backup
    assert 0 < g["best_val_accuracy"] <= 1
    assert g["dtype"] in ("float32", "mixed_bfloat16") and g["bfloat16_speedup"] > 0



def test_training_exercise_solution(chapter_runner):
    """ex-05-3 (issue 15): the repaired training listing runs, with the Keras 3 spelling, and learns."""
    _, g = chapter_runner("05_training")
    assert g["ex05_fixed_learning_rate"] == pytest.approx(0.001)
    assert g["ex05_fixed_from_logits"] is True
    assert g["ex05_fixed_val_accuracy"] > 0.2  # chance is 0.1 on 2,000 validation images

def test_beyond_digits_chapter(chapter_runner):
    _, g = chapter_runner("07_beyond_digits")
    assert g["test_accuracy"] > 0.4
    assert g["test_images"] == 10000
    assert g["top_confusion_count"] > 0
    assert g["hardest_class"] in {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    }
    # The train/validation gap, from the history of the one CI epoch.
    assert g["final_gap"] == pytest.approx(100 * (g["final_train_accuracy"] - g["final_val_accuracy"]))
    assert g["min_val_loss"] <= g["final_val_loss"] and 1 <= g["min_val_loss_epoch"] <= g["epochs_run"]
    # The schedule comparison on the validation split: both runs with their CI epochs, paired by McNemar.
    assert g["recipe_epochs"] == g["shorter_epochs"] == 1
    assert 0.1 < g["shorter_best_val_accuracy"] <= 1 and g["shorter_training_seconds"] > 0
    assert g["schedule_val_gap"] == pytest.approx(100 * (g["best_val_accuracy"] - g["shorter_best_val_accuracy"]))
    assert 0 <= g["schedule_p_value"] <= 1 and g["schedule_only_recipe"] >= 0 and g["schedule_only_shorter"] >= 0
    # The paired counts explain the accuracy difference: each one-sided right answer is one image of 5,000.
    assert (g["schedule_only_recipe"] - g["schedule_only_shorter"]) / g["validation_images"] == pytest.approx(
        g["schedule_val_gap"] / 100, abs=1e-6)
    assert g["schedule_difference"] == (
        "a measurable difference" if g["schedule_p_value"] < 0.05 else "no measurable difference")



def test_beyond_digits_exercise_solutions(chapter_runner):
    """The coding exercises' solutions (issue 15) run with the chapter and glue the right answers."""
    _, g = chapter_runner("07_beyond_digits")
    # ex-07-1: precision and recall of "Shirt" from the confusion matrix equal the report's.
    assert g["ex07_shirt_precision"] == pytest.approx(g["ex07_shirt_precision_report"])
    assert g["ex07_shirt_recall"] == pytest.approx(g["ex07_shirt_recall_report"])
    # ex-07-2: top-1 is the chapter's test accuracy, and top-2 can only be higher.
    assert g["ex07_top1_accuracy"] == pytest.approx(g["test_accuracy"])
    assert g["ex07_top1_accuracy"] <= g["ex07_top2_accuracy"] <= 1.0

# --- The stored full runs (what readers see) meet the book's bars -----------------

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from cnnbook import book  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _stored(stem: str) -> dict:
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    assert nb["metadata"]["cnnbook"].get("parameters") == {}, f"{stem} holds no full run"
    return book.read_glued(nb)


def test_stored_training_run_meets_the_part1_bar():
    g = _stored("05_training")
    assert g["test_images"] == 10000
    assert g["epochs_run"] >= 1 and g["resumed_epochs_run"] == 1
    assert g["test_accuracy"] >= 0.993
    assert g["chapter_minutes"] <= 5.0  # measured on 2 CPU cores, recorded in the chapter
    assert g["cpu_cores"] == 2


def test_stored_fashion_run_meets_its_bar():
    g = _stored("07_beyond_digits")
    assert g["test_images"] == 10000
    # Issue 5's bar was 92.5 % test with the former 75k-parameter Part I model (92.74 %). The fast
    # 29k-parameter model that replaced it (1.9 M multiply-adds per image against 9.7 M, issue 10) scores about
    # 0.35 points lower on Fashion-MNIST (92.80 % validation, 92.37 % test, float32): a regression
    # guard, not the bar; issue 10's Fashion-MNIST bar (93.5 %) is still open.
    assert g["test_accuracy"] >= 0.92
    assert g["best_val_accuracy"] >= 0.925
    assert g["chapter_seconds"] <= 5 * 60  # the full run's promise, on 2 CPU cores


def test_stored_fashion_run_shows_why_its_epochs():
    """The 20 epochs against MNIST's 12, on the validation split, and the train/validation gap (full run)."""
    g = _stored("07_beyond_digits")
    assert (g["recipe_epochs"], g["shorter_epochs"]) == (20, 12) and g["epochs_run"] == 20
    assert g["schedule_val_gap"] == pytest.approx(100 * (g["best_val_accuracy"] - g["shorter_best_val_accuracy"]))
    assert g["schedule_difference"] == (
        "a measurable difference" if g["schedule_p_value"] < 0.05 else "no measurable difference")
    assert g["final_gap"] > 0  # the network fits its training images better than new ones
    assert g["precision"] == "float32"


def test_stored_fashion_run_measures_how_much_harder_it_is():
    """'N times as many errors as on digits' is glued from both test accuracies, not typed."""
    g = _stored("07_beyond_digits")
    assert g["error_ratio"] == pytest.approx((1 - g["test_accuracy"]) / (1 - g["mnist_test_accuracy"]))
    assert g["error_ratio"] > 2
    # The same cached Part I model as the training chapter's stored run.
    assert g["mnist_test_accuracy"] == pytest.approx(_stored("05_training")["test_accuracy"], abs=1e-6)
