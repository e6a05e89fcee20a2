"""Chapters 1 and 2 (Part I foundations) executed with their CI parameters; assertions on glued values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbook import book

pytestmark = pytest.mark.notebook


def _stream_text(nb, marker: str) -> str:
    """The printed output of the first code cell whose source contains ``marker``."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return "".join(
                "".join(out.get("text", "")) for out in cell.get("outputs", []) if out["output_type"] == "stream"
            )
    raise AssertionError(f"no code cell contains {marker!r}")


def test_what_a_cnn_sees_chapter(chapter_runner):
    nb, g = chapter_runner("01_what_a_cnn_sees")
    assert g["check_images"] == 100  # the CI setting
    # From-scratch NumPy layers agree with TensorFlow on real digits.
    assert 0 <= g["conv_max_abs_diff"] < 1e-5
    assert g["pool_max_abs_diff"] == 0.0
    printed = _stream_text(nb, "tolerance = 1e-5")
    assert printed.count("same shape: True, max |NumPy − TF| < 1e-05: True") == 9
    assert "False" not in printed
    # Output sizes / parameter counts predicted by the formulas equal Keras' own.
    assert g["article_params"] == 122570  # the TensorFlow CNN tutorial's well-known count
    assert g["part1_params"] > 0
    assert _stream_text(nb, "crosscheck.formulas_against_keras(model)").count("all equal: True") == 2
    assert g["conv32_params"] == 3 * 3 * 32 + 32
    assert g["dense32_params"] == 784 * 32 + 32
    # Receptive field: formula and gradient measurement agree.
    assert "formula equals gradient measurement: True" in _stream_text(nb, "formula equals gradient")
    assert g["rf_final"] > 3
    # No wall-clock bar here: this is the CI run, timed under whatever load the test machine has.
    assert g["chapter_seconds"] > 0


MODELS = ["logistic regression", "random forest", "dense network", "CNN"]


def test_cnn_vs_traditional_chapter(chapter_runner):
    nb, g = chapter_runner("02_cnn_vs_traditional")
    # CI parameters: 2,000 training, 1,000 validation and 2,000 test images.
    assert (g["train_images"], g["validation_images"], g["test_images"]) == (2000, 1000, 2000)

    # The table: one complete row per model, every accuracy far above chance (10 %).
    results = g["results"]
    assert list(results) == MODELS
    for row in results.values():
        assert set(row) == {"test_accuracy", "shifted_accuracy", "parameters", "train_seconds"}
        assert 0.5 < row["test_accuracy"] <= 1
        assert 0 <= row["shifted_accuracy"] <= 1
        assert row["parameters"] > 0 and row["train_seconds"] > 0
    assert g["cnn_test_accuracy"] == results["CNN"]["test_accuracy"]
    assert g["lr_shifted_accuracy"] == results["logistic regression"]["shifted_accuracy"]
    assert results["logistic regression"]["parameters"] == 784 * 10 + 10
    assert results["CNN"]["parameters"] == 34826  # keras-io's Simple MNIST convnet

    # Accuracy against shift distance, on the validation split: unshifted = the plain validation accuracy.
    by_distance = g["accuracy_by_shift"]
    assert list(by_distance) == MODELS and all(len(v) == 5 for v in by_distance.values())

    # Learning curve: both models at every CI size (None = the whole 2,000-image split).
    curve = g["learning_curve"]
    assert set(curve) == {"random forest", "CNN"}
    for points in curve.values():
        assert sorted(points) == [250, 500, 1000, 2000]
        assert all(0.1 < p["val_accuracy"] <= 1 and p["train_seconds"] > 0 for p in points.values())
    assert by_distance["CNN"][0] == curve["CNN"][2000]["val_accuracy"]
    assert by_distance["random forest"][0] == curve["random forest"][2000]["val_accuracy"]

    # Depth experiment: every depth trained with the CI's 2 seeds; the two-stage network's first seed is the
    # learning curve's run at the same size.
    depth = g["depth"]
    assert sorted(depth) == [1, 2, 3]
    assert depth[2]["parameters"] == 34826
    assert g["depth_seeds"] == 2 and g["depth_images"] == 1000
    for stages, row in depth.items():
        assert len(row["val_accuracies"]) == 2 and all(0.1 < a <= 1 for a in row["val_accuracies"])
        assert row["min"] <= row["mean"] <= row["max"]
        assert row["spread_points"] == pytest.approx(100 * (row["max"] - row["min"])) and row["spread_points"] >= 0
        assert g[f"depth_{stages}_mean"] == row["mean"] and g[f"depth_{stages}_spread"] == row["spread_points"]
    assert depth[2]["val_accuracies"][0] == curve["CNN"][1000]["val_accuracy"]

    # The verdicts follow the rules stated beside them.
    verdicts = ("holds", "partly holds", "does not hold")
    for name in ("representation", "accuracy", "scalability"):
        assert g[f"verdict_{name}"] in verdicts
    for fewer, more in ((1, 2), (2, 3)):
        diff = 100 * (depth[more]["mean"] - depth[fewer]["mean"])
        noise = max(depth[fewer]["spread_points"], depth[more]["spread_points"])
        assert g[f"depth_diff_{fewer}{more}"] == pytest.approx(diff)
        expected = ("raised accuracy" if diff > noise else "lowered accuracy" if diff < -noise
                    else "no measurable difference")
        assert g[f"depth_step_{fewer}{more}"] == expected
    raised = [g[f"depth_step_{s}"] for s in ("12", "23")].count("raised accuracy")
    assert g["verdict_scalability"] == verdicts[2 - raised]
    best = max(results, key=lambda name: results[name]["test_accuracy"])
    assert g["best_test_model"] == best
    if best != "CNN":
        assert g["verdict_representation"] == g["verdict_accuracy"] == "does not hold"
    assert g["runner_up_model"] != best and 0 <= g["best_vs_runner_up_p"] <= 1
    if g["verdict_representation"] == "holds":
        assert best == "CNN" and g["best_vs_runner_up_p"] < 0.05
    assert g["verdict_accuracy"] != "holds" or results["CNN"]["shifted_accuracy"] >= g["shift_bar"]
    assert g["claims"] == {"representational_power": g["verdict_representation"] == "holds",
                           "accuracy": g["verdict_accuracy"], "scalability": g["verdict_scalability"]}
    for k, name in (("lr", "logistic regression"), ("rf", "random forest"), ("cnn", "CNN")):
        test_accuracy = results[name]["test_accuracy"]
        assert g[f"{k}_published_gap"] == pytest.approx(100 * (test_accuracy - g[f"{k}_published_accuracy"]))
        assert g[f"{k}_shift_drop"] == pytest.approx(100 * (test_accuracy - results[name]["shifted_accuracy"]))
    assert g["cnn_shift1_accuracy"] == by_distance["CNN"][1]
    assert g["lr_shift4_accuracy"] == by_distance["logistic regression"][4]
    assert g["most_robust_model"] == max(by_distance, key=lambda name: by_distance[name][-1])
    # No wall-clock bar here: this is the CI run, timed under whatever load the test machine has.
    assert g["chapter_seconds"] > 0


def test_what_a_cnn_sees_exercise_solutions(chapter_runner):
    """The coding exercises' solutions (issue 15) run with the chapter and glue the right answers."""
    _, g = chapter_runner("01_what_a_cnn_sees")
    # ex-01-3: two stacked 3×3 convolutions see as much as one 5×5, with fewer parameters (64 → 64 channels).
    assert g["ex01_rf_two_3x3"] == g["ex01_rf_one_5x5"] == 5
    assert g["ex01_params_two_3x3"] == g["ex01_keras_params_two_3x3"] == 2 * (3 * 3 * 64 * 64 + 64)
    assert g["ex01_params_one_5x5"] == g["ex01_keras_params_one_5x5"] == 5 * 5 * 64 * 64 + 64
    # ex-01-4: stride 2 is every second value of stride 1 — shifted by one pixel with "same" padding.
    assert g["ex01_stride_valid_diff"] == 0.0
    assert g["ex01_stride_same_odd_diff"] == 0.0


def test_cnn_vs_traditional_exercise_solution(chapter_runner):
    """ex-02-3: shifted copies in the training data make the logistic regression more robust to shifts."""
    _, g = chapter_runner("02_cnn_vs_traditional")
    for name in ("plain", "augmented"):
        assert 0.1 < g[f"ex02_lr_{name}_val"] <= 1
        assert 0 <= g[f"ex02_lr_{name}_shifted_val"] <= 1
    assert g["ex02_lr_augmented_shifted_val"] > g["ex02_lr_plain_shifted_val"]


def test_stored_cnn_vs_traditional_run():
    """The stored full run: the depth experiment has ≥ 3 seeds per depth and its verdict follows the rule."""
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "02_cnn_vs_traditional.ipynb").read_text())
    assert nb["metadata"]["cnnbook"].get("parameters") == {}, "chapter 2 holds no full run"
    g = book.read_glued(nb)
    assert g["train_images"] == 55000 and g["test_images"] == 10000
    assert g["depth_seeds"] >= 3 and g["depth_images"] == 5000
    depth = g["depth"]
    assert all(len(row["val_accuracies"]) == g["depth_seeds"] and row["spread_points"] >= 0 for row in depth.values())
    raised = [g[f"depth_step_{s}"] for s in ("12", "23")].count("raised accuracy")
    assert g["verdict_scalability"] == ("holds", "partly holds", "does not hold")[2 - raised]
    assert g["results"]["CNN"]["test_accuracy"] >= 0.985  # keras-io's convnet, 4 epochs on the full split
    assert g["chapter_seconds"] <= 5 * 60  # the full run's promise, on 2 CPU cores
