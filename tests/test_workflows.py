"""cnnbook.workflows pieces not covered through the command line."""

from __future__ import annotations

import numpy as np
import pytest

from cnnbook import workflows


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
