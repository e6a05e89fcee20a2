"""The from-scratch NumPy layers and formulas of :mod:`cnnbook.conv`, checked against TensorFlow/Keras.

Chapter 1 builds convolution, pooling and the output-size / parameter formulas
in NumPy and shows that they agree with TensorFlow.  The harnesses that make
those comparisons live here, so that the chapter shows the call and its result:

* :func:`layers_against_tensorflow` — ``conv.conv2d`` and ``conv.max_pool2d``
  against ``tf.nn.conv2d``, ``keras.layers.Conv2D`` and
  ``keras.layers.MaxPooling2D`` on real images, several settings each;
* :func:`formulas_against_keras` — every layer's output shape and parameter
  count predicted from its settings by ``conv``'s formulas, beside Keras' own;
* :func:`receptive_fields` — each layer's receptive field from the formula, beside
  one measured with gradients.

NumPy at import time; TensorFlow and Keras inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import conv

__all__ = [
    "FormulaCheck",
    "LayerCheck",
    "ReceptiveFieldCheck",
    "formulas_against_keras",
    "layers_against_tensorflow",
    "receptive_fields",
]


@dataclass(frozen=True)
class LayerCheck:
    """One NumPy layer against TensorFlow on the same inputs and weights."""

    function: str
    description: str
    shape: tuple[int, ...]
    reference_shape: tuple[int, ...]
    max_abs_diff: float


def layers_against_tensorflow(images: np.ndarray, seed: int = 0) -> tuple[list[LayerCheck], list[LayerCheck]]:
    """Compare ``conv.conv2d`` and ``conv.max_pool2d`` with TensorFlow on ``images``.

    Five convolutions with He-scaled random kernels (drawn from ``seed``):
    3×3, 5×5 and 4×4 kernels, strides 1–3, ``"valid"``, ``"same"`` and explicit
    zero padding, one and eight input channels (the eight are ReLU feature maps
    of the first kernel); one ``keras.layers.Conv2D`` with its own initial
    weights and a bias; three max poolings of the feature maps.

    Parameters
    ----------
    images : numpy.ndarray
        ``N×H×W×1`` float32 images, e.g. MNIST digits in [0, 1].
    seed : int
        Seed of the random kernels.

    Returns
    -------
    (conv_checks, pool_checks) : tuple of two lists of LayerCheck
        Six convolution and three pooling comparisons: output shapes (without
        the batch axis) and the largest absolute difference.
    """
    import keras
    import tensorflow as tf

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 1 or len(images) == 0:
        raise ValueError(f"images must be a non-empty N×H×W×1 batch; got shape {images.shape}.")
    rng = np.random.default_rng(seed)

    def random_kernel(k: int, c_in: int, c_out: int) -> np.ndarray:
        """He-scaled random weights, the size real layers start from."""
        return (rng.standard_normal((k, k, c_in, c_out)) * np.sqrt(2 / (k * k * c_in))).astype(np.float32)

    def tf_padding(padding: str | int) -> Any:
        return padding.upper() if isinstance(padding, str) else [[0, 0], [padding] * 2, [padding] * 2, [0, 0]]

    def check(function: str, description: str, ours: np.ndarray, theirs: np.ndarray) -> LayerCheck:
        return LayerCheck(function, description, tuple(ours.shape[1:]), tuple(theirs.shape[1:]),
                          float(np.abs(ours - theirs).max()))

    first_kernel = random_kernel(3, 1, 8)
    first_maps = tf.nn.relu(tf.nn.conv2d(images, first_kernel, strides=1, padding="VALID")).numpy()
    conv_cases = [  # (description, input, kernel, stride, padding)
        ("3×3, 1→8 channels, stride 1, valid", images, first_kernel, 1, "valid"),
        ("5×5, 1→8 channels, stride 2, same", images, random_kernel(5, 1, 8), 2, "same"),
        ("4×4, 1→4 channels, stride 3, 2 zeros", images, random_kernel(4, 1, 4), 3, 2),
        ("3×3, 8→16 channels, stride 1, same", first_maps, random_kernel(3, 8, 16), 1, "same"),
        ("3×3, 8→16 channels, stride 2, valid", first_maps, random_kernel(3, 8, 16), 2, "valid"),
    ]
    conv_checks = [
        check("conv2d", name, conv.conv2d(inputs, kernel, stride=stride, padding=padding),
              tf.nn.conv2d(inputs, kernel, strides=stride, padding=tf_padding(padding)).numpy())
        for name, inputs, kernel, stride, padding in conv_cases
    ]
    # A Keras layer with its own initial weights and a bias.
    layer = keras.layers.Conv2D(8, 3, strides=2, padding="same", bias_initializer="random_normal")
    theirs = layer(images).numpy()
    kernel, bias = (w.numpy() for w in layer.weights)
    conv_checks.append(check("conv2d", "keras Conv2D(8, 3, strides=2, same) with bias",
                             conv.conv2d(images, kernel, bias, stride=2, padding="same"), theirs))

    pool_cases = [  # (description, pool size, stride, padding)
        ("2×2 max pool (Keras default)", 2, None, "valid"),
        ("3×3 max pool, stride 2, same", 3, 2, "same"),
        ("3×3 max pool, stride 1, valid", 3, 1, "valid"),
    ]
    pool_checks = [
        check("max_pool2d", name, conv.max_pool2d(first_maps, size, stride=stride, padding=padding),
              keras.layers.MaxPooling2D(size, strides=stride, padding=padding)(first_maps).numpy())
        for name, size, stride, padding in pool_cases
    ]
    return conv_checks, pool_checks


@dataclass(frozen=True)
class FormulaCheck:
    """Each layer's output shape and parameters from the formulas, beside Keras' own.

    ``rows`` holds ``(layer type, predicted shape, Keras shape, predicted
    parameters, Keras parameters)`` per computing layer; ``str()`` is the table
    chapter 1 prints; ``total_parameters`` is the predicted sum,
    ``keras_parameters`` ``model.count_params()``.
    """

    model_name: str
    rows: tuple[tuple[str, tuple[int, ...], tuple[int, ...], int, int], ...]
    total_parameters: int
    keras_parameters: int

    @property
    def all_equal(self) -> bool:
        """Whether every predicted shape and parameter count equals Keras'."""
        return all(shape == keras_shape and params == keras_params
                   for _, shape, keras_shape, params, keras_params in self.rows)

    def __str__(self) -> str:
        lines = [self.model_name,
                 f"{'layer':20} {'predicted shape':16} {'Keras shape':16} {'predicted':>9} {'Keras':>9}"]
        for kind, shape, keras_shape, params, keras_params in self.rows:
            equal = shape == keras_shape and params == keras_params
            lines.append(f"{kind:20} {str(shape):16} {str(keras_shape):16} "
                         f"{params:>9,} {keras_params:>9,} {'' if equal else '  <-- differs'}")
        lines.append(f"total predicted {self.total_parameters:,}; model.count_params() {self.keras_parameters:,}; "
                     f"all equal: {self.all_equal}\n")
        return "\n".join(lines)


def formulas_against_keras(model: Any) -> FormulaCheck:
    """Predict every layer's output shape and parameter count from its settings, beside Keras' own.

    Uses :func:`cnnbook.conv.output_size`, :func:`~cnnbook.conv.conv_params`
    and :func:`~cnnbook.conv.dense_params` for ``Conv2D``, ``MaxPooling2D``,
    ``Flatten``, ``GlobalAveragePooling2D``, ``Dense``, ``BatchNormalization``
    (4 numbers per channel), ``Dropout``, ``ReLU`` and ``Activation``.

    Parameters
    ----------
    model : keras.Model
        A built model with one image input.

    Returns
    -------
    FormulaCheck
        One row per computing layer (the input layer is skipped).

    Raises
    ------
    ValueError
        A layer type without a formula here.
    """
    import keras

    shape = tuple(model.inputs[0].shape[1:])
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        h, w, c = (shape + (None, None, None))[:3]
        if isinstance(layer, keras.layers.Conv2D):
            (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
            shape = (conv.output_size(h, kh, sh, layer.padding), conv.output_size(w, kw, sw, layer.padding),
                     layer.filters)
            params = conv.conv_params((kh, kw), c, layer.filters, use_bias=layer.use_bias)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            (ph, pw), (sh, sw) = layer.pool_size, layer.strides
            shape = (conv.output_size(h, ph, sh, layer.padding), conv.output_size(w, pw, sw, layer.padding), c)
            params = 0
        elif isinstance(layer, keras.layers.Flatten):
            shape, params = (int(np.prod(shape)),), 0
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
            shape, params = (c,), 0
        elif isinstance(layer, keras.layers.Dense):
            params = conv.dense_params(shape[-1], layer.units)
            shape = shape[:-1] + (layer.units,)
        elif isinstance(layer, keras.layers.BatchNormalization):
            params = 4 * shape[-1]
        elif isinstance(layer, (keras.layers.Dropout, keras.layers.ReLU, keras.layers.Activation)):
            params = 0
        else:
            raise ValueError(f"no formula for {type(layer).__name__}")
        rows.append((type(layer).__name__, shape, tuple(layer.output.shape[1:]), params, layer.count_params()))
    return FormulaCheck(model.name, tuple(rows), sum(row[3] for row in rows), model.count_params())


@dataclass(frozen=True)
class ReceptiveFieldCheck:
    """Receptive fields of a model's convolution and pooling layers: formula and measurement.

    Attributes
    ----------
    layers : tuple of str
        Names of the convolution and pooling layers, input to output.
    output_sizes : tuple of (int, int)
        Height and width of each layer's output.
    formula : tuple of int
        Receptive field (pixels on a side) after each layer, from :func:`cnnbook.conv.receptive_field`.
    measured : tuple of int
        The same, measured: the extent of the input pixels whose gradient reaches the centre unit.
    boxes : tuple of (int, int, int, int)
        The measured field of the centre unit as (top, left, height, width) in input pixels.
    """

    layers: tuple[str, ...]
    output_sizes: tuple[tuple[int, int], ...]
    formula: tuple[int, ...]
    measured: tuple[int, ...]
    boxes: tuple[tuple[int, int, int, int], ...]

    @property
    def all_equal(self) -> bool:
        """Whether formula and measurement agree for every layer."""
        return self.formula == self.measured


def receptive_fields(model: Any) -> ReceptiveFieldCheck:
    """Measure the receptive field of each convolution and pooling layer of ``model`` by gradients.

    A probe network with the model's geometry (one channel, all-ones kernels, average instead of
    max pooling, so every input pixel in the field has a non-zero gradient) is built; the gradient
    of the centre unit of each layer's output with respect to the input marks the pixels it sees.

    Parameters
    ----------
    model : keras.Model
        A built model with one image input; its ``Conv2D`` and ``MaxPooling2D`` layers are used in
        order (other layers do not change the receptive field).

    Returns
    -------
    ReceptiveFieldCheck

    Raises
    ------
    ValueError
        The model has no convolution or pooling layer.
    """
    import keras
    import tensorflow as tf

    geometry = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]
    if not geometry:
        raise ValueError("the model has no Conv2D or MaxPooling2D layer: there is no receptive field to measure.")
    formula = conv.receptive_field(
        [(layer.kernel_size[0], layer.strides[0]) if isinstance(layer, keras.layers.Conv2D)
         else (layer.pool_size[0], layer.strides[0]) for layer in geometry]
    )
    shape = tuple(model.inputs[0].shape[1:3]) + (1,)
    inputs = keras.Input(shape)
    outputs, h = [], inputs
    for layer in geometry:
        if isinstance(layer, keras.layers.Conv2D):
            h = keras.layers.Conv2D(1, layer.kernel_size, strides=layer.strides, padding=layer.padding,
                                    kernel_initializer="ones", use_bias=False)(h)
        else:
            h = keras.layers.AveragePooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding)(h)
        outputs.append(h)
    probe = keras.Model(inputs, outputs)
    image = tf.Variable(tf.ones((1, *shape)))
    measured, boxes = [], []
    for depth in range(len(geometry)):
        with tf.GradientTape() as tape:
            out = probe(image)[depth]
            centre = out[0, (out.shape[1] - 1) // 2, (out.shape[2] - 1) // 2, 0]
        grad = tape.gradient(centre, image).numpy()[0, :, :, 0]
        rows, cols = np.flatnonzero(grad.any(axis=1)), np.flatnonzero(grad.any(axis=0))
        measured.append(int(rows[-1] - rows[0] + 1))
        boxes.append((int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)))
    return ReceptiveFieldCheck(
        layers=tuple(layer.name for layer in geometry),
        output_sizes=tuple((int(o.shape[1]), int(o.shape[2])) for o in probe.outputs),
        formula=tuple(formula),
        measured=tuple(measured),
        boxes=tuple(boxes),
    )
