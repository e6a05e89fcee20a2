"""Chapters 1 and 2 (Part I foundations) executed with their CI parameters; assertions on glued values."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def _stream_text(nb, marker: str) -> str:
    """The printed output of the first code cell whose source contains ``marker``."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return "".join(
                "".join(out.get("text", "")) for out in cell.get("outputs", []) if out["output_type"] == "stream"
            )
    raise AssertionError(f"no code cell contains {marker!r}")


def test_what_a_cnn_sees_chapter(chapter_runner):
    nb, g = chapter_runner("01_what_a_cnn_sees")
    assert g["check_images"] == 100  # the CI setting
    # From-scratch NumPy layers agree with TensorFlow on real digits.
    assert 0 <= g["conv_max_abs_diff"] < 1e-5
    assert g["pool_max_abs_diff"] == 0.0
    printed = _stream_text(nb, "tolerance = 1e-5")
    assert printed.count("same shape: True, max |NumPy − TF| < 1e-05: True") == 9
    assert "False" not in printed
    # Output sizes / parameter counts predicted by the formulas equal Keras' own.
    assert g["article_params"] == 122570  # the TensorFlow CNN tutorial's well-known count
    assert g["part1_params"] > 0
    assert _stream_text(nb, "compare_with_keras(article)").count("all equal: True") == 2
    assert g["conv32_params"] == 3 * 3 * 32 + 32
    assert g["dense32_params"] == 784 * 32 + 32
    # Receptive field: formula and gradient measurement agree.
    assert "formula equals gradient measurement: True" in _stream_text(nb, "formula equals gradient")
    assert g["rf_final"] == 16
    assert g["chapter_seconds"] < 90
