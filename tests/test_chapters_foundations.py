"""Chapters 1 and 2 (Part I foundations) executed with their CI parameters; assertions on glued values."""

from __future__ import annotations

import pytest

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
    assert _stream_text(nb, "compare_with_keras(article)").count("all equal: True") == 2
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

    # Depth experiment and the generated verdicts on the article's claims.
    assert sorted(g["depth"]) == [1, 2, 3]
    assert g["depth"][2]["parameters"] == 34826
    assert set(g["claims"]) == {"representational_power", "accuracy", "scalability"}
    assert isinstance(g["claims"]["representational_power"], bool)
    assert all(f"{k}_published_gap" in g for k in ("lr", "rf", "cnn"))
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
