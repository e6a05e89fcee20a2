"""Classical classifiers, shifting and counting helpers of :mod:`cnnbook.baselines`."""

from __future__ import annotations

import numpy as np
import pytest

from cnnbook import baselines, evaluation


def _toy_digits(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two separable "classes" of 8×8 images: a bright left half or a bright right half."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    images = rng.random((n, 8, 8, 1)).astype(np.float32) * 0.3
    images[labels == 0, :, :4] += 0.7
    images[labels == 1, :, 4:] += 0.7
    return images, labels


def test_flatten():
    x = np.zeros((5, 28, 28, 1))
    assert baselines.flatten(x).shape == (5, 784)
    assert baselines.flatten(np.zeros((5, 4, 3))).shape == (5, 12)
    with pytest.raises(ValueError):
        baselines.flatten(np.zeros(5))


def test_shift_images_moves_content_and_fills_zeros():
    img = np.zeros((1, 5, 5), dtype=np.uint8)
    img[0, 2, 2] = 9
    down_right = baselines.shift_images(img, (1, 2))
    assert down_right.dtype == np.uint8 and down_right.shape == img.shape
    assert down_right[0, 3, 4] == 9 and down_right.sum() == 9
    up_left = baselines.shift_images(img, (-2, -1))
    assert up_left[0, 0, 1] == 9
    # Content pushed off the edge disappears (no wrap-around).
    gone = baselines.shift_images(img, (0, 3))
    assert gone.sum() == 0
    np.testing.assert_array_equal(baselines.shift_images(img, (0, 0)), img)


def test_shift_images_per_image_matches_numpy_roll_away_from_edges():
    rng = np.random.default_rng(0)
    images = np.zeros((6, 12, 12, 1), dtype=np.float32)
    images[:, 4:8, 4:8] = rng.random((6, 4, 4, 1))  # content in the middle: rolls never wrap it
    shifts = baselines.random_shifts(6, 1, 4, seed=1)
    out = baselines.shift_images(images, shifts)
    for i, (dy, dx) in enumerate(shifts):
        np.testing.assert_array_equal(out[i], np.roll(images[i], (dy, dx), axis=(0, 1)))


def test_shift_images_rejects_bad_shifts():
    with pytest.raises(ValueError, match="shifts"):
        baselines.shift_images(np.zeros((3, 5, 5)), np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="shifts"):
        baselines.shift_images(np.zeros((3, 5, 5)), (0.5, 1.0))
    with pytest.raises(ValueError, match="images"):
        baselines.shift_images(np.zeros((5, 5)), (1, 1))


def test_random_shifts_distance_range_and_balance():
    shifts = baselines.random_shifts(3000, 2, 4, seed=0)
    distance = np.abs(shifts).max(axis=1)
    assert shifts.shape == (3000, 2) and shifts.dtype.kind == "i"
    assert distance.min() == 2 and distance.max() == 4
    counts = np.bincount(distance)[2:]
    assert counts.min() > 900  # each distance about a third of the time
    np.testing.assert_array_equal(shifts, baselines.random_shifts(3000, 2, 4, seed=0))
    assert not np.array_equal(shifts, baselines.random_shifts(3000, 2, 4, seed=1))
    # Every direction is used, not only the axes.
    assert len({tuple(s) for s in shifts}) > 40
    np.testing.assert_array_equal(baselines.random_shifts(4, 0, 0), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        baselines.random_shifts(5, 3, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: baselines.logistic_regression(),
        lambda: baselines.random_forest(20, n_jobs=1),
        lambda: baselines.rbf_svm(),
    ],
    ids=["logistic", "forest", "svm"],
)
def test_classical_models_learn_a_separable_toy_problem(make):
    x, y = _toy_digits()
    fit = baselines.fit_timed(make(), x[:200], y[:200])
    assert fit.seconds > 0
    assert evaluation.accuracy(y[200:], evaluation.predict_labels(fit.model, x[200:])) > 0.95
    assert baselines.parameter_count(fit.model) > 0


def test_parameter_count_by_model_type():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _toy_digits()
    flat = baselines.flatten(x)
    lr = baselines.logistic_regression().fit(flat, y)
    assert baselines.parameter_count(lr) == 64 + 1  # binary: one weight vector and one intercept
    svm = baselines.rbf_svm().fit(flat, y)
    assert baselines.parameter_count(svm) == len(svm.support_) * 64 + len(svm.support_) + 1
    forest = baselines.random_forest(3, n_jobs=1).fit(flat, y)
    expected = 0
    for tree in forest.estimators_:
        leaves = int((tree.tree_.children_left == -1).sum())
        expected += 2 * (tree.tree_.node_count - leaves) + 2 * leaves  # 2 classes per leaf
    assert baselines.parameter_count(forest) == expected
    mlp = MLPClassifier((5,), max_iter=2000, random_state=0).fit(flat, y)
    assert baselines.parameter_count(mlp) == 64 * 5 + 5 + 5 * 1 + 1
    pipe = make_pipeline(StandardScaler(), baselines.logistic_regression()).fit(flat, y)
    assert baselines.parameter_count(pipe) == 2 * 64 + 65
    with pytest.raises(ValueError, match="KNeighborsClassifier"):
        baselines.parameter_count(KNeighborsClassifier().fit(flat, y))


def test_fit_and_accuracy_check_lengths():
    x, y = _toy_digits(20)
    with pytest.raises(ValueError, match="labels"):
        baselines.fit_timed(baselines.logistic_regression(), x, y[:5])
    fit = baselines.fit_timed(baselines.logistic_regression(), x, y)
    with pytest.raises(ValueError, match="same length"):
        evaluation.accuracy(y[:5], evaluation.predict_labels(fit.model, x))
    with pytest.raises(ValueError, match="blas_threads"):
        baselines.fit_timed(baselines.logistic_regression(), x, y, blas_threads=0)
    unlimited = baselines.fit_timed(baselines.logistic_regression(), x, y, blas_threads=None)
    flat = baselines.flatten(x)
    np.testing.assert_array_equal(unlimited.model.predict(flat), fit.model.predict(flat))
    with pytest.raises(ValueError):
        baselines.logistic_regression(C=0)
    with pytest.raises(ValueError):
        baselines.random_forest(0)
