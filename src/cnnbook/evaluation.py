"""Measuring a trained classifier: probabilities, confusion matrix, per-class report,
confident mistakes, calibration and top-k predictions.

Everything here works on arrays (labels, probabilities) or calls an already
trained model (its ``predict``, or the model itself); nothing trains.
TensorFlow is never imported: a model is used only through those calls.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import conv

__all__ = [
    "Calibration",
    "McNemar",
    "Table",
    "VERDICTS",
    "VIEWS",
    "accuracy",
    "accuracy_interval",
    "calibration",
    "change_beyond_noise",
    "choose_views",
    "classification_report",
    "confusion_matrix",
    "ensemble_accuracies",
    "ensemble_average",
    "images_per_second",
    "majority_vote",
    "mcnemar",
    "member_probabilities",
    "most_confident_mistakes",
    "predict_labels",
    "predict_proba",
    "predict_views",
    "history_table",
    "report_table",
    "top_k",
    "verdict",
]


# --- Small checks -----------------------------------------------------------------


def _labels(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices; got shape {y.shape}.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices (not one-hot rows or probabilities).")
        y = y.astype(np.int64)
    return y.astype(np.int64, copy=False)


def _probs(probs: Any) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be an N×K array of class probabilities (K ≥ 2); got shape {p.shape}.")
    if p.size and (p.min() < -1e-6 or np.abs(p.sum(axis=1) - 1).max() > 1e-3):
        raise ValueError("probs rows must be probabilities summing to 1; pass conv.softmax(logits) "
                         "(evaluation.predict_proba does this for a logits model).")
    return p


def _same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{names} must have the same length; got {len(a)} and {len(b)}.")


# --- Predictions ------------------------------------------------------------------


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


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the labels.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices (``N`` or ``N×1``), same length, at least one.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true and y_pred")
    if y_true.size == 0:
        raise ValueError("accuracy of zero examples is undefined.")
    return float(np.mean(y_true == y_pred))


def _members(member_probs: Sequence[Any]) -> np.ndarray:
    if len(member_probs) == 0:
        raise ValueError("An ensemble needs at least one member's probabilities.")
    probs = [_probs(p) for p in member_probs]
    shapes = {p.shape for p in probs}
    if len(shapes) != 1:
        raise ValueError(f"Every member must score the same images and classes; got shapes {sorted(shapes)}.")
    return np.stack(probs)


def ensemble_average(member_probs: Sequence[Any]) -> np.ndarray:
    """The ensemble's probabilities: the mean of its members' ``N×K`` probabilities (soft voting).

    Parameters
    ----------
    member_probs : sequence of array-like
        One ``N×K`` probability array per member, all of the same shape.

    Returns
    -------
    numpy.ndarray
        float32 ``N×K`` mean probabilities.
    """
    return _members(member_probs).mean(axis=0).astype(np.float32)


def majority_vote(member_probs: Sequence[Any]) -> np.ndarray:
    """The ensemble's predictions by hard voting: each member votes for its top class.

    Ties go to the class with the higher mean probability among the tied ones.

    Parameters
    ----------
    member_probs : sequence of array-like
        One ``N×K`` probability array per member, all of the same shape.

    Returns
    -------
    numpy.ndarray
        ``N`` predicted class indices.
    """
    stack = _members(member_probs)
    n_classes = stack.shape[2]
    votes = np.zeros(stack.shape[1:], dtype=np.float64)
    np.add.at(votes, (np.arange(stack.shape[1])[None, :], stack.argmax(axis=2)), 1.0)
    # A tie-break well below one vote: the mean probability, scaled into [0, 0.5).
    return (votes + 0.5 * stack.mean(axis=0) / max(n_classes, 1)).argmax(axis=1)


def ensemble_accuracies(member_probs: Sequence[Any], y_true: Any) -> list[float]:
    """Accuracy of the soft-voting ensemble of the first 1, 2, …, M members, in order.

    Parameters
    ----------
    member_probs : sequence of array-like
        One ``N×K`` probability array per member, in the order they join.
    y_true : array-like of int
        ``N`` true class indices.

    Returns
    -------
    list of float
        ``M`` accuracies; element ``k`` is that of the first ``k + 1`` members.
    """
    stack = _members(member_probs)
    y = _labels(y_true, "y_true")
    _same_length(stack[0], y, "each member's probabilities and y_true")
    running = np.cumsum(stack, axis=0)  # the sum of the first k members has the same argmax as their mean
    return [accuracy(y, running[k].argmax(axis=1)) for k in range(len(stack))]


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for an accuracy of ``correct`` out of ``n`` test examples.

    The test set is a sample: had it held other digits, the accuracy would differ a
    little.  The interval says how much (at the given confidence level).

    Parameters
    ----------
    correct : int
        Correctly classified examples, ``0 <= correct <= n``.
    n : int
        Test examples, at least 1.
    confidence : float
        Confidence level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        The interval's bounds, within [0, 1].
    """
    from statistics import NormalDist

    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"Need 0 <= correct <= n and n >= 1; got correct={correct}, n={n}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return float(low), float(high)


@dataclass(frozen=True)
class McNemar:
    """An exact McNemar test of two classifiers on the same examples.

    ``only_a``: examples only classifier A gets right; ``only_b``: only B.
    Examples both get right, or both wrong, say nothing about which is better.
    ``p_value``: two-sided exact p-value of "A and B are equally accurate".
    """

    only_a: int
    only_b: int
    p_value: float

    def significant(self, level: float = 0.05) -> bool:
        """True when ``p_value`` is below ``level``.

        Parameters
        ----------
        level : float
            The significance level (default 5 %).

        Returns
        -------
        bool
        """
        return self.p_value < level


def mcnemar(correct_a: Any, correct_b: Any) -> McNemar:
    """Exact McNemar test: do classifiers A and B differ in accuracy on these examples?

    Parameters
    ----------
    correct_a, correct_b : array-like of bool
        Per example, whether A (resp. B) classified it correctly; same examples, same order.

    Returns
    -------
    McNemar
        The two discordant counts and the two-sided exact p-value: under the
        hypothesis of equal accuracy each discordant example is a fair coin
        toss between A and B (binomial with p = 1/2).
    """
    from math import comb

    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    _same_length(a, b, "correct_a and correct_b")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return McNemar(0, 0, 1.0)
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return McNemar(only_a, only_b, float(min(1.0, 2 * tail)))


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


def top_k(probs: Any, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes and their probabilities, most probable first.

    ``probs`` is one probability vector (``K``) or a batch (``N×K``); the result
    is ``(classes, probabilities)`` of shape ``k`` or ``N×k``.  Ties go to the
    smaller class index.

    Parameters
    ----------
    probs : array-like
        ``K`` or ``N×K`` probabilities (or any scores).
    k : int
        How many classes, ``1 <= k <= K``.

    Returns
    -------
    (classes, probabilities) : tuple of numpy.ndarray
        Class indices and their values, shape ``k`` or ``N×k``.
    """
    p = np.asarray(probs)
    if p.ndim not in (1, 2):
        raise ValueError(f"probs must be K or N×K; got shape {p.shape}.")
    if not 1 <= k <= p.shape[-1]:
        raise ValueError(f"k must be between 1 and the number of classes ({p.shape[-1]}); got {k}.")
    order = np.argsort(-p, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(p, order, axis=-1)


#: The three verdicts a claim checked against measurements can get (:func:`verdict`).
VERDICTS = ("holds", "partly holds", "does not hold")


def verdict(holds: bool, partly: bool) -> str:
    """The verdict on a claim, from its stated rule.

    Parameters
    ----------
    holds : bool
        Whether the measurements meet the rule for "holds".
    partly : bool
        Whether they meet the weaker rule for "partly holds" (looked at only
        when ``holds`` is false).

    Returns
    -------
    str
        ``"holds"``, ``"partly holds"`` or ``"does not hold"`` (:data:`VERDICTS`).
    """
    return VERDICTS[0 if holds else 1 if partly else 2]


def change_beyond_noise(difference: float, noise: float) -> str:
    """What a difference between two settings means, given the run-to-run noise.

    A difference no larger than ``noise`` (e.g. the spread of accuracies over
    seeds) is no measurable difference.

    Parameters
    ----------
    difference : float
        The change of the measurement, e.g. in accuracy points (positive: higher).
    noise : float
        The largest change chance alone produces (at least 0), in the same unit.

    Returns
    -------
    str
        ``"raised accuracy"``, ``"lowered accuracy"`` or ``"no measurable difference"``.
    """
    if noise < 0:
        raise ValueError(f"noise is a spread, at least 0; got {noise}.")
    if difference > noise:
        return "raised accuracy"
    if difference < -noise:
        return "lowered accuracy"
    return "no measurable difference"


# --- Confusion matrix and per-class report ----------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """``num_classes × num_classes`` counts: row = true class, column = predicted class.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices in ``0 … num_classes - 1``, same length.
    num_classes : int
        Number of classes (positive).

    Returns
    -------
    numpy.ndarray
        int64 ``num_classes × num_classes`` counts.
    """
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true and y_pred")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} has class indices outside 0..{num_classes - 1}.")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def classification_report(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, from scikit-learn.

    The same dictionary as ``sklearn.metrics.classification_report(..., output_dict=True)``:
    one entry per class name (``{"precision", "recall", "f1-score", "support"}``),
    plus ``"accuracy"``, ``"macro avg"`` and ``"weighted avg"``.  Every class
    is listed even when absent from ``y_true`` (its scores are then 0).

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices, same length, at least one.
    class_names : sequence of str
        Distinct names, one per class index.

    Returns
    -------
    dict
        The report, ready for :func:`report_table`.
    """
    from sklearn.metrics import classification_report as sk_report

    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    _same_length(y_true, y_pred, "y_true and y_pred")
    if y_true.size == 0:
        raise ValueError("classification_report needs at least one example.")
    names = [str(c) for c in class_names]
    if len(set(names)) != len(names):
        raise ValueError("class_names must be distinct.")
    report = sk_report(y_true, y_pred, labels=list(range(len(names))), target_names=names,
                       output_dict=True, zero_division=0)
    # scikit-learn omits "accuracy" when labels= is given and some classes never occur.
    report.setdefault("accuracy", accuracy(y_true, y_pred))
    return report


@dataclass(frozen=True)
class Table:
    """A small table that shows as HTML in a notebook and as aligned text elsewhere."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str | None = None

    def _cells(self) -> list[list[str]]:
        return [[c if isinstance(c, str) else f"{c}" for c in row] for row in self.rows]

    def __str__(self) -> str:
        cells = [list(self.columns)] + self._cells()
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.caption:
            lines.insert(0, self.caption)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._cells()
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def history_table(
    history: dict[str, Sequence[float]],
    epoch_seconds: Sequence[float] | None = None,
    *,
    caption: str | None = None,
) -> Table:
    """One row per epoch of a Keras training history: the compact form of ``fit``'s log.

    Parameters
    ----------
    history : dict of str to sequence of float
        ``History.history`` (or :attr:`cnnbook.training.TrainResult.history`): per-epoch
        ``loss`` and, where present, ``accuracy``, ``val_loss``, ``val_accuracy``.
    epoch_seconds : sequence of float, optional
        Wall-clock seconds of each epoch, shown as a last column.
    caption : str, optional
        Shown above the table.

    Returns
    -------
    Table
        Columns: epoch, then the losses (4 decimals) and accuracies (percent, 2 decimals) found.
    """
    if "loss" not in history:
        raise ValueError(f"history must hold at least 'loss' for each epoch; it has {sorted(history)}.")
    epochs = len(history["loss"])
    names = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in history]
    for name in names:
        if len(history[name]) != epochs:
            raise ValueError(f"history[{name!r}] has {len(history[name])} values for {epochs} epochs.")
    if epoch_seconds is not None and len(epoch_seconds) != epochs:
        raise ValueError(f"epoch_seconds has {len(epoch_seconds)} values for {epochs} epochs.")
    columns = ["epoch"] + [n.replace("val_", "validation ").replace("_", " ") for n in names]
    rows = []
    for e in range(epochs):
        row: list[Any] = [f"{e + 1}"]
        for name in names:
            value = float(history[name][e])
            row.append(f"{value:.2%}" if name.endswith("accuracy") else f"{value:.4f}")
        if epoch_seconds is not None:
            row.append(f"{float(epoch_seconds[e]):.1f}")
        rows.append(tuple(row))
    if epoch_seconds is not None:
        columns.append("seconds")
    return Table(tuple(columns), tuple(rows), caption)


def report_table(report: dict[str, Any], digits: int = 3) -> Table:
    """The per-class report of :func:`classification_report` as a :class:`Table`.

    Parameters
    ----------
    report : dict
        What :func:`classification_report` returned.
    digits : int
        Decimals shown for precision, recall and F1 (non-negative).

    Returns
    -------
    Table
        One row per class and average, then an ``accuracy`` row.
    """
    if digits < 0:
        raise ValueError(f"digits must be non-negative, got {digits}.")
    rows = []
    for name, scores in report.items():
        if not isinstance(scores, dict):
            continue
        rows.append((
            name,
            f"{scores['precision']:.{digits}f}",
            f"{scores['recall']:.{digits}f}",
            f"{scores['f1-score']:.{digits}f}",
            f"{int(scores['support'])}",
        ))
    if "accuracy" in report:
        support = next((s["support"] for n, s in report.items() if n == "macro avg"), None)
        rows.append(("accuracy", "", "", f"{report['accuracy']:.{digits}f}",
                     f"{int(support)}" if support is not None else ""))
    return Table(("class", "precision", "recall", "F1", "support"), tuple(rows))


# --- Mistakes and calibration ------------------------------------------------------


def most_confident_mistakes(probs: Any, y_true: Any, k: int = 16) -> np.ndarray:
    """Indices of the (at most) ``k`` wrong predictions made with the highest confidence.

    Sorted by the probability the model gave its (wrong) prediction, highest first.
    Fewer than ``k`` indices come back when the model made fewer mistakes.

    Parameters
    ----------
    probs : array-like
        ``N×K`` probabilities.
    y_true : array-like of int
        ``N`` true class indices.
    k : int
        Most indices returned (non-negative).

    Returns
    -------
    numpy.ndarray
        Indices into ``probs`` / ``y_true``.
    """
    p = _probs(probs)
    y = _labels(y_true, "y_true")
    _same_length(p, y, "probs and y_true")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}.")
    pred = p.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = np.argsort(-p[wrong, pred[wrong]], kind="stable")
    return wrong[order[:k]]


@dataclass(frozen=True)
class Calibration:
    """How well confidence matches accuracy, in equal-width confidence bins.

    ``accuracy[i]`` and ``confidence[i]`` are the accuracy and the mean top-1
    probability of the predictions whose confidence falls in
    ``(bin_edges[i], bin_edges[i+1]]`` (NaN for an empty bin); ``counts[i]`` how
    many there are.  ``ece`` is the expected calibration error,
    ``Σ counts/N · |accuracy − confidence|``; ``mce`` the largest bin gap.
    """

    bin_edges: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    counts: np.ndarray
    ece: float
    mce: float
    overall_accuracy: float
    mean_confidence: float
    n: int = field(default=0)

    @property
    def centres(self) -> np.ndarray:
        """Middle of each bin."""
        return (self.bin_edges[:-1] + self.bin_edges[1:]) / 2


def calibration(probs: Any, y_true: Any, n_bins: int = 10) -> Calibration:
    """Reliability statistics of the top-1 predictions (see :class:`Calibration`).

    Parameters
    ----------
    probs : array-like
        ``N×K`` probabilities, at least one row.
    y_true : array-like of int
        ``N`` true class indices.
    n_bins : int
        Equal-width confidence bins over [0, 1] (at least 1).

    Returns
    -------
    Calibration
        Per-bin accuracy, confidence and counts, ECE and MCE.
    """
    p = _probs(probs)
    y = _labels(y_true, "y_true")
    _same_length(p, y, "probs and y_true")
    if len(y) == 0:
        raise ValueError("calibration needs at least one prediction.")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}.")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins (edges[i], edges[i+1]]; a confidence of exactly 0 joins the first.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / counts
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
    used = counts > 0
    gaps = np.abs(acc - mean_conf)[used]
    ece = float(np.sum(counts[used] / len(y) * gaps))
    return Calibration(
        bin_edges=edges,
        accuracy=acc,
        confidence=mean_conf,
        counts=counts.astype(np.int64),
        ece=ece,
        mce=float(gaps.max()),
        overall_accuracy=float(correct.mean()),
        mean_confidence=float(conf.mean()),
        n=int(len(y)),
    )
