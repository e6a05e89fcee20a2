"""Keras model builders.  Every model returns **logits** (no softmax layer):
train with ``SparseCategoricalCrossentropy(from_logits=True)`` and apply
``keras.activations.softmax`` (or :func:`cnnbook.evaluation.predict_proba`) to
read probabilities.  This module imports only Keras at import time;
:class:`FusedBatchNormalization` calls TensorFlow's fused kernel when it runs.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

__all__ = [
    "DOWNSAMPLING",
    "FusedBatchNormalization",
    "article_cnn",
    "augmentation",
    "channel_normalizer",
    "cifar_cnn",
    "cifar_resnet",
    "digit_augmentation",
    "keras_io_convnet",
    "mlp",
    "mnist_cnn",
    "mnist_cnn_sequential",
    "residual_block",
    "with_softmax",
]


def _check_shape(input_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    return shape


def _check_dtype(dtype: str | None) -> None:
    if dtype is None:
        return
    try:
        keras.DTypePolicy(dtype)
    except ValueError as exc:
        raise ValueError(
            f"dtype must be a Keras dtype policy such as 'float32' or 'mixed_bfloat16', got {dtype!r}."
        ) from exc


def mnist_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (16, 32, 64),
    dropout: float = 0.3,
    dtype: str | None = None,
    *,
    batch_norm: bool = True,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """The book's Part I CNN (Functional API): three cheap stages, then the logits.

    Each stage is a 3×3 convolution ("same" padding, no bias) → 2×2 max
    pooling → batch normalisation → ReLU, so the image shrinks 28→14→7→3 while
    the channels grow 16→32→64; then dropout and a Dense logits layer.

    Parameters
    ----------
    input_shape : (height, width, channels)
    num_classes : int
    filters : channels of each stage (one stage per entry)
    dropout : dropout rate before the logits layer
    dtype : Keras dtype policy of every layer but the logits, which stay
        float32 (see :func:`cifar_cnn`); ``None`` uses the global policy.
    batch_norm : bool
        ``False`` leaves the batch normalisation out (the convolutions then get
        a bias); the study of chapter 10 switches it off to measure it.
    bn_momentum : float
        Momentum of batch normalisation's moving averages, in [0, 1).  Keras'
        0.99 forgets slowly: after fewer than a few hundred training steps the
        averages still remember their initial values and validation accuracy
        lags; short runs (chapter 10's study) use 0.9.

    Returns
    -------
    keras.Model
        Logits out (no softmax).

    Why this shape: on a CPU a convolution's cost grows with the pixels it
    covers times its channels, so the first stage, at full resolution, is kept
    narrow (16 channels) and pooled at once; pooling *before* the
    normalisation and the ReLU lets them work on a quarter of the pixels (max
    pooling commutes with an increasing function such as the ReLU, so for the
    ReLU the order changes nothing but the cost; BN then takes its statistics
    over the pooled maps, which the network adapts to).  Batch
    normalisation (TensorFlow's fused kernel, :class:`FusedBatchNormalization`)
    lets a high learning rate converge in a few epochs.  The convolutions have
    no bias because BN's shift replaces it.
    """
    shape = _check_shape(input_shape, num_classes)
    _check_dtype(dtype)
    if not filters or min(filters) < 1:
        raise ValueError(f"filters needs at least one stage, each with at least one channel; got {tuple(filters)}.")
    if 2 ** len(filters) > min(shape[:2]):
        raise ValueError(f"{len(filters)} stages halve a {shape[0]}×{shape[1]} image to nothing; use fewer stages.")
    if not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum must be in [0, 1), got {bn_momentum}.")
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for stage, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm, dtype=dtype, name=f"stage{stage}_conv")(x)
        x = layers.MaxPooling2D(2, dtype=dtype, name=f"stage{stage}_pool")(x)
        if batch_norm:
            x = FusedBatchNormalization(momentum=bn_momentum, dtype=dtype, name=f"stage{stage}_bn")(x)
        x = layers.ReLU(dtype=dtype, name=f"stage{stage}_relu")(x)
    x = layers.Flatten(dtype=dtype, name="flatten")(x)
    x = layers.Dropout(dropout, dtype=dtype, name="dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def mnist_cnn_sequential(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (16, 32, 64),
    dropout: float = 0.3,
) -> keras.Sequential:
    """The same network as :func:`mnist_cnn`, written with the Sequential API (same layers, same weights).

    Parameters
    ----------
    input_shape : (height, width, channels)
    num_classes : int
        At least 2.
    filters : sequence of int
        Channels of each stage (one stage per entry).
    dropout : float
        Dropout rate before the logits layer.

    Returns
    -------
    keras.Sequential
        Logits out (no softmax); unlike :func:`mnist_cnn` it has no ``dtype``
        argument and its layers keep Keras' default names.
    """
    shape = _check_shape(input_shape, num_classes)
    stack: list[layers.Layer] = [keras.Input(shape=shape)]
    for width in filters:
        stack += [
            layers.Conv2D(width, 3, padding="same", use_bias=False),
            layers.MaxPooling2D(2),
            FusedBatchNormalization(),
            layers.ReLU(),
        ]
    stack += [layers.Flatten(), layers.Dropout(dropout), layers.Dense(num_classes)]
    return keras.Sequential(stack, name="mnist_cnn_sequential")


def keras_io_convnet(
    input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10, dtype: str | None = None
) -> keras.Model:
    """keras-io's "Simple MNIST convnet" (fchollet), re-implemented from its description.

    Conv(32, 3×3, ReLU) → MaxPool 2 → Conv(64, 3×3, ReLU) → MaxPool 2 → Flatten →
    Dropout 0.5 → Dense.  The original ends in a softmax; here the Dense layer
    returns logits (same network, numerically safer loss).

    Parameters
    ----------
    input_shape : (height, width, channels)
    num_classes : int
        At least 2.
    dtype : str, optional
        Keras dtype policy of every layer but the logits, which stay float32 (as
        in :func:`mnist_cnn`); ``None`` uses the global policy.

    Returns
    -------
    keras.Sequential
        Logits out (no softmax).
    """
    shape = _check_shape(input_shape, num_classes)
    _check_dtype(dtype)
    return keras.Sequential(
        [
            keras.Input(shape=shape),
            layers.Conv2D(32, 3, activation="relu", dtype=dtype),
            layers.MaxPooling2D(2, dtype=dtype),
            layers.Conv2D(64, 3, activation="relu", dtype=dtype),
            layers.MaxPooling2D(2, dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dropout(0.5, dtype=dtype),
            layers.Dense(num_classes, dtype="float32"),
        ],
        name="keras_io_convnet",
    )


def article_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10) -> keras.Model:
    """The source article's network (TensorFlow's CNN tutorial), repaired: logits out.

    Conv(32) → MaxPool → Conv(64) → MaxPool → Conv(64) → Flatten → Dense(64) → Dense.

    Parameters
    ----------
    input_shape : (height, width, channels)
        Default CIFAR-10's ``(32, 32, 3)``.
    num_classes : int
        At least 2.

    Returns
    -------
    keras.Sequential
        Logits out (no softmax).
    """
    shape = _check_shape(input_shape, num_classes)
    return keras.Sequential(
        [
            keras.Input(shape=shape),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes),
        ],
        name="article_cnn",
    )


def mlp(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    hidden: Sequence[int] = (256, 128),
    dropout: float = 0.2,
) -> keras.Model:
    """A fully connected network on the flattened pixels: the "no convolution" baseline.

    A multi-layer perceptron (Flatten → Dense + ReLU + Dropout per hidden layer →
    Dense logits); not to be confused with DenseNet, the densely connected CNN
    of Huang et al. (2017).

    Parameters
    ----------
    input_shape : (height, width, channels)
    num_classes : int
        At least 2.
    hidden : sequence of int
        Units of each hidden ``Dense`` layer.
    dropout : float
        Dropout rate after each hidden layer.

    Returns
    -------
    keras.Sequential
        Logits out (no softmax).
    """
    shape = _check_shape(input_shape, num_classes)
    stack: list[layers.Layer] = [keras.Input(shape=shape), layers.Flatten()]
    for units in hidden:
        stack += [layers.Dense(units, activation="relu"), layers.Dropout(dropout)]
    stack.append(layers.Dense(num_classes))
    return keras.Sequential(stack, name="mlp")


@keras.saving.register_keras_serializable(package="cnnbook")
class FusedBatchNormalization(layers.BatchNormalization):
    """:class:`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel.

    Same weights, configuration and maths as Keras' layer.  Keras 3 writes batch
    normalisation with backend-neutral operations (a mean, a variance, a
    subtraction, a multiplication ... each a separate pass over the activations,
    in float32 even under a ``mixed_bfloat16`` policy).  On a CPU whose
    convolutions run in bfloat16 those passes, not the convolutions, dominate a
    training step.  When Keras runs on TensorFlow, this layer calls
    ``FusedBatchNormV3`` instead (one oneDNN kernel, bfloat16 in and out); on
    other backends, with a mask, or with options the fused kernel lacks
    (renormalisation, an axis other than the last of a 4-D input) it falls back
    to the Keras computation.  The only numerical difference: TensorFlow
    updates the moving variance with the unbiased (``n - 1``) batch variance.
    """

    def _fusable(self, inputs: keras.KerasTensor, mask: keras.KerasTensor | None) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )

    def call(self, inputs, training=None, mask=None):  # noqa: D102 - documented on the class
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only reached on the TensorFlow backend

        x = tf.convert_to_tensor(inputs)
        if x.dtype not in (tf.float16, tf.bfloat16, tf.float32):
            x = tf.cast(x, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                is_training=False,
            )
        return tf.cast(y, self.compute_dtype)


def augmentation(
    seed: int | None = None,
    translation: float = 0.0625,
    flip: bool = True,
    contrast: float = 0.0,
    fill_mode: str = "reflect",
    interpolation: str = "nearest",
) -> keras.Sequential:
    """Training-time augmentation: random shifts, optionally mirror images and contrast changes.

    The defaults are the colour chapter's for small photographs (CIFAR-10): a
    random horizontal flip (a mirrored cat is still a cat; an upside-down one
    is rare, so no vertical flip) and a random shift of up to ``translation``
    of the height and width (0.0625 = 2 pixels of 32) by whole pixels, the
    border filled by reflection.  Digits must not be mirrored: the MNIST recipe
    shifts only, filling the border with black (``flip=False, fill_mode="constant"``).
    Every image in a batch gets its own random draw.  (Keras' ``RandomCrop``
    draws *one* crop offset per batch, which is why the shift is done with
    ``RandomTranslation``.)  Apply it to training batches only, e.g. with
    ``cnnbook.data.make_pipeline(..., augment=augmentation())``.

    Parameters
    ----------
    seed : int, optional
        Seed of the random layers (each layer gets its own seed derived from it);
        ``None`` draws differently every run.
    translation : float
        Largest shift as a fraction of the height and width, in [0, 1) (0: no shift).
    flip : bool
        Random horizontal flips.
    contrast : float
        Largest random contrast change, in [0, 1) (0: none).
    fill_mode : str
        How a shift fills the border: ``"reflect"``, ``"constant"`` (zeros, black),
        ``"nearest"`` or ``"wrap"``, as for ``keras.layers.RandomTranslation``.
    interpolation : str
        ``"nearest"`` moves the image by whole pixels, keeping it sharp, as a
        random crop does; ``"bilinear"`` (Keras' default) moves it by fractions of
        a pixel, blending neighbours, so most shifted images come out slightly blurred.

    Returns
    -------
    keras.Sequential
        The random layers, to call as ``augment(batch, training=True)``.

    Raises
    ------
    ValueError
        An argument out of range, or every augmentation switched off.
    """
    if not 0.0 <= translation < 1.0:
        raise ValueError(f"translation is a fraction of the image size in [0, 1), got {translation}.")
    if not 0.0 <= contrast < 1.0:
        raise ValueError(f"contrast must be in [0, 1), got {contrast}.")
    if fill_mode not in ("reflect", "constant", "nearest", "wrap"):
        raise ValueError(f"fill_mode must be 'reflect', 'constant', 'nearest' or 'wrap', got {fill_mode!r}.")
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}.")
    stack: list[layers.Layer] = []
    # Different seeds per layer, so that the flip and the shift are drawn independently.
    if flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if translation > 0:
        stack.append(
            layers.RandomTranslation(
                translation,
                translation,
                fill_mode=fill_mode,
                interpolation=interpolation,
                seed=None if seed is None else seed + 1,
                name="translate",
            )
        )
    if contrast > 0:
        stack.append(layers.RandomContrast(contrast, seed=None if seed is None else seed + 2, name="contrast"))
    if not stack:
        raise ValueError("augmentation with no flip, no translation and no contrast does nothing.")
    return keras.Sequential(stack, name="augmentation")


def digit_augmentation(
    seed: int | None = None,
    rotation: float = 10.0,
    zoom: float = 0.1,
    translation: float = 2 / 28,
) -> keras.Sequential:
    """Training-time augmentation for handwritten digits: small rotations, zooms and shifts, never mirrored.

    A digit written a little tilted, larger or smaller, or off-centre is still
    the same digit (a mirrored 7 is not).  Each image gets a random rotation of
    up to ``rotation`` degrees either way and a random zoom of up to ``zoom``
    in or out, drawn for the height and the width separately (so a digit may
    also come out a little narrower or wider), both with bilinear
    interpolation and a black border; then :func:`augmentation`'s shift by
    whole pixels.  The members of chapter 9's ensemble train with it
    (:func:`cnnbook.training.ensemble_augmentation`); the single Part I model
    shifts only.

    Parameters
    ----------
    seed : int, optional
        Seed of the random layers (each layer gets its own seed derived from it);
        ``None`` draws differently every run.
    rotation : float
        Largest rotation in degrees, in [0, 180) (0: none).
    zoom : float
        Largest zoom as a fraction of the size, in [0, 1) (0: none).
    translation : float
        Largest shift as a fraction of the height and width, in [0, 1) (0: none).

    Returns
    -------
    keras.Sequential
        The random layers, to call as ``augment(batch, training=True)``.

    Raises
    ------
    ValueError
        An argument out of range, or every augmentation switched off.
    """
    if not 0.0 <= rotation < 180.0:
        raise ValueError(f"rotation is in degrees, in [0, 180), got {rotation}.")
    if not 0.0 <= zoom < 1.0:
        raise ValueError(f"zoom is a fraction of the image size in [0, 1), got {zoom}.")
    if not 0.0 <= translation < 1.0:
        raise ValueError(f"translation is a fraction of the image size in [0, 1), got {translation}.")
    stack: list[layers.Layer] = []
    if rotation > 0:  # Keras takes the angle as a fraction of a full turn
        stack.append(layers.RandomRotation(rotation / 360, fill_mode="constant", interpolation="bilinear",
                                           seed=seed, name="rotate"))
    if zoom > 0:
        stack.append(layers.RandomZoom(zoom, zoom, fill_mode="constant", interpolation="bilinear",
                                       seed=None if seed is None else seed + 3, name="zoom"))
    if translation > 0:
        shift = augmentation(None if seed is None else seed + 4, translation=translation, flip=False,
                             fill_mode="constant", interpolation="nearest")
        stack.extend(shift.layers)
    if not stack:
        raise ValueError("digit_augmentation with no rotation, no zoom and no translation does nothing.")
    return keras.Sequential(stack, name="digit_augmentation")


def channel_normalizer(mean: Sequence[float], std: Sequence[float], name: str = "normalize") -> layers.Normalization:
    """A layer that standardises each colour channel: ``(x - mean) / std``.

    Give it statistics of the *training* images only, e.g. from
    :func:`cnnbook.data.channel_statistics` (which sums in float64: Keras'
    ``Normalization.adapt`` sums in float32 and stalls on CIFAR-10's training
    split), and put it first in the model — as :func:`cifar_cnn`'s
    ``normalizer`` — so that the saved model carries its own preprocessing.

    Parameters
    ----------
    mean, std : sequence of float
        One mean and one (positive) standard deviation per channel.
    name : str
        The layer's name.

    Returns
    -------
    keras.layers.Normalization
        With fixed statistics (no ``adapt`` needed).
    """
    mean_values = [float(m) for m in mean]
    std_values = [float(s) for s in std]
    if not mean_values or len(mean_values) != len(std_values):
        raise ValueError(f"mean and std need one value per channel; got {len(mean_values)} and {len(std_values)}.")
    if not all(s > 0 for s in std_values):
        raise ValueError(f"std must be positive in every channel, got {std_values}: is a channel constant?")
    return layers.Normalization(
        axis=-1, mean=mean_values, variance=[s * s for s in std_values], name=name  # the layer takes a variance
    )


def cifar_cnn(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    width: int = 32,
    dropout: float = 0.1,
    *,
    normalizer: layers.Layer | None = None,
    dtype: str | None = None,
    fused_batchnorm: bool = True,
    global_pooling: str = "max",
) -> keras.Model:
    """The book's CNN for colour images: 7 convolutions, ~0.3 M parameters at ``width=32``.

    ``normalizer`` (e.g. a ``keras.layers.Normalization`` given the training
    images' per-channel mean and variance, :func:`cnnbook.data.channel_statistics`) ->
    stem: 3×3 conv (``width/2`` channels) -> BN -> ReLU, at full resolution ->
    three stages with ``width``, ``2·width``, ``4·width`` channels, each
    3×3 conv -> 2×2 max pooling -> BN -> ReLU -> 3×3 conv -> BN -> ReLU ->
    global max (or average) pooling -> dropout -> Dense logits.

    Pooling right after a stage's first convolution, *before* its
    normalisation, lets the stage's BN, ReLU and second convolution work on a
    quarter of the pixels (32→16→8→4).  Convolutions have no bias (BN's shift
    replaces it); the head has one Dense layer, so almost all parameters are
    in convolutions.

    Why ``width=32``: on a CPU a convolution's cost grows with the square of
    the width, and in float32 on two cores the book's budget is a CIFAR-10
    chapter under 20 minutes.  Chosen on the validation split (float32,
    seed 0): width 32 trains 3.5× as fast per epoch as width 64 and reaches
    86.4 % validation accuracy in 16 epochs (87.3 % with flip averaging),
    against 88.2 % test for width 64 in 10 epochs; width 48 ends a point
    higher but needs 1.8× the time of width 32 to pass 85 %.  Given about the
    same time, width 32 for 20 epochs beat width 40 for 14 (87.8 % against
    87.2 %; 89.6 % against 88.6 % with six test-time views).

    Parameters
    ----------
    input_shape : (height, width, channels)
        At least 8×8 pixels (the image is halved three times).
    num_classes : int
        At least 2.
    width : int
        Channels of the first stage (at least 2); the stem has half, the later
        stages twice and four times as many.
    dropout : float
        Dropout rate before the logits, in [0, 1) (0: no dropout layer).
    normalizer : keras.layers.Layer, optional
        Applied to the input first (float32).
    dtype : str, optional
        A Keras dtype policy for every layer but the normaliser and the logits
        (which stay float32): ``"mixed_bfloat16"`` computes in bfloat16 with
        float32 weights — much faster on CPUs with AMX/AVX-512-BF16, much
        *slower* on CPUs without them, so measure.  ``None`` uses the global policy.
    fused_batchnorm : bool
        Use :class:`FusedBatchNormalization` rather than Keras'
        ``BatchNormalization`` (same maths, faster on TensorFlow).
    global_pooling : str
        ``"max"`` or ``"avg"``.

    Returns
    -------
    keras.Model
        Logits out (no softmax).
    """
    shape = _check_shape(input_shape, num_classes)
    if min(shape[:2]) < 8:
        raise ValueError(f"cifar_cnn halves the image three times; it needs at least 8×8 pixels, got {shape}.")
    if width < 2:
        raise ValueError(f"width must be at least 2, got {width}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if global_pooling not in ("max", "avg"):
        raise ValueError(f"global_pooling must be 'max' or 'avg', got {global_pooling!r}.")
    _check_dtype(dtype)
    norm_layer = FusedBatchNormalization if fused_batchnorm else layers.BatchNormalization

    def conv(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
        return layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype, name=f"{name}_conv")(x)

    def bn_relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
        x = norm_layer(dtype=dtype, name=f"{name}_bn")(x)
        return layers.ReLU(dtype=dtype, name=f"{name}_relu")(x)

    inputs = keras.Input(shape=shape, name="image")
    x = normalizer(inputs) if normalizer is not None else inputs
    x = bn_relu(conv(x, max(width // 2, 1), "stem"), "stem")
    for stage, mult in enumerate((1, 2, 4), start=1):
        x = conv(x, width * mult, f"stage{stage}a")
        x = layers.MaxPooling2D(2, dtype=dtype, name=f"stage{stage}_pool")(x)
        x = bn_relu(x, f"stage{stage}a")
        x = bn_relu(conv(x, width * mult, f"stage{stage}b"), f"stage{stage}b")
    pool = layers.GlobalMaxPooling2D if global_pooling == "max" else layers.GlobalAveragePooling2D
    x = pool(dtype=dtype, name="global_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, dtype=dtype, name="dropout")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


#: :func:`cifar_resnet`'s ways of halving the image between stages.
DOWNSAMPLING = ("stride", "maxpool", "none")


def residual_block(
    x: keras.KerasTensor,
    filters: int,
    stride: int = 1,
    *,
    plain: bool = False,
    name: str | None = None,
    dtype: str | None = None,
    fused_batchnorm: bool = True,
) -> keras.KerasTensor:
    """A basic residual block (He et al., 2016): ``relu(F(x) + shortcut(x))``.

    ``F`` is 3×3 conv (``stride``) -> BN -> ReLU -> 3×3 conv -> BN, with
    ``filters`` channels and "same" padding.  The shortcut is ``x`` itself
    (an *identity*: no layer, no parameter) when ``F(x)`` has ``x``'s shape,
    that is ``stride == 1`` and ``x`` already has ``filters`` channels;
    otherwise a *projection*: 1×1 conv (``stride``) -> BN, which brings ``x``
    to ``F(x)``'s shape.  With ``plain=True`` there is no shortcut at all:
    ``relu(F(x))``, the same convolutions stacked as in a plain network.

    Convolutions have no bias (BN's shift replaces it), as in
    :func:`cifar_cnn`.

    Parameters
    ----------
    x : keras.KerasTensor
        The block's input, ``(batch, height, width, channels)``.
    filters : int
        Channels of the block's output (at least 1).
    stride : int
        Stride of the first convolution (and of the projection), at least 1;
        2 halves the height and the width ("same" padding: ``ceil(n / 2)``).
    plain : bool
        Leave the shortcut out (a plain block, for comparison).
    name : str, optional
        Prefix of the block's layer names (``<name>_conv1``, ``<name>_add``,
        ...); ``None`` lets Keras name them.
    dtype : str, optional
        Keras dtype policy of the block's layers; ``None`` uses the global policy.
    fused_batchnorm : bool
        Use :class:`FusedBatchNormalization` rather than Keras'
        ``BatchNormalization`` (same maths, faster on TensorFlow).

    Returns
    -------
    keras.KerasTensor
        The block's output, ``(batch, ceil(height / stride),
        ceil(width / stride), filters)``.

    Raises
    ------
    ValueError
        ``x`` is not a 4-D tensor, or ``filters`` or ``stride`` is below 1.
    """
    # FusedBatchNormalization by default, as in cifar_cnn: the same maths and
    # weights as Keras' layer (a saved model loads either way), one fused
    # kernel instead of several passes over the activations.  A residual
    # network has a BN after every convolution, so the passes would cost most.
    if len(x.shape) != 4:
        raise ValueError(
            f"residual_block takes images (batch, height, width, channels), got shape {tuple(x.shape)}."
        )
    if filters < 1:
        raise ValueError(f"filters must be at least 1, got {filters}.")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}.")
    _check_dtype(dtype)
    norm_layer = FusedBatchNormalization if fused_batchnorm else layers.BatchNormalization

    def named(part: str) -> str | None:
        return None if name is None else f"{name}_{part}"

    def conv(t: keras.KerasTensor, size: int, step: int, part: str) -> keras.KerasTensor:
        return layers.Conv2D(filters, size, strides=step, padding="same", use_bias=False, dtype=dtype,
                             name=named(part))(t)

    y = conv(x, 3, stride, "conv1")
    y = norm_layer(dtype=dtype, name=named("bn1"))(y)
    y = layers.ReLU(dtype=dtype, name=named("relu1"))(y)
    y = conv(y, 3, 1, "conv2")
    y = norm_layer(dtype=dtype, name=named("bn2"))(y)
    if not plain:
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:  # F(x) and x differ in shape: project x
            shortcut = conv(x, 1, stride, "proj_conv")
            shortcut = norm_layer(dtype=dtype, name=named("proj_bn"))(shortcut)
        y = layers.Add(dtype=dtype, name=named("add"))([y, shortcut])
    return layers.ReLU(dtype=dtype, name=named("relu"))(y)


def cifar_resnet(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    width: int = 16,
    blocks: int = 2,
    *,
    plain: bool = False,
    downsample: str = "stride",
    normalizer: layers.Layer | None = None,
    dtype: str | None = None,
    fused_batchnorm: bool = True,
) -> keras.Model:
    """A small ResNet for small images: stem, three stages of residual blocks, average pooling, logits.

    ``normalizer`` -> stem: 3×3 conv (``width`` channels) -> BN -> ReLU ->
    three stages of ``blocks`` :func:`residual_block` each, with ``width``,
    ``2·width`` and ``4·width`` channels -> global average pooling -> Dense
    logits.  Stages 2 and 3 halve the image first (32→16→8), as
    ``downsample`` says:

    - ``"stride"``: their first block's first convolution has stride 2 and its
      shortcut is a projection (1×1 conv with stride 2 -> BN), as in He et al.;
    - ``"maxpool"``: a 2×2 max pooling (``"same"`` padding, so the sizes
      match ``"stride"``'s for any input) before the stage, then blocks with
      stride 1 (the first block's shortcut still projects, to the new width);
    - ``"none"``: no halving: every stage works at the full resolution (the
      convolutions cost 4× and 16× as much in stages 2 and 3).

    Every other shortcut is an identity.  With the defaults (width 16, two
    blocks per stage) it has the widths of He et al.'s CIFAR-10 ResNets and
    14 weighted layers on the main path (13 convolutions and the Dense
    layer): a ResNet-14.  ``plain=True`` builds the same network without the
    shortcuts (no Add, no projection), to compare plain and residual networks
    of the same depth.

    Parameters
    ----------
    input_shape : (height, width, channels)
        At least 4×4 pixels (the image is halved twice); e.g. ``(32, 32, 3)``
        (CIFAR-10) or ``(28, 28, 1)`` (MNIST, Fashion-MNIST: 28→14→7).
    num_classes : int
        At least 2.
    width : int
        Channels of the stem and the first stage (at least 1); the later
        stages have twice and four times as many.
    blocks : int
        Residual blocks per stage (at least 1): the main path has
        ``6·blocks + 2`` weighted layers.
    plain : bool
        No shortcuts (see :func:`residual_block`).
    downsample : str
        ``"stride"``, ``"maxpool"`` or ``"none"`` (:data:`DOWNSAMPLING`).
    normalizer : keras.layers.Layer, optional
        Applied to the input first (e.g. :func:`channel_normalizer`).
    dtype : str, optional
        A Keras dtype policy for every layer but the normaliser and the
        logits (which stay float32), as in :func:`cifar_cnn`; ``None`` uses
        the global policy.
    fused_batchnorm : bool
        Use :class:`FusedBatchNormalization` rather than Keras'
        ``BatchNormalization`` (same maths, faster on TensorFlow).

    Returns
    -------
    keras.Model
        Logits out (no softmax), named ``cifar_resnet`` (``cifar_plain`` with
        ``plain=True``).  Layers are named ``stem_conv``,
        ``stage<s>_block<b>_conv1`` ... ``_add``, ``stage<s>_pool``
        (``"maxpool"``), ``global_pool`` and ``logits``.

    Raises
    ------
    ValueError
        An argument out of range.
    """
    shape = _check_shape(input_shape, num_classes)
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}.")
    if blocks < 1:
        raise ValueError(f"blocks (per stage) must be at least 1, got {blocks}.")
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"downsample must be one of {', '.join(map(repr, DOWNSAMPLING))}, got {downsample!r}.")
    if downsample != "none" and min(shape[:2]) < 4:
        raise ValueError(f"cifar_resnet halves the image twice; it needs at least 4×4 pixels, got {shape}.")
    _check_dtype(dtype)
    norm_layer = FusedBatchNormalization if fused_batchnorm else layers.BatchNormalization

    inputs = keras.Input(shape=shape, name="image")
    x = normalizer(inputs) if normalizer is not None else inputs
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, dtype=dtype, name="stem_conv")(x)
    x = norm_layer(dtype=dtype, name="stem_bn")(x)
    x = layers.ReLU(dtype=dtype, name="stem_relu")(x)
    for stage, mult in enumerate((1, 2, 4), start=1):
        halve = stage > 1 and downsample != "none"
        if halve and downsample == "maxpool":
            x = layers.MaxPooling2D(2, padding="same", dtype=dtype, name=f"stage{stage}_pool")(x)
        for block in range(1, blocks + 1):
            stride = 2 if halve and downsample == "stride" and block == 1 else 1
            x = residual_block(x, width * mult, stride, plain=plain, name=f"stage{stage}_block{block}",
                               dtype=dtype, fused_batchnorm=fused_batchnorm)
    x = layers.GlobalAveragePooling2D(dtype=dtype, name="global_pool")(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_plain" if plain else "cifar_resnet")


def with_softmax(model: keras.Model) -> keras.Model:
    """``model`` followed by a softmax: probabilities out (for a loss with ``from_logits=False``).

    Parameters
    ----------
    model : keras.Model
        A logits model with one input and one output (its layers are shared, not copied).

    Returns
    -------
    keras.Model
        Named ``<model.name>_softmax``.
    """
    outputs = layers.Softmax(name="softmax")(model.outputs[0])
    return keras.Model(model.inputs[0], outputs, name=f"{model.name}_softmax")
