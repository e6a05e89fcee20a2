"""Keras model builders.  Every model returns **logits** (no softmax layer):
train with ``SparseCategoricalCrossentropy(from_logits=True)`` and apply
``keras.activations.softmax`` (or :func:`cnnbook.evaluation.predict_proba`) to
read probabilities.  This module imports only Keras.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

__all__ = [
    "article_cnn",
    "cifar_augmentation",
    "cifar_cnn",
    "conv_bn_relu",
    "dense_net",
    "keras_io_convnet",
    "mnist_cnn",
    "mnist_cnn_sequential",
    "with_softmax",
]


def _check_shape(input_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    return shape


def conv_bn_relu(x: keras.KerasTensor, filters: int, name: str, strides: int = 1) -> keras.KerasTensor:
    """3×3 convolution (no bias: BatchNorm's shift replaces it) → BatchNorm → ReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def mnist_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64),
    dropout: float = 0.25,
) -> keras.Model:
    """The book's Part I CNN (Functional API).

    Two stages of two conv–BN–ReLU blocks, each stage ending in 2×2 max pooling
    (28→14→7), then global average pooling, dropout and a Dense logits layer.
    Batch normalisation is what lets it train in a few epochs with a high
    learning rate; global average pooling keeps the classifier tiny.
    """
    shape = _check_shape(input_shape, num_classes)
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for stage, width in enumerate(filters, start=1):
        x = conv_bn_relu(x, width, name=f"stage{stage}a")
        x = conv_bn_relu(x, width, name=f"stage{stage}b")
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def mnist_cnn_sequential(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64),
    dropout: float = 0.25,
) -> keras.Sequential:
    """The same network as :func:`mnist_cnn`, written with the Sequential API."""
    shape = _check_shape(input_shape, num_classes)
    stack: list[layers.Layer] = [keras.Input(shape=shape)]
    for width in filters:
        for _ in range(2):
            stack += [
                layers.Conv2D(width, 3, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
            ]
        stack.append(layers.MaxPooling2D(2))
    stack += [layers.GlobalAveragePooling2D(), layers.Dropout(dropout), layers.Dense(num_classes)]
    return keras.Sequential(stack, name="mnist_cnn_sequential")


def keras_io_convnet(input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """keras-io's "Simple MNIST convnet" (fchollet), re-implemented from its description.

    Conv(32, 3×3, ReLU) → MaxPool 2 → Conv(64, 3×3, ReLU) → MaxPool 2 → Flatten →
    Dropout 0.5 → Dense.  The original ends in a softmax; here the Dense layer
    returns logits (same network, numerically safer loss).
    """
    shape = _check_shape(input_shape, num_classes)
    return keras.Sequential(
        [
            keras.Input(shape=shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes),
        ],
        name="keras_io_convnet",
    )


def article_cnn(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10) -> keras.Model:
    """The source article's network (TensorFlow's CNN tutorial), repaired: logits out.

    Conv(32) → MaxPool → Conv(64) → MaxPool → Conv(64) → Flatten → Dense(64) → Dense.
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


def dense_net(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    hidden: Sequence[int] = (256, 128),
    dropout: float = 0.2,
) -> keras.Model:
    """A fully connected network on the flattened pixels: the "no convolution" baseline."""
    shape = _check_shape(input_shape, num_classes)
    stack: list[layers.Layer] = [keras.Input(shape=shape), layers.Flatten()]
    for units in hidden:
        stack += [layers.Dense(units, activation="relu"), layers.Dropout(dropout)]
    stack.append(layers.Dense(num_classes))
    return keras.Sequential(stack, name="dense_net")


def cifar_augmentation(seed: int | None = None) -> keras.Sequential:
    """Random horizontal flip and small translations, for colour images (training only)."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=seed),
        ],
        name="augmentation",
    )


def cifar_cnn(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    width: int = 32,
    dropout: float = 0.2,
) -> keras.Model:
    """A compact modern CNN for colour images (placeholder; tuned in the CIFAR-10 chapter)."""
    shape = _check_shape(input_shape, num_classes)
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for stage, mult in enumerate((1, 2, 4), start=1):
        x = conv_bn_relu(x, width * mult, name=f"stage{stage}a")
        x = conv_bn_relu(x, width * mult, name=f"stage{stage}b")
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


def with_softmax(model: keras.Model) -> keras.Model:
    """``model`` followed by a softmax: probabilities out (for a loss with ``from_logits=False``)."""
    outputs = layers.Softmax(name="softmax")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=f"{model.name}_softmax")
