"""cnnbook.export: the four TensorFlow Lite variants of a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from cnnbook import export


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
    rng = np.random.default_rng(0)
    return model, rng.random((64, 28, 28, 1), dtype=np.float32), rng.random((32, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def converted(tiny):
    model, calibration, _ = tiny
    return {v: export.to_tflite(model, v, representative=calibration) for v in export.VARIANTS}


def test_float32_agrees_with_keras(tiny, converted):
    model, _, x = tiny
    lite = export.LiteModel(converted["float32"])
    np.testing.assert_allclose(lite.predict(x, batch_size=7), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert lite.input_dtype == np.float32


def test_quantised_variants_shrink_and_stay_close(tiny, converted):
    model, _, x = tiny
    sizes = {v: len(c) for v, c in converted.items()}
    assert sizes["float16"] < sizes["float32"] and sizes["dynamic"] < sizes["float16"]
    assert sizes["int8"] < sizes["float32"] / 2
    keras_out = model.predict(x, verbose=0)
    spread = float(np.abs(keras_out).max())
    for variant in ("float16", "dynamic", "int8"):
        out = export.LiteModel(converted[variant]).predict(x)
        assert np.abs(out - keras_out).max() < 0.1 * spread, variant


def test_full_integer_has_int8_input_and_output(converted):
    lite = export.LiteModel(converted["int8"])
    assert lite.input_dtype == np.int8 and lite.output_dtype == np.int8
    assert export.LiteModel(converted["dynamic"]).input_dtype == np.float32


def test_latency_and_compare(tiny):
    model, calibration, x = tiny
    y = model.predict(x, verbose=0).argmax(axis=1)
    rows, files = export.compare_variants(model, x, y, calibration, variants=("float32", "int8"), latency_repeats=5)
    assert [r.variant for r in rows] == ["float32", "int8"] and set(files) == {"float32", "int8"}
    assert rows[0].agreement == 1.0 and rows[0].accuracy == 1.0  # labels are the Keras model's own answers
    assert all(r.latency_s > 0 and r.images_per_second > 0 for r in rows)
    assert export.interpreter_backend() in ("ai-edge-litert", "tf.lite")


def test_bad_arguments(tiny):
    model = tiny[0]
    with pytest.raises(ValueError, match="variant"):
        export.to_tflite(model, "int4")
    with pytest.raises(ValueError, match="representative"):
        export.to_tflite(model, "int8")


def test_float32_copy_of_a_bfloat16_model_computes_in_float32_with_the_same_weights():
    import keras

    from cnnbook import models

    normalizer = keras.layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.06, 0.05, 0.07])
    trained = models.cifar_cnn(width=8, normalizer=normalizer, dtype="mixed_bfloat16")
    copy = export.float32_copy(trained)
    assert copy is not trained
    assert {layer.dtype_policy.compute_dtype for layer in copy.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), trained.get_weights()))
    x = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32)
    # bfloat16 keeps 8 bits of mantissa: the logits differ a little, not more.
    assert np.abs(copy.predict(x, verbose=0) - trained.predict(x, verbose=0)).max() < 0.1
    assert export.to_tflite(copy, "float32")  # TFLite converts the copy
    float32_model = models.mnist_cnn()
    assert export.float32_copy(float32_model) is float32_model
