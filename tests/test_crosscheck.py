"""cnnbook.crosscheck: the harnesses chapter 1 calls to compare conv with TensorFlow/Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnbook import crosscheck, models


def test_numpy_layers_agree_with_tensorflow():
    images = np.random.default_rng(1).random((3, 12, 12, 1), dtype=np.float32)
    conv_checks, pool_checks = crosscheck.layers_against_tensorflow(images, seed=0)
    assert len(conv_checks) == 6 and len(pool_checks) == 3
    for check in conv_checks + pool_checks:
        assert check.shape == check.reference_shape, check
        assert check.max_abs_diff < 1e-5, check
    assert {c.function for c in conv_checks} == {"conv2d"} and {c.function for c in pool_checks} == {"max_pool2d"}
    assert all(c.max_abs_diff == 0.0 for c in pool_checks)  # pooling selects values: exact
    assert conv_checks[1].shape == (6, 6, 8)  # 5×5 kernel, stride 2, same padding on 12×12
    with pytest.raises(ValueError, match="N×H×W×1"):
        crosscheck.layers_against_tensorflow(images[..., 0])


@pytest.mark.parametrize("build", [models.article_cnn, models.mnist_cnn, models.keras_io_convnet, models.mlp])
def test_formulas_predict_every_layer_keras_builds(build):
    model = build()
    check = crosscheck.formulas_against_keras(model)
    assert check.all_equal
    assert check.total_parameters == check.keras_parameters == model.count_params()
    text = str(check)
    assert text.startswith(model.name) and text.endswith("all equal: True\n")
    assert "differs" not in text


def test_formulas_say_when_they_differ_or_do_not_know_a_layer():
    check = crosscheck.FormulaCheck("m", (("Dense", (10,), (10,), 7850, 7840),), 7850, 7840)
    assert not check.all_equal and "<-- differs" in str(check)
    unknown = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2DTranspose(2, 3)])
    with pytest.raises(ValueError, match="no formula for Conv2DTranspose"):
        crosscheck.formulas_against_keras(unknown)


def test_receptive_fields_measured_by_gradients_match_the_formula():
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.Conv2D(4, 3, padding="same"), keras.layers.MaxPooling2D(2),
                              keras.layers.Conv2D(4, 3, padding="same")])
    fields = crosscheck.receptive_fields(model)
    assert fields.formula == (3, 5, 6, 10) and fields.measured == fields.formula and fields.all_equal
    assert fields.output_sizes == ((16, 16), (16, 16), (8, 8), (8, 8))
    assert len(fields.layers) == 4 and all(box[2] == box[3] for box in fields.boxes)
    top, left, height, width = fields.boxes[0]
    assert (height, width) == (3, 3) and top == left == 6  # the centre unit (7, 7) of 16×16 sees rows 6-8
    part1 = crosscheck.receptive_fields(models.mnist_cnn())
    assert part1.all_equal and part1.formula[-1] == part1.measured[-1] > 3
    with pytest.raises(ValueError, match="no Conv2D or MaxPooling2D"):
        crosscheck.receptive_fields(models.mlp())
