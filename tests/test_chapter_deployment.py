"""Chapter 13 (deployment), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbook import book, models
import bookbuild

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "13_deployment.ipynb"
VARIANTS = ("float32", "float16", "dynamic", "int8")

pytestmark = pytest.mark.notebook


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {"train_size": 2000, "epochs": 1, "test_size": 1000, "latency_repeats": 50, "cli_train_size": 600,
                                           "dist_train_size": 1024, "dist_epochs": 1, "single_seeds": 1, "seed": 0,
                                           "cifar_train_size": 500, "cifar_epochs": 1, "cifar_test_size": 200}


def _check(g):
    assert g["precision"] == "float32"
    assert g["lambda_refused"] is True
    assert g["saved_model_max_diff"] < 1e-4  # the SavedModel computes what Keras computes
    assert g["interpreter"] in ("ai-edge-litert", "tf.lite")
    sizes = [g[f"tflite_{v}_kib"] for v in VARIANTS]
    assert sizes[1] < sizes[0] and sizes[2] < sizes[1] and sizes[3] < sizes[0] / 2.5
    assert g["tflite_float32_agreement"] >= 0.999
    assert g["tflite_float32_test_accuracy"] == pytest.approx(g["keras_test_accuracy"], abs=1.5 / g["test_images"])
    for v in VARIANTS:
        assert g[f"tflite_{v}_agreement"] >= 0.97, v
        assert abs(g[f"tflite_{v}_test_accuracy"] - g["keras_test_accuracy"]) <= 0.03, v
        assert g[f"tflite_{v}_latency_us"] > 0 and g[f"tflite_{v}_images_per_second"] > 0
    assert g["int8_disagreements"] == round((1 - g["tflite_int8_agreement"]) * g["test_images"])
    assert g["cli_train_status"] == 0
    assert g["workers_identical"] is True
    for key in ("single", "mirrored", "workers"):
        assert 0.0 <= g[f"dist_{key}_test_accuracy"] <= 1.0
        assert 0 < g[f"dist_{key}_train_seconds"] < g[f"dist_{key}_wall_seconds"]
    # The mirrored run and the two workers do the same arithmetic on the same global batches.
    assert g["dist_mirrored_test_accuracy"] == pytest.approx(g["dist_workers_test_accuracy"], abs=0.01)
    assert 0 <= g["ex13_int8_10_disagreements"] <= g["test_images"]
    # The colour model: the same four conversions.
    assert g["cifar_trained_precision"] in ("float32", "bfloat16")
    if g["cifar_trained_precision"] == "float32":
        assert g["cifar_copy_agreement"] == 1.0  # no copy needed: the model itself
    # Chapter 8's colour model (the default width) and the Part I model, counted exactly; the prose says "larger".
    assert g["cifar_params"] == models.cifar_cnn().count_params()
    assert g["part1_params"] == models.mnist_cnn().count_params()
    assert g["cifar_params"] > g["part1_params"]
    cifar_sizes = [g[f"cifar_tflite_{v}_kib"] for v in VARIANTS]
    assert cifar_sizes[1] < cifar_sizes[0] and cifar_sizes[3] < cifar_sizes[0] / 3
    assert g["cifar_tflite_float32_agreement"] >= 0.99
    assert g["cifar_int8_disagreements"] == round((1 - g["cifar_tflite_int8_agreement"]) * g["cifar_test_images"])
    for v in VARIANTS:
        assert 0.0 <= g[f"cifar_tflite_{v}_test_accuracy"] <= 1.0 and g[f"cifar_tflite_{v}_latency_us"] > 0


def test_deployment_chapter_values(chapter_runner):
    _, g = chapter_runner("13_deployment")
    assert g["test_images"] == 1000 and g["dist_train_images"] == 1024
    _check(g)


def test_stored_full_run():
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    assert nb["metadata"].get("cnnbook", {}).get("parameters") == {}, "the stored chapter must hold a full run"
    g = book.read_glued(nb)
    assert g["test_images"] == 10_000
    _check(g)
    assert g["keras_test_accuracy"] >= 0.99  # the Part I model
    # Full-integer int8 stays within the test set's sampling error of the Keras model.
    assert abs(g["tflite_int8_test_accuracy"] - g["keras_test_accuracy"]) <= 0.002
    # The colour model is chapter 8's full run, measured on the whole test split.
    assert g["cifar_from_chapter8"] is True and g["cifar_test_images"] == 10_000
    assert g["cifar_keras_test_accuracy"] >= 0.85 and g["cifar_copy_agreement"] >= 0.99
    assert g["cifar_tflite_float32_agreement"] >= 0.999
    assert abs(g["cifar_tflite_int8_test_accuracy"] - g["cifar_keras_test_accuracy"]) <= 0.02
