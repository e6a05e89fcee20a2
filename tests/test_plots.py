"""cnnbook.plots: every function draws a Figure from plain data, checks its input and leaves rcParams alone."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnbook import evaluation, plots  # noqa: E402

DIGITS = [str(d) for d in range(10)]


@pytest.fixture(autouse=True)
def close_figures():
    """Every test draws through cnnbook.plots: none may change rcParams (the module promises it)."""
    before = dict(matplotlib.rcParams)
    yield
    plt.close("all")
    changed = sorted(k for k, v in matplotlib.rcParams.items() if before.get(k) != v)
    assert changed == [], f"drawing changed rcParams {changed}"


def titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_importing_plots_does_not_import_matplotlib():
    """Importing cnnbook.plots must not load matplotlib, so it can neither pick a backend nor touch rcParams.

    This runs in a fresh interpreter: here matplotlib is already imported (with the Agg
    backend) by this file, so reloading cnnbook.plots in-process would prove nothing.
    """
    probe = (
        "import sys; import cnnbook.plots; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"importing cnnbook.plots imported {proc.stdout.strip()}"


def test_image_grid_titles_and_colours():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 28, 28, 1), dtype=np.uint8)
    fig = plots.image_grid(x, labels=[1] * 12, class_names=DIGITS, predictions=[1] * 6 + [2] * 6, ncols=5,
                           title="grid", confidences=np.linspace(0.5, 1, 12))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 15  # 3 rows of 5
    assert titles(fig)[0] == "1 50%" and titles(fig)[6] == "1 → 2 77%"
    assert fig._suptitle.get_text() == "grid"
    colours = [ax.title.get_color() for ax in fig.axes[:12]]
    assert colours[0] == "tab:green" and colours[11] == "tab:red"


def test_image_grid_rgb_and_plain():
    fig = plots.image_grid(np.random.default_rng(0).random((3, 32, 32, 3)))
    assert len(fig.axes) == 3 and titles(fig) == []
    fig = plots.image_grid(np.zeros((2, 28, 28)), labels=[0, 1], class_names=["cat", "dog"])
    assert titles(fig) == ["cat", "dog"]


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        plots.image_grid(np.zeros((2, 28, 28, 2)))
    with pytest.raises(ValueError, match="labels has 1"):
        plots.image_grid(np.zeros((2, 28, 28)), labels=[0])
    with pytest.raises(ValueError, match="at least one"):
        plots.image_grid(np.zeros((0, 28, 28)))
    with pytest.raises(ValueError, match="ncols"):
        plots.image_grid(np.zeros((2, 28, 28)), ncols=0)


def test_mistakes_gallery():
    fig = plots.mistakes_gallery(np.zeros((5, 28, 28, 1)), [3, 5, 8, 1, 2], [5, 3, 9, 7, 7],
                                 [0.99, 0.9, 0.8, 0.7, 0.6], DIGITS, ncols=4)
    assert len(fig.axes) == 8
    assert titles(fig)[0] == "true: 3\npred: 5 (99%)"
    with pytest.raises(ValueError, match="same length"):
        plots.mistakes_gallery(np.zeros((2, 28, 28)), [1], [2, 3], [0.5, 0.5])
    with pytest.raises(ValueError, match="no mistakes"):
        plots.mistakes_gallery(np.zeros((0, 28, 28)), [], [], [])


def test_class_balance():
    rng = np.random.default_rng(0)
    splits = {"train": rng.integers(0, 10, 1000), "test": rng.integers(0, 10, 200)}
    fig = plots.class_balance(splits, DIGITS)
    ax = fig.axes[0]
    assert len(ax.patches) == 20
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights[:10]) == pytest.approx(100.0)  # shares of each split add up to 100 %
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "train (n=1,000)" in legend and "test (n=200)" in legend
    counts = plots.class_balance(splits, DIGITS, normalize=False).axes[0]
    assert sum(p.get_height() for p in counts.patches[:10]) == 1000
    with pytest.raises(ValueError, match="outside"):
        plots.class_balance({"bad": np.array([0, 12])}, DIGITS)
    with pytest.raises(ValueError, match="empty"):
        plots.class_balance({}, DIGITS)


def test_learning_curves_from_dict_and_history_object():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.5],
               "accuracy": [0.6, 0.8, 0.9], "val_accuracy": [0.55, 0.75, 0.85]}
    fig = plots.learning_curves(history, best_epoch=3)
    assert len(fig.axes) == 2
    loss_ax = fig.axes[0]
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(lines["training"].get_xdata()) == [1, 2, 3]
    assert list(lines["validation"].get_ydata()) == [1.1, 0.6, 0.5]
    assert "best epoch (3)" in lines

    class History:  # what model.fit returns
        pass

    h = History()
    h.history = history
    assert len(plots.learning_curves(h, metrics=("loss",)).axes) == 1
    with pytest.raises(ValueError, match="no \\['auc'\\]"):
        plots.learning_curves(history, metrics=("auc",))
    with pytest.raises(ValueError, match="dict of lists"):
        plots.learning_curves([1, 2, 3])


def test_confusion_matrix_counts_and_normalised():
    cm = evaluation.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    fig = plots.confusion_matrix(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["1", "1", "1", "1", "2"])  # empty cells stay blank
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    norm = plots.confusion_matrix(cm, ["a", "b", "c"], normalize=True).axes[0]
    assert "0.67" in [t.get_text() for t in norm.texts]
    with pytest.raises(ValueError, match="3×3"):
        plots.confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])


def test_reliability_diagram():
    probs = np.tile([0.9, 0.1], (10, 1))
    cal = evaluation.calibration(probs, np.array([0, 1] * 5), n_bins=10)
    fig = plots.reliability_diagram(cal, title="overconfident")
    top, bottom = fig.axes
    assert "ECE = 40.00%" in [t.get_text() for t in top.texts]
    assert top.get_title() == "overconfident"
    # One accuracy bar (only one bin is used), at height 0.5.
    heights = [p.get_height() for p in top.containers[0]]
    assert heights == [pytest.approx(0.5)]
    assert [p.get_height() for p in bottom.patches][8] == 10


def test_feature_maps():
    fig = plots.feature_maps(np.random.default_rng(0).random((13, 13, 10)), ncols=4, title="conv")
    assert len(fig.axes) == 12
    assert titles(fig)[:3] == ["0", "1", "2"]
    assert len(plots.feature_maps(np.zeros((1, 5, 5, 3))).axes) == 3  # a batch of one is accepted
    with pytest.raises(ValueError, match="H×W×C"):
        plots.feature_maps(np.zeros((2, 5, 5, 3)))


def test_preprocessing_steps():
    steps = {"grayscale": np.ones((60, 40), np.float32), "mask": np.zeros((60, 40), bool),
             "centred": np.zeros((28, 28), np.float32)}
    fig = plots.preprocessing_steps(steps)
    assert titles(fig) == ["grayscale\n40×60", "mask\n40×60", "centred\n28×28"]
    with pytest.raises(ValueError, match="empty"):
        plots.preprocessing_steps({})


def test_digit_predictions():
    originals = [np.zeros((50, 40, 3), np.uint8), np.zeros((30, 30), np.uint8), np.zeros((20, 60, 3), np.uint8)]
    inputs = [np.zeros((28, 28)), None, np.ones((28, 28))]
    fig = plots.digit_predictions(originals, inputs, ["a", "b", "c"], ["3 (97%)", "no digit", "7 (51%)"], ncols=2)
    assert len(fig.axes) == 8  # 2 groups of (original row + input row) × 2 columns
    assert titles(fig) == ["a", "b", "3 (97%)", "no digit", "c", "7 (51%)"]
    with pytest.raises(ValueError, match="same length"):
        plots.digit_predictions(originals, inputs[:2], ["a"] * 3, ["p"] * 3)


def test_accuracy_curves_draw_one_line_per_model_and_chance():
    fig = plots.accuracy_curves([0, 0.1, 0.2], {"a": [0.99, 0.5, 0.1], "b": [0.98, 0.9, 0.8]},
                                xlabel="ε", title="attack", chance=0.1)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b", "chance"]
    assert list(ax.lines[1].get_ydata()) == [0.98, 0.9, 0.8]
    assert ax.get_xlabel() == "ε" and ax.get_title() == "attack"
    plt.close(fig)


def test_accuracy_curves_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="points"):
        plots.accuracy_curves([0, 1], {"a": [1.0]}, xlabel="x")
    with pytest.raises(ValueError, match="at least one"):
        plots.accuracy_curves([0, 1], {}, xlabel="x")


def test_corruption_panels_one_panel_per_corruption():
    results = {kind: {"m1": [1, 0.8, 0.6], "m2": [1, 0.9, 0.7]} for kind in ("blur", "gaussian_noise", "shift")}
    fig = plots.corruption_panels([0, 1, 2], results, ncols=2, title="corruptions")
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == ["blur", "gaussian noise", "shift"]
    assert len(fig.axes) == 4 and all(len(ax.lines) == 2 for ax in visible)
    assert fig._suptitle.get_text() == "corruptions"
    plt.close(fig)
    with pytest.raises(ValueError):
        plots.corruption_panels([0, 1], {})
    with pytest.raises(ValueError, match="points"):
        plots.corruption_panels([0, 1], {"blur": {"m": [1.0]}})


def test_factor_curves_one_panel_per_factor_with_seed_dots_and_means():
    panels = {"blocks": ([1, 2, 3], [[0.8, 0.82], [0.85, 0.86], [0.87, 0.88]]),
              "share": ([0.25, 0.5, 1.0], [[0.8, 0.81], [0.84, 0.85], [0.9, 0.91]])}
    fig = plots.factor_curves(panels, log_x=["share"], baseline={"blocks": 3}, ncols=2, title="study")
    blocks, share = fig.axes
    assert blocks.get_xlabel() == "blocks" and share.get_xscale() == "log" and blocks.get_xscale() == "linear"
    mean_line = [line for line in blocks.lines if line.get_linestyle() == "-"][0]
    assert np.allclose(mean_line.get_ydata(), [0.81, 0.855, 0.875])
    seed_dots = [line for line in blocks.lines if line.get_marker() == "."]
    assert len(seed_dots) == 3 and sum(len(line.get_ydata()) for line in seed_dots) == 6
    assert any(list(line.get_xdata()) == [3, 3] for line in blocks.lines)  # the baseline's level, dotted
    assert fig._suptitle.get_text() == "study"
    with pytest.raises(ValueError, match="levels"):
        plots.factor_curves({"x": ([1, 2], [[0.5]])})
    with pytest.raises(ValueError, match="at least one value"):
        plots.factor_curves({"x": ([1], [[]])})
    with pytest.raises(ValueError, match="at least one factor"):
        plots.factor_curves({})


def test_accuracy_vs_time_points_are_means_with_the_seeds_range():
    fig = plots.accuracy_vs_time(["base", "wide"], [10.0, 30.0], [[0.80, 0.82, 0.84], [0.85, 0.86, 0.90]],
                                 reference=0, title="cost")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_title() == "cost"
    assert [t.get_text() for t in ax.texts] == ["base", "wide"]
    points = ax.lines[0]
    assert np.allclose(points.get_xdata(), [10, 30]) and np.allclose(points.get_ydata(), [0.82, 0.87])
    bars = ax.collections[0].get_segments()
    assert np.allclose([s[:, 1] for s in bars], [[0.80, 0.84], [0.85, 0.90]])
    with pytest.raises(ValueError, match="one entry per configuration"):
        plots.accuracy_vs_time(["a"], [1.0, 2.0], [[0.5], [0.6]])
