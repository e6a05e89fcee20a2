"""Traditional (non-convolutional) classifiers and the helpers to compare them fairly.

The book's comparison chapter puts scikit-learn classifiers beside Keras
networks on one fixed split.  This module holds the pieces that are not Keras:

* :func:`logistic_regression`, :func:`random_forest`, :func:`rbf_svm` — the
  classical models, with the settings of the Fashion-MNIST benchmark
  (Xiao, Rasul & Vollgraf, 2017) so our numbers can be checked against it;
* :func:`fit_timed` — train on image arrays and time the fit (flattened to one
  row of pixels per image, which is all these models see); score a fitted
  model with :func:`cnnbook.evaluation.predict_labels` and
  :func:`cnnbook.evaluation.accuracy`, as a Keras model;
* :func:`parameter_count` — how many learned numbers a fitted model stores;
* :func:`shift_images` and :func:`random_shifts` — move digits a few pixels, to
  measure how robust each model is to translation.

It imports NumPy and scikit-learn only (scikit-learn and its ``threadpoolctl``
inside the functions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FitResult",
    "fit_timed",
    "flatten",
    "logistic_regression",
    "parameter_count",
    "random_forest",
    "random_shifts",
    "rbf_svm",
    "shift_images",
]


# --- Data shape helpers ------------------------------------------------------------


def flatten(images: np.ndarray) -> np.ndarray:
    """One row per image: ``N×H×W(×C)`` → ``N×(H·W·C)`` (a view when possible).

    This is exactly the information a classical classifier gets: the pixels as
    an unordered list of numbers — which pixel is next to which is lost.

    Parameters
    ----------
    images : array-like
        A batch of images, ``N×H×W`` or ``N×H×W×C`` (any array with a first axis
        of examples and at least two dimensions).

    Returns
    -------
    numpy.ndarray
        ``N×(H·W·C)``, same dtype as ``images``.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"Expected a batch of images (N×H×W or N×H×W×C), got shape {images.shape}.")
    return images.reshape(len(images), -1)


def shift_images(images: np.ndarray, shifts: tuple[int, int] | np.ndarray) -> np.ndarray:
    """Move images by whole pixels, filling the uncovered border with zeros (no wrap-around).

    Parameters
    ----------
    images : array-like
        ``N×H×W`` or ``N×H×W×C``.
    shifts : tuple of int or numpy.ndarray
        ``(rows, columns)`` for all images, or an ``N×2`` integer array with one
        shift per image.  Positive rows move the content down, positive columns
        move it right.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``images``.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be N×H×W or N×H×W×C, got shape {images.shape}.")
    n, height, width = images.shape[:3]
    offsets = np.asarray(shifts)
    if offsets.shape == (2,):
        offsets = np.broadcast_to(offsets, (n, 2))
    if offsets.shape != (n, 2) or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(
            f"shifts must be a pair of ints or an integer array of shape ({n}, 2), "
            f"got {np.asarray(shifts).dtype} array of shape {np.asarray(shifts).shape}."
        )
    margin = int(np.abs(offsets).max(initial=0))
    if margin == 0:
        return images.copy()
    pad = [(0, 0), (margin, margin), (margin, margin)] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, pad)
    # out[i, y, x] = images[i, y - dy, x - dx] = padded[i, y - dy + margin, x - dx + margin]
    rows = (margin - offsets[:, 0])[:, None] + np.arange(height)  # N×H
    cols = (margin - offsets[:, 1])[:, None] + np.arange(width)  # N×W
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_shifts(n: int, min_shift: int = 2, max_shift: int = 4, seed: int = 0) -> np.ndarray:
    """``n×2`` random (rows, columns) shifts whose larger component is between the bounds.

    The distance ``max(|rows|, |columns|)`` is drawn uniformly from
    ``min_shift … max_shift``, then the direction uniformly among the shifts at
    that distance — so "shifted by 2–4 pixels" means 2, 3 and 4 equally often.

    Parameters
    ----------
    n : int
        Number of shifts (one per image), at least 0.
    min_shift, max_shift : int
        Smallest and largest distance in pixels, ``0 <= min_shift <= max_shift``.
    seed : int
        Seed of the NumPy random generator (same seed, same shifts).

    Returns
    -------
    numpy.ndarray
        ``n×2`` int64 array, ready for :func:`shift_images`.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}.")
    if not 0 <= min_shift <= max_shift:
        raise ValueError(f"Need 0 <= min_shift <= max_shift, got {min_shift} and {max_shift}.")
    rng = np.random.default_rng(seed)
    distances = rng.integers(min_shift, max_shift + 1, size=n)
    out = np.zeros((n, 2), dtype=np.int64)
    for d in range(min_shift, max_shift + 1):
        grid = np.arange(-d, d + 1)
        ring = np.array([(r, c) for r in grid for c in grid if max(abs(r), abs(c)) == d], dtype=np.int64)
        if d == 0:
            ring = np.zeros((1, 2), dtype=np.int64)
        chosen = np.flatnonzero(distances == d)
        out[chosen] = ring[rng.integers(0, len(ring), size=len(chosen))]
    return out


# --- Models ------------------------------------------------------------------------


def logistic_regression(C: float = 1.0, max_iter: int = 300) -> Any:
    """Multinomial logistic regression on raw pixels: one linear score per class.

    ``C=1`` with an L2 penalty, as in the Fashion-MNIST benchmark's best
    logistic regression (0.917 on MNIST).  L-BFGS needs about 250 iterations
    to converge on 55 000 MNIST images, hence ``max_iter=300``.

    Parameters
    ----------
    C : float
        Inverse strength of the L2 penalty (positive; smaller means stronger).
    max_iter : int
        Most L-BFGS iterations (at least 1).

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        An unfitted estimator; fit it with :func:`fit_timed`.
    """
    from sklearn.linear_model import LogisticRegression

    if C <= 0:
        raise ValueError(f"C must be positive, got {C}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    return LogisticRegression(C=C, max_iter=max_iter)


def random_forest(
    n_estimators: int = 100, *, max_features: str | float = "sqrt", seed: int = 0, n_jobs: int | None = -1
) -> Any:
    """A random forest: many decision trees on random pixel subsets, majority vote.

    100 trees with the default (Gini) criterion — the benchmark's
    ``n_estimators=100`` forest reached 0.970 on MNIST.

    Parameters
    ----------
    n_estimators : int
        Number of trees (at least 1).
    max_features : str or float
        Pixels considered at each split (scikit-learn's ``max_features``).
    seed : int
        ``random_state`` of the forest.
    n_jobs : int or None
        Parallel jobs (``-1``: every core).

    Returns
    -------
    sklearn.ensemble.RandomForestClassifier
        An unfitted estimator.
    """
    from sklearn.ensemble import RandomForestClassifier

    if n_estimators < 1:
        raise ValueError(f"n_estimators must be at least 1, got {n_estimators}.")
    return RandomForestClassifier(
        n_estimators=n_estimators, max_features=max_features, random_state=seed, n_jobs=n_jobs
    )


def rbf_svm(C: float = 10.0, gamma: str | float = "scale") -> Any:
    """A support-vector machine with a Gaussian (RBF) kernel.

    The benchmark's best SVC (``C=10``, RBF) reached 0.973 on MNIST.  Training
    time grows roughly with the square of the number of images, so it is
    usually trained on a subset.

    Parameters
    ----------
    C : float
        Penalty of misclassified training examples (positive).
    gamma : str or float
        Width of the kernel (scikit-learn's ``gamma``; ``"scale"`` by default).

    Returns
    -------
    sklearn.svm.SVC
        An unfitted estimator.
    """
    from sklearn.svm import SVC

    if C <= 0:
        raise ValueError(f"C must be positive, got {C}.")
    return SVC(C=C, kernel="rbf", gamma=gamma)


# --- Fitting, scoring, counting ------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """A fitted scikit-learn model and the wall-clock seconds its ``fit`` took."""

    model: Any
    seconds: float


def fit_timed(model: Any, images: np.ndarray, labels: np.ndarray, *, blas_threads: int | None = 1) -> FitResult:
    """Fit a scikit-learn classifier on flattened images and time it.

    ``blas_threads`` caps the threads of the linear-algebra library during the
    fit (``None``: leave them alone).  One thread is the default because
    logistic regression's L-BFGS solver makes many small matrix products: on a
    machine whose cores are busy with other work, several BLAS threads mostly
    wait for each other and the fit can be ten times slower.  Random forests
    do not use BLAS; their ``n_jobs`` is unaffected.

    Parameters
    ----------
    model : scikit-learn estimator
        An unfitted classifier (fitted in place).
    images : numpy.ndarray
        ``N×H×W(×C)`` training images (flattened here).
    labels : numpy.ndarray
        ``N`` class indices.
    blas_threads : int or None
        Most BLAS threads during the fit (at least 1), or ``None``.

    Returns
    -------
    FitResult
        The fitted ``model`` and the wall-clock seconds of its ``fit``.
    """
    from threadpoolctl import threadpool_limits

    x = flatten(images)
    y = np.asarray(labels).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    if blas_threads is not None and blas_threads < 1:
        raise ValueError(f"blas_threads must be at least 1 (or None), got {blas_threads}.")
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        start = time.perf_counter()
        model.fit(x, y)
        seconds = time.perf_counter() - start
    return FitResult(model=model, seconds=seconds)


def _tree_numbers(tree: Any) -> int:
    """A fitted decision tree stores (feature, threshold) per split and class weights per leaf."""
    t = tree.tree_
    leaves = t.children_left == -1
    values_per_leaf = int(np.prod(t.value.shape[1:]))
    return int(2 * np.count_nonzero(~leaves) + values_per_leaf * np.count_nonzero(leaves))


def parameter_count(model: Any) -> int:
    """How many learned numbers a fitted scikit-learn model stores to make its predictions.

    * linear models: the weights and intercepts (``coef_``, ``intercept_``);
    * SVMs: the support vectors, their dual coefficients and the intercepts;
    * trees and forests: a feature index and a threshold per split node, and the
      class weights at each leaf;
    * multi-layer perceptrons: all weights and biases;
    * pipelines: the sum over their steps (a scaler's means and scales count).

    For a Keras model use ``model.count_params()``.

    Parameters
    ----------
    model : scikit-learn estimator
        A fitted model of one of the kinds above.

    Returns
    -------
    int
        The number of stored learned values.

    Raises
    ------
    ValueError
        For a kind of model it does not know how to count.
    """
    from sklearn.base import check_is_fitted
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return sum(parameter_count(step) for _, step in model.steps if step not in (None, "passthrough"))
    check_is_fitted(model)
    if hasattr(model, "support_vectors_"):
        return int(model.support_vectors_.size + model.dual_coef_.size + model.intercept_.size)
    if hasattr(model, "estimators_") and hasattr(model.estimators_[0], "tree_"):
        return sum(_tree_numbers(tree) for tree in model.estimators_)
    if hasattr(model, "tree_"):
        return _tree_numbers(model)
    if hasattr(model, "coefs_"):
        return int(sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_))
    if hasattr(model, "coef_"):
        return int(model.coef_.size + np.size(model.intercept_))
    if hasattr(model, "mean_") and hasattr(model, "scale_"):
        return int(np.size(model.mean_) + np.size(model.scale_))
    raise ValueError(
        f"parameter_count does not know how to count a {type(model).__name__}; "
        "supported: linear models, SVMs, trees/forests, MLPs, scalers and pipelines of them."
    )
