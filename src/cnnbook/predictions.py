"""Calling a trained classifier: probabilities, labels, test-time views, ensemble
members, prediction throughput.

A model is used only through its ``predict`` (or by calling it, batch by batch);
TensorFlow is never imported.  Part of :mod:`cnnbook.evaluation`, which imports
it back (``evaluation.predict_proba``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import conv
from .metrics import accuracy

__all__ = [
    "VIEWS",
    "choose_views",
    "images_per_second",
    "member_probabilities",
    "predict_labels",
    "predict_proba",
    "predict_views",
]


def predict_proba(model: Any, x: Any, batch_size: int = 1024, *, from_logits: bool = True) -> np.ndarray:
    """Class probabilities ``N×K`` of a trained Keras model on ``x``.

    The book's models output logits, so the softmax is applied here
    (``from_logits=False`` for a model that already ends in a softmax).

    Parameters
    ----------
    model : keras.Model
        Anything with ``predict(x, batch_size=..., verbose=0)`` returning ``N×K`` scores.
    x : array-like
        The inputs, e.g. ``splits.x_test``.
    batch_size : int
        Batch size of ``predict`` (at least 1).
    from_logits : bool
        Whether the model's outputs are logits (then softmaxed here).

    Returns
    -------
    numpy.ndarray
        float32 ``N×K`` probabilities.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if out.ndim != 2:
        raise ValueError(f"the model's output should be N×K scores; got shape {out.shape}.")
    if not from_logits:
        return out.astype(np.float32)
    return conv.softmax(out.astype(np.float64)).astype(np.float32)  # float64 inside, float32 out


#: Test-time views of :func:`predict_views`, by name, each with its forward passes per image (cheapest
#: first): the image alone; with its mirror image; with both moved one pixel diagonally each way as well
#: (the mirror, and shifts of 1 px, are among the variations the colour chapter's augmentation trains on).
VIEWS = {"plain": 1, "flip": 2, "flip_shift": 6}


def predict_views(model: Any, images: Any, views: str = "flip", batch_size: int = 1024) -> np.ndarray:
    """Mean logits of ``model`` over test-time views of each image (test-time augmentation).

    ``"plain"`` is one ``predict``; ``"flip"`` averages each image with its
    left–right mirror image (2 views); ``"flip_shift"`` adds the image and its
    mirror moved by one pixel down-right and up-left, the border filled by
    reflection (6 views).  Only views the model saw during training help: use
    it for a model trained with flips and shifts, and decide which views to use
    on validation data.

    Parameters
    ----------
    model : keras.Model
        Anything with ``predict(x, batch_size=..., verbose=0)`` returning ``N×K`` scores.
    images : array-like
        ``N×H×W×C`` images, at least 2×2 pixels.
    views : str
        One of :data:`VIEWS`.
    batch_size : int
        Batch size of ``predict`` (at least 1).

    Returns
    -------
    numpy.ndarray
        float32 ``N×K``, the mean of the model's outputs over the views.
    """
    if views not in VIEWS:
        raise ValueError(f"views must be one of {', '.join(VIEWS)}; got {views!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    x = np.asarray(images)
    if x.ndim != 4 or min(x.shape[1:3]) < 2:
        raise ValueError(f"images must be N×H×W×C with at least 2×2 pixels; got shape {x.shape}.")
    variants = [x]
    if views in ("flip", "flip_shift"):
        variants.append(x[:, :, ::-1])
    if views == "flip_shift":
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        height, width = x.shape[1:3]
        for start in (0, 2):  # a window starting at 0 moves the content down-right, at 2 up-left
            moved = padded[:, start:start + height, start:start + width]
            variants += [moved, moved[:, :, ::-1]]
    total = None
    for variant in variants:
        out = np.asarray(model.predict(variant, batch_size=batch_size, verbose=0), dtype=np.float64)
        if out.ndim != 2:
            raise ValueError(f"the model's output should be N×K scores; got shape {out.shape}.")
        total = out if total is None else total + out
    return (total / len(variants)).astype(np.float32)


def choose_views(model: Any, x_val: Any, y_val: Any, batch_size: int = 1024) -> tuple[str, dict[str, float]]:
    """The test-time views of :data:`VIEWS` that score best on validation data (the cheapest of equals).

    Choose on the validation split, then evaluate the choice once on the test
    split: choosing on the test split would report the best of three tries.

    Parameters
    ----------
    model : keras.Model
        As for :func:`predict_views`.
    x_val : array-like
        ``N×H×W×C`` validation images.
    y_val : array-like
        Their ``N`` integer labels.
    batch_size : int
        Batch size of ``predict`` (at least 1).

    Returns
    -------
    views : str
        The chosen key of :data:`VIEWS`, to pass to :func:`predict_views`.
    accuracies : dict of str to float
        The validation accuracy under each of :data:`VIEWS`, in its order.
    """
    accuracies = {
        views: accuracy(y_val, predict_views(model, x_val, views, batch_size=batch_size).argmax(axis=1))
        for views in VIEWS
    }
    return max(VIEWS, key=accuracies.get), accuracies  # max keeps the first of equals, the cheapest


def member_probabilities(model: Any, x: Any, batch_size: int = 1024) -> list[np.ndarray]:
    """Each member's class probabilities, from one ``predict`` of an ensemble trained as one model.

    ``model`` is the joint model of :func:`cnnbook.training.train_ensemble`,
    whose output stacks the members' logits as ``N × members × K``.

    Parameters
    ----------
    model : keras.Model
        Anything with ``predict(x, batch_size=..., verbose=0)`` returning ``N × members × K`` logits.
    x : array-like
        The inputs.
    batch_size : int
        Batch size of ``predict`` (at least 1).

    Returns
    -------
    list of numpy.ndarray
        One float32 ``N×K`` probability array per member, in the members' order
        (for :func:`ensemble_average`, :func:`majority_vote`, ...).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if out.ndim != 3:
        raise ValueError(f"the model's output should stack the members' logits as N × members × K; got {out.shape}.")
    probs = conv.softmax(out.astype(np.float64)).astype(np.float32)  # float64 inside, float32 out
    return [probs[:, member] for member in range(out.shape[1])]


def predict_labels(model: Any, images: Any, batch_size: int = 1024) -> np.ndarray:
    """Predicted class indices of a Keras model or of a fitted scikit-learn classifier.

    One call for both kinds of model, so that a comparison scores them alike: a
    Keras model gets the images as they are and its outputs (logits or
    probabilities: the argmax is the same) are reduced to the best class; a
    scikit-learn classifier gets each image flattened to one row of pixels, as
    it was trained (:func:`cnnbook.baselines.flatten`).

    Parameters
    ----------
    model : keras.Model or scikit-learn classifier
        A Keras model (anything callable as ``model(x, training=False)``
        returning ``n×K`` scores for a batch of ``n`` images), or a fitted
        scikit-learn classifier (it has ``get_params`` and ``classes_``)
        trained on flattened images.
    images : array-like
        ``N×H×W(×C)`` images, at least one.
    batch_size : int
        Images per call of the Keras model (at least 1); not used by
        scikit-learn.

    Returns
    -------
    numpy.ndarray
        ``N`` int64 class indices.

    Raises
    ------
    ValueError
        No images, a bad batch size, an unfitted scikit-learn model, or a
        Keras model whose output is not ``N×K``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    x = np.asarray(images)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"images must be a non-empty batch N×H×W(×C); got shape {x.shape}.")
    if hasattr(model, "get_params"):  # a scikit-learn estimator (Keras models have no get_params)
        if not hasattr(model, "classes_"):
            raise ValueError(f"{type(model).__name__} is not a fitted classifier: fit it first.")
        return np.asarray(model.predict(x.reshape(len(x), -1))).astype(np.int64)
    if not callable(model):
        raise ValueError(f"expected a Keras model or a scikit-learn classifier, got {type(model).__name__}.")
    # Calling the model eagerly, batch by batch, rather than model.predict: a chapter that scores
    # many freshly built models would otherwise trace a new predict function for each (and TensorFlow
    # warns about the retracing).
    scores = np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                             for i in range(0, len(x), batch_size)])
    if scores.ndim != 2 or len(scores) != len(x):
        raise ValueError(f"the model's output should be N×K scores for N = {len(x)}; got shape {scores.shape}.")
    return scores.argmax(axis=1).astype(np.int64)


def images_per_second(networks: Sequence[Any], images: Any, batch_size: int = 1024, repeats: int = 3) -> float:
    """Prediction throughput: ``len(images)`` / median seconds for every network to predict them.

    Parameters
    ----------
    networks : sequence of models
        Each is called through its ``predict`` (an ensemble's members, or one model).
    images : array
        The images to predict, e.g. the test split.
    batch_size, repeats : int
        Batch size of ``predict``; timed passes (after one untimed warm-up pass).

    Returns
    -------
    float
        Images per second for the whole sequence of networks.
    """
    import statistics
    import time

    if repeats < 1 or not len(networks) or not len(images):
        raise ValueError("images_per_second needs at least one network, one image and one repeat.")
    for network in networks:
        network.predict(images, batch_size=batch_size, verbose=0)  # warm-up: graph built, caches filled
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for network in networks:
            network.predict(images, batch_size=batch_size, verbose=0)
        passes.append(time.perf_counter() - start)
    return len(images) / statistics.median(passes)
