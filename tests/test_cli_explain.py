"""The ``cnnbook explain`` command: a prediction and an overlay PNG for a reader's digit."""

from __future__ import annotations

import warnings

import pytest

from cnnbook import cli
from test_cli import BLANK, SAMPLE

keras = pytest.importorskip("keras")


def _save(model, path):
    with warnings.catch_warnings():
        # Keras 3.15's saving code calls np.array(tf.Variable), which NumPy 2 flags; not ours to fix.
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        model.save(path)
    return path


@pytest.fixture(scope="module")
def conv_model_file(tmp_path_factory):
    """A small untrained CNN (Sequential, one convolution), saved as a .keras file."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(4), keras.layers.Flatten(), keras.layers.Dense(10)])
    return _save(model, tmp_path_factory.mktemp("explain") / "tiny_cnn.keras")


@pytest.fixture(scope="module")
def dense_model_file(tmp_path_factory):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    return _save(model, tmp_path_factory.mktemp("explain") / "dense.keras")


def _png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.format, image.size


@pytest.mark.parametrize("method", cli.EXPLAIN_METHODS)
def test_explain_writes_an_overlay(conv_model_file, tmp_path, capsys, method):
    out = tmp_path / f"{method}.png"
    status = cli.main(["explain", str(SAMPLE), "--model", str(conv_model_file), "--method", method,
                       "--out", str(out)])
    printed = capsys.readouterr().out.strip()
    assert status == 0, printed
    assert printed.startswith(f"{SAMPLE}: ") and f"{method} overlay written to {out}" in printed
    fmt, (width, height) = _png_size(out)
    assert fmt == "PNG" and width > 200 and height > 100


def test_default_method_is_grad_cam(conv_model_file, tmp_path, capsys):
    out = tmp_path / "default.png"
    assert cli.main(["explain", str(SAMPLE), "--model", str(conv_model_file), "--out", str(out)]) == 0
    assert "grad_cam overlay" in capsys.readouterr().out


def test_explain_refuses_to_overwrite_without_force(conv_model_file, tmp_path, capsys):
    out = tmp_path / "kept.png"
    out.write_bytes(b"the reader's own file")
    args = ["explain", str(SAMPLE), "--model", str(conv_model_file), "--out", str(out)]
    assert cli.main(args) == 1  # an output that exists: the input cannot be used as given
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"the reader's own file"
    assert cli.main([*args, "--force"]) == 0
    assert _png_size(out)[0] == "PNG"


def test_explain_reports_bad_input(conv_model_file, dense_model_file, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert cli.main(["explain", str(BLANK), "--model", str(conv_model_file), "--out", str(out)]) == 1
    assert "No digit found" in capsys.readouterr().out
    assert cli.main(["explain", str(SAMPLE), "--model", str(conv_model_file), "--out", str(tmp_path / "o.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
    # Grad-CAM needs a convolution: a clear message, not a traceback.
    assert cli.main(["explain", str(SAMPLE), "--model", str(dense_model_file), "--out", str(out)]) == 1
    assert "no Conv2D" in capsys.readouterr().err
    assert not out.exists()
    # Gradient saliency needs none.
    assert cli.main(["explain", str(SAMPLE), "--model", str(dense_model_file), "--method", "saliency",
                     "--out", str(out)]) == 0
    with pytest.raises(SystemExit):
        cli.main(["explain", str(SAMPLE), "--out", str(out), "--method", "guided_backprop"])
