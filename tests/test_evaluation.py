"""cnnbook.evaluation: metrics from labels and probabilities, checked against scikit-learn and by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn import metrics

from conftest import FakeModel

from cnnbook import conv, evaluation


def random_probs(n=500, k=10, seed=0, temperature=1.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, k)) / temperature
    return conv.softmax(logits), rng


# --- Probabilities and top-k ------------------------------------------------------------


def test_predict_proba_is_stable_and_float32():
    p = evaluation.predict_proba(FakeModel([1000.0, 1000.0, -1000.0]), np.zeros((2, 4)))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]] * 2, atol=1e-6)
    assert p.dtype == np.float32


def test_member_probabilities_split_a_joint_models_stacked_logits():
    class Joint:  # train_ensemble's joint model: logits stacked as images × members × classes
        def predict(self, x, batch_size=32, verbose=0):
            member_logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, 2.0, 0.0]], dtype=np.float32)
            return np.broadcast_to(member_logits, (len(x), 2, 3))

    first, second = evaluation.member_probabilities(Joint(), np.zeros((4, 28, 28, 1)))
    np.testing.assert_allclose(first, [[0.5, 0.5, 0.0]] * 4, atol=1e-6)  # stable for huge logits
    np.testing.assert_allclose(second, [conv.softmax(np.array([0.0, 2.0, 0.0]))] * 4, rtol=1e-6)
    assert first.dtype == second.dtype == np.float32
    with pytest.raises(ValueError, match="members"):
        evaluation.member_probabilities(FakeModel([1.0, 2.0]), np.zeros((2, 4)))  # N×K: not a joint model
    with pytest.raises(ValueError, match="batch_size"):
        evaluation.member_probabilities(Joint(), np.zeros((2, 4)), batch_size=0)


def test_predict_proba_applies_softmax_to_logits():
    model = FakeModel([2.0, 0.0, -1.0])
    p = evaluation.predict_proba(model, np.zeros((5, 28, 28, 1)), batch_size=64)
    assert p.shape == (5, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], conv.softmax([2.0, 0.0, -1.0]), rtol=1e-6)
    assert model.calls == [((5, 28, 28, 1), 64)]
    already = evaluation.predict_proba(FakeModel([0.7, 0.2, 0.1]), np.zeros((2, 4)), from_logits=False)
    np.testing.assert_allclose(already[0], [0.7, 0.2, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        evaluation.predict_proba(model, np.zeros((2, 4)), batch_size=0)


class CornerModel:
    """Scores an image by two of its pixels, so that which views were used shows in the output."""

    def __init__(self):
        self.inputs = []

    def predict(self, x, batch_size=32, verbose=0):
        x = np.asarray(x)
        self.inputs.append(x.copy())
        return np.stack([x[:, 0, 0, 0], x[:, 1, 2, 0]], axis=1)  # top-left pixel; row 1, column 2


def test_predict_views_averages_the_mirror_and_one_pixel_shifts():
    images = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5, 1)
    plain = evaluation.predict_views(CornerModel(), images, views="plain")
    np.testing.assert_allclose(plain, np.stack([images[:, 0, 0, 0], images[:, 1, 2, 0]], axis=1))
    model = CornerModel()
    flipped = evaluation.predict_views(model, images, views="flip")
    assert len(model.inputs) == 2
    np.testing.assert_array_equal(model.inputs[1], images[:, :, ::-1])
    np.testing.assert_allclose(flipped[:, 0], (images[:, 0, 0, 0] + images[:, 0, 4, 0]) / 2)
    model = CornerModel()
    six = evaluation.predict_views(model, images, views="flip_shift", batch_size=7)
    assert len(model.inputs) == 6 == evaluation.VIEWS["flip_shift"] and all(v.shape == images.shape for v in model.inputs)
    down_right, up_left = model.inputs[2], model.inputs[4]
    np.testing.assert_array_equal(down_right[:, 1:, 1:], images[:, :-1, :-1])  # content moved by (+1, +1)
    np.testing.assert_array_equal(up_left[:, :-1, :-1], images[:, 1:, 1:])  # and by (-1, -1)
    np.testing.assert_array_equal(down_right[:, 0, 1:], images[:, 1, :-1])  # border filled by reflection
    np.testing.assert_array_equal(model.inputs[3], down_right[:, :, ::-1])
    expected = np.mean([m.predict(v) for v in model.inputs for m in [CornerModel()]], axis=0)
    np.testing.assert_allclose(six, expected, rtol=1e-6)
    assert six.dtype == np.float32


class EdgeModel:
    """Scores class 0 by an image's left edge and class 1 by its right edge: a mirror image swaps them."""

    def predict(self, x, batch_size=32, verbose=0):
        x = np.asarray(x)
        return np.stack([x[:, :, 0, 0].mean(axis=1), x[:, :, -1, 0].mean(axis=1)], axis=1)


def test_choose_views_takes_the_best_on_validation_and_the_cheapest_of_equals():
    # Brighter on the right, labelled 0: alone each image is scored 1 (wrong); averaged with its mirror
    # image the two scores tie and argmax gives 0 (right), with or without the shifts.
    images = np.tile(np.linspace(0.0, 1.0, 5, dtype=np.float32), (3, 4, 1))[..., None]
    labels = np.zeros(3, dtype=int)
    chosen, accuracies = evaluation.choose_views(EdgeModel(), images, labels, batch_size=2)
    assert accuracies == {"plain": 0.0, "flip": 1.0, "flip_shift": 1.0}
    assert list(accuracies) == list(evaluation.VIEWS)
    assert chosen == "flip"  # as good as six views, at a third of the passes
    same_everywhere = np.full((3, 4, 5, 1), 0.5, dtype=np.float32)
    assert evaluation.choose_views(EdgeModel(), same_everywhere, labels)[0] == "plain"


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((2, 4, 4, 1)), {"views": "rotate"}, "views must be one of"),
        (np.zeros((2, 4, 4, 1)), {"batch_size": 0}, "batch_size"),
        (np.zeros((2, 16)), {}, "N×H×W×C"),
        (np.zeros((2, 1, 4, 1)), {}, "2×2"),
    ],
)
def test_predict_views_refuses_bad_arguments(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluation.predict_views(CornerModel(), images, **kwargs)


class FakeKerasModel(FakeModel):
    """Also callable, like a Keras model: ``model(x, training=False)``."""

    def __call__(self, x, training=None):
        self.calls.append((np.asarray(x).shape, training))
        return np.tile(self.logits, (len(x), 1))


def test_predict_labels_of_a_keras_like_model_is_the_argmax_of_its_outputs():
    model = FakeKerasModel([0.1, 2.0, -1.0])
    labels = evaluation.predict_labels(model, np.zeros((6, 28, 28, 1)), batch_size=4)
    assert labels.tolist() == [1] * 6 and labels.dtype == np.int64
    # The images as they are, in batches of at most 4, in inference mode.
    assert model.calls == [((4, 28, 28, 1), False), ((2, 28, 28, 1), False)]
    with pytest.raises(ValueError, match="batch_size"):
        evaluation.predict_labels(model, np.zeros((2, 4, 4)), batch_size=0)
    with pytest.raises(ValueError, match="non-empty"):
        evaluation.predict_labels(model, np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="N×K"):
        evaluation.predict_labels(FakeKerasModel([[[1.0]]]), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="Keras model or a scikit-learn"):
        evaluation.predict_labels(object(), np.zeros((2, 4, 4)))


def test_predict_labels_of_a_scikit_learn_classifier_flattens_the_images():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    images = rng.random((60, 4, 4, 1))
    y = (images[:, 0, 0, 0] > 0.5).astype(int) * 7  # class 0 or 7: labels, not column indices
    fitted = LogisticRegression(max_iter=500).fit(images.reshape(60, -1), y)
    labels = evaluation.predict_labels(fitted, images)
    assert labels.dtype == np.int64 and set(labels.tolist()) <= {0, 7}
    np.testing.assert_array_equal(labels, fitted.predict(images.reshape(60, -1)))
    with pytest.raises(ValueError, match="not a fitted classifier"):
        evaluation.predict_labels(LogisticRegression(), images)


def test_predict_labels_of_a_keras_model_agrees_with_calling_it():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    images = np.random.default_rng(1).random((10, 4, 4, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False)).argmax(axis=1)
    np.testing.assert_array_equal(evaluation.predict_labels(model, images, batch_size=3), expected)


def test_top_k_one_and_many():
    classes, values = evaluation.top_k(np.array([0.1, 0.5, 0.15, 0.25]), k=3)
    assert classes.tolist() == [1, 3, 2]
    np.testing.assert_allclose(values, [0.5, 0.25, 0.15])
    probs, _ = random_probs(20)
    classes, values = evaluation.top_k(probs, k=3)
    assert classes.shape == values.shape == (20, 3)
    assert (classes[:, 0] == probs.argmax(axis=1)).all()
    assert (np.diff(values, axis=1) <= 0).all()
    ties, _ = evaluation.top_k(np.array([0.25, 0.25, 0.25, 0.25]), k=2)
    assert ties.tolist() == [0, 1]
    with pytest.raises(ValueError, match="k must be"):
        evaluation.top_k(np.array([0.5, 0.5]), k=3)


def test_accuracy():
    assert evaluation.accuracy([0, 1, 2, 3], [0, 1, 0, 3]) == 0.75
    with pytest.raises(ValueError, match="same length"):
        evaluation.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="undefined"):
        evaluation.accuracy([], [])


# --- Confusion matrix and report ----------------------------------------------------------


def test_confusion_matrix_matches_scikit_learn():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 10, 1000), rng.integers(0, 10, 1000)
    cm = evaluation.confusion_matrix(y_true, y_pred, 10)
    np.testing.assert_array_equal(cm, metrics.confusion_matrix(y_true, y_pred, labels=range(10)))
    assert cm.sum() == 1000
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_true, minlength=10))
    assert np.trace(cm) == (y_true == y_pred).sum()


def test_confusion_matrix_small_case_by_hand():
    cm = evaluation.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    # A class nobody predicted or labelled still gets its row and column.
    assert evaluation.confusion_matrix([0], [0], 4).shape == (4, 4)


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        evaluation.confusion_matrix([0, 10], [0, 1], 10)
    with pytest.raises(ValueError, match="1-D"):
        evaluation.confusion_matrix(np.eye(3), [0, 1, 2], 3)
    with pytest.raises(ValueError, match="integer"):
        evaluation.confusion_matrix([0.5, 1.0], [0, 1], 3)


def test_classification_report_matches_scikit_learn_and_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    report = evaluation.classification_report(y_true, y_pred, ["zero", "one", "two"])
    assert report["zero"]["precision"] == pytest.approx(1.0)
    assert report["zero"]["recall"] == pytest.approx(2 / 3)
    assert report["one"]["precision"] == pytest.approx(0.5)
    assert report["two"]["f1-score"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert report["zero"]["support"] == 3
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro avg"]["recall"] == pytest.approx(
        metrics.recall_score(y_true, y_pred, average="macro"))


def test_classification_report_lists_absent_classes():
    report = evaluation.classification_report([0, 0, 1], [0, 1, 1], ["a", "b", "c"])
    assert report["c"]["support"] == 0 and report["c"]["f1-score"] == 0
    assert report["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="distinct"):
        evaluation.classification_report([0], [0], ["a", "a"])


def test_report_table_renders():
    report = evaluation.classification_report([0, 1, 1], [0, 1, 0], ["cat", "dog"])
    table = evaluation.report_table(report, digits=2)
    assert table.columns == ("class", "precision", "recall", "F1", "support")
    assert [row[0] for row in table.rows] == ["cat", "dog", "macro avg", "weighted avg", "accuracy"]
    assert table.rows[0][1:] == ("0.50", "1.00", "0.67", "1")
    html = table._repr_html_()
    assert html.startswith("<table>") and "<td>dog</td>" in html
    assert "weighted avg" in str(table)


# --- Mistakes and calibration ----------------------------------------------------------------


def test_most_confident_mistakes_sorted_and_only_mistakes():
    probs = np.array([
        [0.9, 0.1],   # correct
        [0.2, 0.8],   # wrong, 0.8
        [0.6, 0.4],   # wrong, 0.6
        [0.05, 0.95],  # wrong, 0.95
        [0.3, 0.7],   # correct
    ])
    y = np.array([0, 0, 1, 0, 1])
    idx = evaluation.most_confident_mistakes(probs, y, k=2)
    assert idx.tolist() == [3, 1]
    assert evaluation.most_confident_mistakes(probs, y, k=10).tolist() == [3, 1, 2]
    assert evaluation.most_confident_mistakes(probs, np.array([0, 1, 0, 1, 1]), k=5).size == 0


def test_most_confident_mistakes_rejects_non_probabilities():
    with pytest.raises(ValueError, match="sum"):
        evaluation.most_confident_mistakes(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match="same length"):
        evaluation.most_confident_mistakes(np.array([[0.5, 0.5]]), [0, 1])


def test_calibration_of_a_perfectly_calibrated_model_is_near_zero():
    # Draw labels from the model's own probabilities: then confidence = accuracy in expectation.
    probs, rng = random_probs(20000, k=5, seed=3)
    y = np.array([rng.choice(5, p=p / p.sum()) for p in probs.astype(np.float64)])
    cal = evaluation.calibration(probs, y, n_bins=10)
    assert cal.ece < 0.02
    assert cal.counts.sum() == 20000 and cal.n == 20000
    assert cal.bin_edges.shape == (11,) and cal.centres.shape == (10,)


def test_calibration_of_an_overconfident_model_by_hand():
    # Always 90% sure, right half of the time: ECE = |0.5 − 0.9| = 0.4, all in the last bin.
    probs = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0, 1] * 5)
    cal = evaluation.calibration(probs, y, n_bins=10)
    assert cal.ece == pytest.approx(0.4)
    assert cal.mce == pytest.approx(0.4)
    assert cal.counts.tolist() == [0] * 8 + [10, 0]  # 0.9 falls in (0.8, 0.9]
    assert np.isnan(cal.accuracy[0]) and cal.accuracy[8] == pytest.approx(0.5)
    assert cal.overall_accuracy == pytest.approx(0.5) and cal.mean_confidence == pytest.approx(0.9)


def test_calibration_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        evaluation.calibration(np.array([[0.5, 0.5]]), [0], n_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        evaluation.calibration(np.zeros((0, 3)), [])


def test_accuracy_interval_wilson():
    # Reference values of the Wilson score interval (95%).
    low, high = evaluation.accuracy_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert evaluation.accuracy_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert evaluation.accuracy_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    narrow = evaluation.accuracy_interval(9900, 10000)
    assert narrow[0] < 0.99 < narrow[1] and narrow[1] - narrow[0] < 0.005
    wider = evaluation.accuracy_interval(9900, 10000, confidence=0.99)
    assert wider[0] < narrow[0] and wider[1] > narrow[1]
    with pytest.raises(ValueError):
        evaluation.accuracy_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        evaluation.accuracy_interval(1, 10, confidence=1.5)


# --- Ensembles -----------------------------------------------------------------------


def _one_hot_probs(classes, k=3, confidence=0.8):
    p = np.full((len(classes), k), (1 - confidence) / (k - 1))
    p[np.arange(len(classes)), classes] = confidence
    return p


def test_ensemble_average_is_the_mean_of_member_probabilities():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_allclose(evaluation.ensemble_average([a, b]), [[0.7, 0.3], [0.4, 0.6]], rtol=1e-6)
    np.testing.assert_allclose(evaluation.ensemble_average([a]), a, rtol=1e-6)


def test_soft_and_hard_voting_can_disagree():
    # Two members are barely sure of class 0, one is very sure of class 1.
    members = [np.array([[0.51, 0.49]]), np.array([[0.51, 0.49]]), np.array([[0.01, 0.99]])]
    assert evaluation.majority_vote(members).tolist() == [0]
    assert evaluation.ensemble_average(members).argmax(axis=1).tolist() == [1]


def test_majority_vote_breaks_ties_by_mean_probability():
    members = [np.array([[0.6, 0.4, 0.0]]), np.array([[0.0, 0.95, 0.05]])]  # one vote each for 0 and 1
    assert evaluation.majority_vote(members).tolist() == [1]


def test_ensemble_accuracies_grow_with_the_members_that_fix_errors():
    y = np.array([0, 1, 2, 0])
    first = _one_hot_probs([0, 1, 1, 1])  # 2 of 4 right
    second = _one_hot_probs([0, 2, 2, 0], confidence=0.9)  # 3 of 4 right, more confident
    accs = evaluation.ensemble_accuracies([first, second], y)
    assert accs[0] == 0.5
    assert accs[1] == evaluation.accuracy(y, evaluation.ensemble_average([first, second]).argmax(axis=1))
    assert accs[1] == 0.75


def test_ensembles_refuse_bad_members():
    with pytest.raises(ValueError, match="at least one member"):
        evaluation.ensemble_average([])
    with pytest.raises(ValueError, match="same images and classes"):
        evaluation.ensemble_average([np.full((2, 2), 0.5), np.full((3, 2), 0.5)])
    with pytest.raises(ValueError, match="summing to 1"):
        evaluation.majority_vote([np.ones((2, 2))])
    with pytest.raises(ValueError, match="same length"):
        evaluation.ensemble_accuracies([np.full((2, 2), 0.5)], [0, 1, 1])


# --- Paired comparison and prediction speed ----------------------------------------------


def test_mcnemar_matches_the_binomial_test():
    from scipy.stats import binomtest

    both = np.ones(500, bool)
    a = np.r_[np.ones(14, bool), np.zeros(6, bool), both]
    b = np.r_[np.zeros(14, bool), np.ones(6, bool), both]
    result = evaluation.mcnemar(a, b)
    assert (result.only_a, result.only_b) == (14, 6)
    assert result.p_value == pytest.approx(binomtest(6, 20).pvalue)
    assert not result.significant()  # the ensemble chapter's 14 fixed / 6 broken: p ≈ 0.12
    strong = evaluation.mcnemar(np.r_[np.ones(30, bool), np.zeros(5, bool)], np.r_[np.zeros(30, bool), np.ones(5, bool)])
    assert strong.significant() and strong.p_value == pytest.approx(binomtest(5, 35).pvalue)
    # Symmetric in A and B, and examples both get right (or wrong) change nothing.
    assert evaluation.mcnemar(b, a).p_value == result.p_value
    assert evaluation.mcnemar(np.r_[a, np.zeros(50, bool)], np.r_[b, np.zeros(50, bool)]) == result
    assert evaluation.mcnemar(both, both).p_value == 1.0
    with pytest.raises(ValueError):
        evaluation.mcnemar(a, b[:-1])


def test_images_per_second_counts_every_network():
    class Slow:
        calls = 0

        def predict(self, x, batch_size, verbose):
            Slow.calls += 1
            time.sleep(0.01)
            return np.zeros((len(x), 10))

    images = np.zeros((100, 28, 28, 1), np.float32)
    one = evaluation.images_per_second([Slow()], images, repeats=2)
    two = evaluation.images_per_second([Slow(), Slow()], images, repeats=2)
    assert Slow.calls == 3 + 6  # a warm-up pass, then the timed ones, for every network
    assert 0 < two < one < 100 / 0.01
    with pytest.raises(ValueError):
        evaluation.images_per_second([], images)


def test_history_table_is_one_row_per_epoch():
    history = {"loss": [0.5, 0.25], "accuracy": [0.9, 0.95], "val_loss": [0.3, 0.2], "val_accuracy": [0.91, 0.96]}
    table = evaluation.history_table(history, [9.04, 8.0], caption="2 epochs")
    assert table.columns == ("epoch", "loss", "accuracy", "validation loss", "validation accuracy", "seconds")
    assert table.rows[1] == ("2", "0.2500", "95.00%", "0.2000", "96.00%", "8.0")
    assert str(table).splitlines()[0] == "2 epochs"
    assert evaluation.history_table({"loss": [1.0]}).columns == ("epoch", "loss")


def test_history_table_refuses_ragged_histories():
    with pytest.raises(ValueError, match="at least 'loss'"):
        evaluation.history_table({"accuracy": [0.5]})
    with pytest.raises(ValueError, match="2 values for 1 epochs"):
        evaluation.history_table({"loss": [1.0], "val_loss": [1.0, 2.0]})
    with pytest.raises(ValueError, match="epoch_seconds"):
        evaluation.history_table({"loss": [1.0]}, [1.0, 2.0])


# --- Verdicts on claims -----------------------------------------------------------------


def test_verdict_follows_the_rule_holds_then_partly():
    assert evaluation.verdict(holds=True, partly=False) == "holds"
    assert evaluation.verdict(holds=True, partly=True) == "holds"
    assert evaluation.verdict(holds=False, partly=True) == "partly holds"
    assert evaluation.verdict(holds=False, partly=False) == "does not hold"
    assert evaluation.VERDICTS == ("holds", "partly holds", "does not hold")


def test_change_beyond_noise_counts_a_difference_within_the_spread_as_none():
    assert evaluation.change_beyond_noise(0.8, 0.5) == "raised accuracy"
    assert evaluation.change_beyond_noise(-0.8, 0.5) == "lowered accuracy"
    assert evaluation.change_beyond_noise(0.5, 0.5) == "no measurable difference"  # not beyond the noise
    assert evaluation.change_beyond_noise(-0.2, 0.5) == "no measurable difference"
    assert evaluation.change_beyond_noise(0.01, 0.0) == "raised accuracy"
    with pytest.raises(ValueError, match="noise"):
        evaluation.change_beyond_noise(1.0, -0.1)
