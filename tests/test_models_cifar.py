"""Tests of the CIFAR-10 builders in :mod:`cnnbook.models`: ``cifar_cnn``,
``augmentation`` and ``FusedBatchNormalization``.

Small, deterministic and CPU-only: the model is built, called, trained for a
step on a few random images, saved and loaded; the fused batch normalisation
is checked against Keras' own layer, number by number.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import models  # noqa: E402


def _conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


# --- cifar_cnn ---------------------------------------------------------------------


def test_cifar_cnn_shapes_logits_and_parameter_count():
    model = models.cifar_cnn()
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.linear  # logits, no softmax
    # Parameter count from the architecture's formula: 3x3 convolutions without bias,
    # 4 BN numbers per channel (gamma, beta, moving mean and variance), one Dense layer.
    widths = [(3, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
    expected = sum(9 * c_in * c_out + 4 * c_out for c_in, c_out in widths) + 128 * 10 + 10
    assert model.count_params() == expected
    assert len(_conv_layers(model)) == 7
    assert all(not conv.use_bias for conv in _conv_layers(model))


def test_cifar_cnn_width_scales_channels_and_pooling_reaches_4x4():
    model = models.cifar_cnn(width=16, dropout=0.0)
    assert [conv.filters for conv in _conv_layers(model)] == [8, 16, 16, 32, 32, 64, 64]
    assert model.get_layer("stage3b_relu").output.shape[1:] == (4, 4, 64)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert isinstance(models.cifar_cnn(width=16, dropout=0.3).get_layer("dropout"), keras.layers.Dropout)


def test_cifar_cnn_other_input_shapes_and_classes():
    model = models.cifar_cnn(input_shape=(28, 28, 1), num_classes=7, width=8)
    out = model(np.zeros((2, 28, 28, 1), "float32"))
    assert out.shape == (2, 7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (32, 32)}, "height, width, channels"),
        ({"input_shape": (4, 4, 3)}, "at least 8"),
        ({"num_classes": 1}, "num_classes"),
        ({"width": 1}, "width"),
        ({"dropout": 1.0}, "dropout"),
        ({"global_pooling": "mean"}, "global_pooling"),
        ({"dtype": "float13"}, "dtype policy"),
    ],
)
def test_cifar_cnn_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.cifar_cnn(**kwargs)


def test_cifar_cnn_normalizer_goes_inside_the_model():
    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 3), dtype=np.float32) * np.array([0.5, 1.0, 0.2], np.float32)
    normalizer = keras.layers.Normalization(name="normalize")
    normalizer.adapt(x)
    model = models.cifar_cnn(width=8, normalizer=normalizer)
    assert model.layers[1] is normalizer
    np.testing.assert_allclose(np.ravel(normalizer.mean), x.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(normalizer.variance), x.var(axis=(0, 1, 2)), rtol=1e-3)


def test_channel_normalizer_standardises_each_channel_and_survives_saving(tmp_path):
    mean, std = [0.5, 0.25, 0.1], [0.2, 0.5, 0.05]
    layer = models.channel_normalizer(mean, std)
    x = np.array(mean, np.float32) + np.array(std, np.float32) * np.array([[[[1.0, -2.0, 3.0]]]], np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), [[[[1.0, -2.0, 3.0]]]], rtol=1e-5)
    model = models.cifar_cnn(width=8, normalizer=layer)
    assert model.layers[1] is layer and layer.name == "normalize"
    model.save(tmp_path / "normalized.keras")
    reloaded = keras.models.load_model(tmp_path / "normalized.keras")
    np.testing.assert_allclose(np.ravel(reloaded.get_layer("normalize").variance), np.square(std), rtol=1e-6)


@pytest.mark.parametrize(
    "mean, std, match",
    [([0.5, 0.5], [0.2], "one value per channel"), ([], [], "one value per channel"), ([0.5], [0.0], "positive")],
)
def test_channel_normalizer_refuses_mismatched_or_degenerate_statistics(mean, std, match):
    with pytest.raises(ValueError, match=match):
        models.channel_normalizer(mean, std)


def test_cifar_cnn_mixed_bfloat16_keeps_logits_and_weights_float32():
    model = models.cifar_cnn(width=8, dtype="mixed_bfloat16")
    conv = model.get_layer("stage1a_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert model.get_layer("logits").compute_dtype == "float32"
    out = model(np.zeros((2, 32, 32, 3), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    # The global policy is untouched: other models built afterwards are float32.
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("dtype, fused", [(None, True), ("mixed_bfloat16", True), (None, False)])
def test_cifar_cnn_trains_and_round_trips_through_a_keras_file(tmp_path, dtype, fused):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    model = models.cifar_cnn(width=8, dtype=dtype, fused_batchnorm=fused)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = model.get_layer("stem_bn").moving_mean.numpy().copy()
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(model.get_layer("stem_bn").moving_mean.numpy(), before)  # BN statistics updated
    path = tmp_path / "cifar.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.get_layer("stem_bn")) is type(model.get_layer("stem_bn"))
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


# --- FusedBatchNormalization -------------------------------------------------------


def _pair(dtype, **kwargs):
    keras_bn = keras.layers.BatchNormalization(dtype=dtype, **kwargs)
    fused_bn = models.FusedBatchNormalization(dtype=dtype, **kwargs)
    return keras_bn, fused_bn


def test_fused_batchnorm_matches_keras_in_float32():
    x = np.random.default_rng(1).normal(2.0, 3.0, (16, 6, 6, 5)).astype("float32")
    keras_bn, fused_bn = _pair("float32", momentum=0.9)
    for layer in (keras_bn, fused_bn):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 5))
        layer.beta.assign(np.linspace(-1.0, 1.0, 5))
    # Training mode: normalised with the batch statistics; moving statistics updated.
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused_bn.moving_mean.numpy(), keras_bn.moving_mean.numpy(), atol=1e-6)
    n = x.shape[0] * x.shape[1] * x.shape[2]
    batch_var = x.var(axis=(0, 1, 2))
    # TensorFlow's kernel feeds the unbiased variance to the moving average.
    np.testing.assert_allclose(fused_bn.moving_variance.numpy(), 0.9 + 0.1 * batch_var * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(keras_bn.moving_variance.numpy(), 0.9 + 0.1 * batch_var, rtol=1e-5)
    # Inference mode: normalised with the moving statistics.
    fused_bn.moving_variance.assign(keras_bn.moving_variance.numpy())
    np.testing.assert_allclose(fused_bn(x, training=False), keras_bn(x, training=False), atol=1e-5)


def test_fused_batchnorm_bfloat16_in_and_out():
    x = np.random.default_rng(2).normal(0.0, 1.0, (8, 4, 4, 16)).astype("float32")
    keras_bn, fused_bn = _pair("mixed_bfloat16")
    y_fused = fused_bn(x, training=True)
    assert keras.backend.standardize_dtype(y_fused.dtype) == "bfloat16"
    assert fused_bn.moving_mean.dtype == "float32"
    np.testing.assert_allclose(
        np.asarray(y_fused, "float32"), np.asarray(keras_bn(x, training=True), "float32"), atol=0.05
    )


def test_fused_batchnorm_falls_back_for_2d_inputs_and_keeps_its_config():
    x = np.random.default_rng(3).normal(size=(32, 6)).astype("float32")
    keras_bn, fused_bn = _pair("float32")
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=True), atol=1e-6)
    config = fused_bn.get_config()
    assert config == {**keras_bn.get_config(), "name": config["name"]}
    clone = models.FusedBatchNormalization.from_config(config)
    assert isinstance(clone, models.FusedBatchNormalization)


# --- augmentation ------------------------------------------------------------


def test_augmentation_changes_each_image_independently_and_keeps_shape():
    image = np.random.default_rng(4).random((1, 32, 32, 3), dtype=np.float32)
    batch = np.repeat(image, 16, axis=0)
    out = np.asarray(models.augmentation(seed=0)(batch, training=True))
    assert out.shape == batch.shape and out.dtype == np.float32
    distinct = {out[i].tobytes() for i in range(len(out))}
    assert len(distinct) > 8  # one random draw per image, not one per batch
    # Pixel values are moved, never invented: reflection padding keeps the range.
    assert out.min() >= image.min() - 1e-6 and out.max() <= image.max() + 1e-6


def test_augmentation_shifts_by_whole_pixels_unless_asked_to_blend():
    image = np.random.default_rng(6).random((1, 32, 32, 1), dtype=np.float32)
    batch = np.repeat(image, 32, axis=0)
    values = set(image.ravel().tolist())
    whole = np.asarray(models.augmentation(seed=0, flip=False)(batch, training=True))
    assert set(whole.ravel().tolist()) <= values  # every pixel a copy of one of the image's pixels
    for out in whole:  # a shift of at most 2 pixels (0.0625 of 32), reflected at the border
        offsets = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[2:-2, 2:-2], image[0, 2 - dy:30 - dy, 2 - dx:30 - dx])]
        assert len(offsets) == 1
    blended = np.asarray(models.augmentation(seed=0, flip=False, interpolation="bilinear")(batch, training=True))
    assert not set(blended.ravel().tolist()) <= values  # fractions of a pixel mix neighbours
    with pytest.raises(ValueError, match="interpolation"):
        models.augmentation(interpolation="bicubic")


def test_augmentation_is_identity_at_inference_and_seeded():
    batch = np.random.default_rng(5).random((4, 32, 32, 3), dtype=np.float32)
    aug = models.augmentation(seed=0)
    np.testing.assert_array_equal(np.asarray(aug(batch, training=False)), batch)
    a = np.asarray(models.augmentation(seed=7)(batch, training=True))
    b = np.asarray(models.augmentation(seed=7)(batch, training=True))
    np.testing.assert_array_equal(a, b)


def test_augmentation_options():
    names = [layer.name for layer in models.augmentation(contrast=0.2).layers]
    assert names == ["flip", "translate", "contrast"]
    assert [layer.name for layer in models.augmentation(flip=False).layers] == ["translate"]
    with pytest.raises(ValueError, match="translation"):
        models.augmentation(translation=1.5)
    with pytest.raises(ValueError, match="contrast"):
        models.augmentation(contrast=-0.1)
    with pytest.raises(ValueError, match="does nothing"):
        models.augmentation(flip=False, translation=0.0)
    with pytest.raises(ValueError, match="fill_mode"):
        models.augmentation(fill_mode="zeros")
