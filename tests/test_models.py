"""Model builders: shapes, parameter counts, logits out, helpful errors."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import models  # noqa: E402


@pytest.mark.parametrize(
    "builder, shape, params",
    [
        # 3·3·1·16 + 3·3·16·32 + 3·3·32·64 (no biases) + 4·(16 + 32 + 64) (BN) + 3·3·64·10 + 10
        (models.mnist_cnn, (28, 28, 1), 29402),
        (models.mnist_cnn_sequential, (28, 28, 1), 29402),
        (models.keras_io_convnet, (28, 28, 1), 34826),  # as published on keras.io
        (models.article_cnn, (32, 32, 3), 122570),  # TensorFlow's CNN tutorial, as published
        (models.article_cnn, (28, 28, 1), 93322),
    ],
)
def test_parameter_counts(builder, shape, params):
    model = builder(input_shape=shape, num_classes=10)
    assert model.count_params() == params
    assert model.output_shape == (None, 10)


def test_outputs_are_logits_not_probabilities():
    model = models.mnist_cnn()
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    logits = np.asarray(model(x))
    assert model.get_layer("logits").activation is keras.activations.linear
    assert (logits < 0).any(), "logits are unbounded scores; probabilities would all be >= 0"
    probs = np.asarray(models.with_softmax(model)(x))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), logits.argmax(axis=1))


@pytest.mark.parametrize("builder", [models.article_cnn, models.mnist_cnn])
def test_with_softmax_works_for_sequential_and_functional_models(builder, recwarn):
    model = builder(input_shape=(28, 28, 1))
    probs = np.asarray(models.with_softmax(model)(np.zeros((2, 28, 28, 1), dtype=np.float32)))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert not [w for w in recwarn if "structure" in str(w.message)]


def test_functional_and_sequential_twins_compute_the_same_function():
    functional, sequential = models.mnist_cnn(), models.mnist_cnn_sequential()
    rng = np.random.default_rng(1)
    # Random weights everywhere, batch-norm statistics included, so no layer is an identity by accident.
    sequential.set_weights([rng.random(w.shape, dtype=np.float32) + 0.5 for w in functional.get_weights()])
    functional.set_weights(sequential.get_weights())
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(functional(x), sequential(x), rtol=1e-5)


def test_mnist_cnn_stages_shrink_the_image_and_grow_the_channels():
    model = models.mnist_cnn()
    shapes = [model.get_layer(f"stage{i}_relu").output.shape[1:] for i in (1, 2, 3)]
    assert shapes == [(14, 14, 16), (7, 7, 32), (3, 3, 64)]


def test_mlp_has_no_convolution():
    model = models.mlp((28, 28, 1), 10, hidden=(32,))
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
    assert model.count_params() == 784 * 32 + 32 + 32 * 10 + 10


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1, 1), (0, 28, 1)])
def test_bad_input_shape_is_refused(shape):
    with pytest.raises(ValueError, match="input_shape"):
        models.mnist_cnn(input_shape=shape)


def test_too_few_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        models.keras_io_convnet(num_classes=1)


def test_mnist_cnn_computes_in_the_dtype_asked_with_float32_logits():
    model = models.mnist_cnn(dtype="mixed_bfloat16")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32" for layer in convs)
    assert model.get_layer("logits").compute_dtype == "float32"
    logits = model(np.zeros((2, 28, 28, 1), dtype=np.float32))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert model.count_params() == models.mnist_cnn().count_params()
    with pytest.raises(ValueError, match="dtype policy"):
        models.mnist_cnn(dtype="float8")


@pytest.mark.parametrize("bad", [{"rotation": -1.0}, {"rotation": 180.0}, {"zoom": 1.0}, {"translation": -0.1},
                                 {"rotation": 0.0, "zoom": 0.0, "translation": 0.0}])
def test_digit_augmentation_refuses_out_of_range_settings(bad):
    with pytest.raises(ValueError, match="rotation|zoom|translation"):
        models.digit_augmentation(**bad)


def test_digit_augmentation_keeps_only_what_is_asked_and_never_mirrors():
    assert [layer.name for layer in models.digit_augmentation(seed=0).layers] == ["rotate", "zoom", "translate"]
    assert [layer.name for layer in models.digit_augmentation(seed=0, zoom=0.0).layers] == ["rotate", "translate"]
    rotate = models.digit_augmentation(seed=0, translation=0.0).layers[0]
    assert rotate.fill_mode == "constant" and rotate.factor == pytest.approx((-10 / 360, 10 / 360))
