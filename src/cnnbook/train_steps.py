"""Training steps on a given model, without a recipe: how fast this machine takes them.

:func:`training_throughput` — training images per second of a model on this
machine, to compare precisions or layers before a long run.

Part of the training engine (:mod:`cnnbook.engine` imports it back), kept in a
module of its own because it imports only the standard library and NumPy at
import time (Keras inside the function): :mod:`cnnbook.hardware`, which
imports it back too (``hardware.training_throughput``), stays free of
TensorFlow until a function needs it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["training_throughput"]


def training_throughput(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int = 10,
    optimizer: Any = None,
) -> float:
    """Training images per second of ``model`` on one batch (``images``), repeated ``steps`` times.

    The first step, which builds and compiles the graph, is not timed.  Use it
    to compare precisions or layers on *this* machine before a long run; it
    changes ``model``'s weights, so measure on a throw-away copy.

    Parameters
    ----------
    model : keras.Model
        A logits model (it is compiled here, with a ``from_logits=True`` loss).
    images : numpy.ndarray
        One batch of inputs, non-empty.
    labels : numpy.ndarray
        One class index per image.
    steps : int
        Timed training steps (at least 1).
    optimizer : keras.optimizers.Optimizer, optional
        Default ``Adam(learning_rate=1e-3)``.

    Returns
    -------
    float
        Images per second over the timed steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"Need a non-empty batch with one label per image, got {len(images)} and {len(labels)}.")
    import keras

    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.train_on_batch(images, labels)  # builds the graph: not timed
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * len(images) / (time.perf_counter() - start)
