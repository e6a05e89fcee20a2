"""The from-scratch NumPy layers of :mod:`cnnbook.conv`, checked against TensorFlow/Keras."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from cnnbook import conv

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

# (image H×W, kernel kh×kw, C_in, C_out, stride, padding)
CONV_CASES = [
    ((7, 9), (3, 3), 1, 1, 1, "valid"),
    ((7, 9), (3, 3), 2, 4, 1, "same"),
    ((8, 8), (3, 3), 3, 5, 2, "same"),
    ((8, 8), (3, 3), 3, 5, 2, "valid"),
    ((9, 7), (2, 4), 1, 3, (2, 3), "same"),
    ((10, 11), (4, 4), 3, 2, 3, "valid"),
    ((10, 11), (5, 5), 2, 3, 3, "same"),
    ((6, 6), (3, 3), 2, 2, 2, 1),
    ((5, 8), (1, 1), 4, 6, 1, "valid"),
    ((28, 28), (5, 5), 1, 8, 1, "same"),
]


def _tf_padding(padding):
    if isinstance(padding, str):
        return padding.upper()
    return [[0, 0], [padding, padding], [padding, padding], [0, 0]]


@pytest.mark.parametrize("size, ksize, c_in, c_out, stride, padding", CONV_CASES)
def test_conv2d_matches_tf_nn_conv2d(size, ksize, c_in, c_out, stride, padding):
    rng = np.random.default_rng(zlib.crc32(repr((size, ksize, c_in, c_out, stride, padding)).encode()))
    x = rng.standard_normal((3, *size, c_in)).astype(np.float32)
    w = rng.standard_normal((*ksize, c_in, c_out)).astype(np.float32)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    expected = tf.nn.conv2d(x, w, strides=[1, sh, sw, 1], padding=_tf_padding(padding)).numpy()
    ours = conv.conv2d(x, w, stride=stride, padding=padding)
    assert ours.shape == expected.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_with_bias_matches_keras_conv2d_layer(stride, padding):
    rng = np.random.default_rng(7)
    x = rng.random((2, 12, 10, 3)).astype(np.float32)
    layer = keras.layers.Conv2D(4, 3, strides=stride, padding=padding, bias_initializer="random_normal")
    expected = layer(x).numpy()
    kernel, bias = (v.numpy() for v in layer.weights)
    np.testing.assert_allclose(
        conv.conv2d(x, kernel, bias, stride=stride, padding=padding), expected, rtol=1e-5, atol=1e-5
    )


def test_conv2d_two_dimensional_image_and_kernel_gives_two_dimensional_map():
    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    kernel = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)  # identity
    out = conv.conv2d(image, kernel)
    assert out.shape == (3, 3)
    np.testing.assert_array_equal(out, image[1:-1, 1:-1])
    # Without a batch axis, an H×W×C image gives H'×W'×C_out.
    assert conv.conv2d(image[..., None], kernel[..., None, None], padding="same").shape == (5, 5, 1)


def test_conv2d_is_cross_correlation_not_flipped():
    image = np.zeros((3, 3))
    image[1, 1] = 1.0
    kernel = np.arange(9.0).reshape(3, 3)
    # A single bright pixel "stamps" the kernel flipped — the signature of cross-correlation.
    np.testing.assert_array_equal(conv.conv2d(image, kernel, padding="same"), kernel[::-1, ::-1])


def test_conv2d_rejects_bad_input():
    x = np.zeros((2, 8, 8, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="channel"):
        conv.conv2d(x, np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="padding"):
        conv.conv2d(x, np.zeros((3, 3, 3, 4)), padding="full")
    with pytest.raises(ValueError, match="stride"):
        conv.conv2d(x, np.zeros((3, 3, 3, 4)), stride=0)
    with pytest.raises(ValueError, match="kernel"):
        conv.conv2d(x, np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="larger"):
        conv.conv2d(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="bias"):
        conv.conv2d(x, np.zeros((3, 3, 3, 4)), bias=np.zeros(3))


# (image H×W, pool size, stride, padding)
POOL_CASES = [
    ((8, 8), 2, None, "valid"),
    ((7, 9), 2, None, "valid"),
    ((7, 9), 2, None, "same"),
    ((7, 9), 3, 2, "same"),
    ((10, 10), 3, 2, "valid"),
    ((8, 8), (2, 3), 1, "valid"),
    ((5, 7), (3, 2), (1, 2), "same"),
]


@pytest.mark.parametrize("size, pool, stride, padding", POOL_CASES)
def test_max_pool2d_matches_keras_max_pooling(size, pool, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, *size, 3)).astype(np.float32)
    expected = keras.layers.MaxPooling2D(pool, strides=stride, padding=padding)(x).numpy()
    ours = conv.max_pool2d(x, pool, stride=stride, padding=padding)
    assert ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


def test_max_pool2d_keeps_layout_and_rejects_bad_input():
    image = np.array([[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0]])
    np.testing.assert_array_equal(conv.max_pool2d(image), [[4.0, 5.0]])
    with pytest.raises(ValueError, match="pool_size"):
        conv.max_pool2d(image, 0)
    with pytest.raises(ValueError, match="larger"):
        conv.max_pool2d(image, 3)


def test_relu_and_softmax_match_keras():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 10)).astype(np.float32) * 5
    np.testing.assert_array_equal(conv.relu(z), keras.activations.relu(z).numpy())
    p = conv.softmax(z)
    np.testing.assert_allclose(p, keras.activations.softmax(z).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)


def test_softmax_is_stable_and_shift_invariant():
    z = np.array([1000.0, 1001.0, 1002.0])
    p = conv.softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, conv.softmax(z - 1000.0))
    np.testing.assert_allclose(conv.softmax(np.zeros(4)), 0.25)
    with pytest.raises(ValueError):
        conv.softmax(np.float64(1.0))


@pytest.mark.parametrize("n", [5, 7, 28, 32])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same", 1])
def test_output_size_matches_conv2d(n, k, s, padding):
    if padding == 1 and n + 2 < k or padding == "valid" and n < k:
        return
    expected = conv.conv2d(np.zeros((n, n)), np.zeros((k, k)), stride=s, padding=padding).shape[0]
    assert conv.output_size(n, k, s, padding) == expected


def test_output_size_matches_keras_layers():
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 5, strides=2, padding="same"),
            keras.layers.MaxPooling2D(3, strides=2),
            keras.layers.Conv2D(8, 3),
        ]
    )
    n = conv.output_size(28, 5, 2, "same")
    n = conv.output_size(n, 3, 2, "valid")
    n = conv.output_size(n, 3, 1, "valid")
    assert model.output_shape == (None, n, n, 8)


def test_parameter_formulas_match_keras():
    model = keras.Sequential(
        [
            keras.Input((28, 28, 3)),
            keras.layers.Conv2D(16, 3),
            keras.layers.Conv2D(8, (5, 3), use_bias=False),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    conv1, conv2, _, dense = model.layers
    assert conv1.count_params() == conv.conv_params(3, 3, 16)
    assert conv2.count_params() == conv.conv_params((5, 3), 16, 8, use_bias=False)
    assert dense.count_params() == conv.dense_params(22 * 24 * 8, 10)
    with pytest.raises(ValueError):
        conv.conv_params(3, 0, 4)
    with pytest.raises(ValueError):
        conv.dense_params(10, 0)


def test_receptive_field_formula():
    assert conv.receptive_field([]) == []
    assert conv.receptive_field([(3, 1)] * 3) == [3, 5, 7]
    assert conv.receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2)]) == [3, 5, 6, 10, 14, 16]
    with pytest.raises(ValueError, match="Layer 1"):
        conv.receptive_field([(3, 1), (0, 1)])
    with pytest.raises(ValueError, match="pair"):
        conv.receptive_field([3])


def test_receptive_field_matches_gradient_of_a_keras_stack():
    """The input pixels that influence one central output unit span exactly the predicted field."""
    layers = [(3, 1), (3, 1), (2, 2), (5, 1), (2, 2)]
    stack = [keras.Input((40, 40, 1))]
    for k, s in layers:
        if s == 1:
            stack.append(keras.layers.Conv2D(1, k, kernel_initializer="ones", use_bias=False))
        else:  # average pooling has max pooling's geometry and a dense gradient
            stack.append(keras.layers.AveragePooling2D(k, strides=s))
    model = keras.Sequential(stack)
    x = tf.Variable(np.ones((1, 40, 40, 1), dtype=np.float32))
    with tf.GradientTape() as tape:
        out = model(x)
        centre = out[0, out.shape[1] // 2, out.shape[2] // 2, 0]
    grad = tape.gradient(centre, x).numpy()[0, :, :, 0]
    rows = np.flatnonzero(np.abs(grad).sum(axis=1) > 0)
    cols = np.flatnonzero(np.abs(grad).sum(axis=0) > 0)
    assert rows[-1] - rows[0] + 1 == conv.receptive_field(layers)[-1]
    assert cols[-1] - cols[0] + 1 == conv.receptive_field(layers)[-1]
