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
