"""Font-rendered digits (cnnbook.synthetic): shapes, labels, determinism and clear failures."""

from __future__ import annotations

import numpy as np
import pytest

from cnnbook import synthetic

FONTS = synthetic.find_fonts()
needs_fonts = pytest.mark.skipif(not FONTS, reason="no TrueType font on this machine")


@needs_fonts
@pytest.mark.parametrize("photographed", [True, False])
def test_render_digits_promises_mnist_format(photographed):
    images, labels, names = synthetic.render_digits(30, seed=0, photographed=photographed)
    assert images.shape == (30, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert labels.shape == (30,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [3] * 10  # balanced over the classes
    assert len(names) == 30 and set(names) <= {f.name for f in FONTS}
    # White ink on black, like MNIST: the border is darker than the middle.
    border = np.concatenate([images[:, :3].ravel(), images[:, -3:].ravel()]).mean()
    assert images[:, 8:20, 8:20].mean() > border


@needs_fonts
def test_render_digits_is_deterministic_by_seed():
    a = synthetic.render_digits(12, seed=1)
    b = synthetic.render_digits(12, seed=1)
    c = synthetic.render_digits(12, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


@needs_fonts
def test_each_digit_is_centred_by_mass_like_mnist():
    images, _, _ = synthetic.render_digits(20, seed=3, photographed=False)
    rows, cols = np.indices((28, 28))
    for img in images[..., 0]:
        total = img.sum()
        assert total > 0
        assert abs((rows * img).sum() / total - 13.5) < 2.5 and abs((cols * img).sum() / total - 13.5) < 2.5


def test_render_digits_fails_clearly_without_fonts(tmp_path):
    with pytest.raises(ValueError, match="font"):
        synthetic.render_digits(5, fonts=[])
    assert synthetic.find_fonts([tmp_path]) == []
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_bytes(b"not a font")
    with pytest.raises(ValueError, match="fonts could draw"):
        synthetic.render_digits(3, fonts=[not_a_font])


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_render_digits_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="n must be"):
        synthetic.render_digits(n)


def test_find_fonts_falls_back_to_matplotlibs_fonts(monkeypatch, tmp_path):
    """A machine without system fonts still finds matplotlib's bundled DejaVu (without importing matplotlib)."""
    monkeypatch.setattr(synthetic, "FONT_DIRS", (str(tmp_path),))
    monkeypatch.delenv("CNNBOOK_FONT_DIR", raising=False)
    fonts = synthetic.find_fonts()
    assert fonts and all("mpl-data" in str(f) for f in fonts)
    assert any(f.name == "DejaVuSans.ttf" for f in fonts)
    assert synthetic.find_fonts([tmp_path]) == []  # explicit folders: no fallback
