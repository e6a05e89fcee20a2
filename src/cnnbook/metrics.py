"""Scores of a classifier's predictions: accuracy, ensembles' votes, top-k, confusion
matrix, per-class report, confident mistakes and calibration.

Everything here works on arrays (labels, probabilities); nothing calls a model.
Part of :mod:`cnnbook.evaluation`, which imports it back (``evaluation.accuracy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = [
    "Calibration",
    "accuracy",
    "calibration",
    "classification_report",
    "confusion_matrix",
    "ensemble_accuracies",
    "ensemble_average",
    "majority_vote",
    "most_confident_mistakes",
    "top_k",
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


# --- Accuracy and ensembles -------------------------------------------------------


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
