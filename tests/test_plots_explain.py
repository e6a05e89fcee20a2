"""Figures of chapter 11 (cnnbook.plots): kernels, saliency overlays, deletion curves."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cnnbook import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_kernels_from_a_conv_weight():
    w = np.random.default_rng(0).standard_normal((3, 3, 1, 16))
    fig = plots.kernels(w, ncols=8, title="learned", values=True)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 16
    np.testing.assert_allclose(drawn[5].images[0].get_array(), w[:, :, 0, 5])
    assert plots.kernels(np.eye(3), titles=["identity"]).axes[0].get_title() == "identity"
    with pytest.raises(ValueError, match="input channels"):
        plots.kernels(np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="titles"):
        plots.kernels(w, titles=["a"])


def test_saliency_overlay_and_grid():
    rng = np.random.default_rng(1)
    digit, heat = rng.random((28, 28)), rng.random((28, 28))
    fig = plots.saliency_overlay(digit, heat, title="7 (99 %)")
    assert len(fig.axes) == 2 and len(fig.axes[1].images) == 2
    with pytest.raises(ValueError, match="height and width"):
        plots.saliency_overlay(digit, heat[:10])
    photos = rng.random((2, 32, 32, 3))
    grid = plots.explanation_grid(photos, {"a": rng.random((2, 32, 32)), "occlusion": rng.random((2, 32, 32)) - 0.5},
                                  row_titles=["cat", "dog"])
    assert len(grid.axes) == 6 and grid.axes[1].get_title() == "a"
    with pytest.raises(ValueError, match="one map per image"):
        plots.explanation_grid(photos, {"a": rng.random((3, 32, 32))})


def test_deletion_curves():
    x = np.linspace(0, 0.5, 6)
    fig = plots.deletion_curves(x, {"grad_cam": 1 - x, "random": 1 - x / 2})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["grad_cam", "random"]
    assert lines[1].get_linestyle() == "--"
    with pytest.raises(ValueError, match="fractions"):
        plots.deletion_curves(x, {"a": [1.0, 0.5]})
