"""cnnbook.workflows pieces not covered through the command line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import FakeModel

from cnnbook import conv, workflows
from cnnbook.images import ImageError, NoDigitFoundError


def test_refresh_batchnorm_sets_the_average_batch_statistics():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    bn = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, keras.layers.Flatten()(bn(inputs)))
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(300, 4, 4, 3)) * [1.0, 0.1, 3.0] + [0.5, -2.0, 0.0]).astype(np.float32)
    assert workflows.refresh_batchnorm(model, images, batch_size=100) == 1
    batches = images.reshape(3, 100, 4, 4, 3)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), batches.mean(axis=(1, 2, 3)).mean(axis=0), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), batches.var(axis=(1, 2, 3)).mean(axis=0), rtol=1e-3)
    assert bn.momentum == 0.99  # restored
    with pytest.raises(ValueError):
        workflows.refresh_batchnorm(model, images[:0])


def test_image_files_and_work_dir(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in workflows.image_files([tmp_path, tmp_path / "z.png"])] == ["a.jpg", "b.PNG", "z.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image file"):
        workflows.image_files([tmp_path / "empty"])
    assert workflows.work_dir_for(tmp_path / "m.keras") == tmp_path / ".m.keras.partial"


def test_train_to_file_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="trains"):
        workflows.train_to_file("imagenet", tmp_path / "m.keras")
    with pytest.raises(ValueError, match="precision"):
        workflows.train_to_file("mnist", tmp_path / "m.keras", precision="int4")


# --- One image ------------------------------------------------------------------------------


def _one(tmp_path):
    img = Image.new("L", (120, 160), 240)
    ImageDraw.Draw(img).line([(60, 20), (60, 140)], fill=10, width=16)
    path = tmp_path / "one.png"
    img.save(path)
    return path


def test_predict_image_top3(tmp_path):
    logits = np.zeros(10)
    logits[1], logits[7], logits[4] = 5.0, 3.0, 2.0
    model = FakeModel(logits)
    result = workflows.predict_image(model, _one(tmp_path), [str(d) for d in range(10)], k=3)
    assert model.calls[0][0] == (1, 28, 28, 1)  # one MNIST-shaped input
    assert result.classes.tolist() == [1, 7, 4]
    assert result.label == "1"
    np.testing.assert_allclose(result.probabilities, conv.softmax(logits)[[1, 7, 4]], rtol=1e-5)
    assert result.digit.shape == (28, 28)
    assert result.source == "one.png"
    table = result.table()
    assert table.rows[0] == ("1", "1", f"{result.confidence:.1%}")
    assert "one.png" in str(result)


def test_predict_image_refuses_instead_of_guessing(tmp_path):
    model = FakeModel(np.arange(10.0))
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    with pytest.raises(NoDigitFoundError):
        workflows.predict_image(model, blank)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00\x01 definitely not a jpeg")
    with pytest.raises(ImageError):
        workflows.predict_image(model, junk)
    assert model.calls == []  # the model was never asked
    with pytest.raises(ValueError, match="class names"):
        workflows.predict_image(model, _one(tmp_path), ["a", "b"])
