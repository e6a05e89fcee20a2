"""The ``cnnbook predict`` command: top-3 for an image, a clear refusal for anything else."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnnbook import cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "book" / "images" / "digit_7_transparent.png"
BLANK = ROOT / "book" / "images" / "blank_page.jpg"


@pytest.fixture(scope="module")
def tiny_model():
    """A fixed linear 'classifier' on 28×28×1 inputs (logits out), not trained: fast and deterministic."""
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    kernel = np.zeros((784, 10), dtype=np.float32)
    kernel[:, 7] = 0.02  # ink anywhere votes for 7, a little for 1
    kernel[:, 1] = 0.01
    bias = np.linspace(0.0, 0.5, 10).astype(np.float32)
    model.layers[-1].set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.keras"
    with warnings.catch_warnings():
        # Keras 3.15's saving code calls np.array(tf.Variable), which NumPy 2 flags; not ours to fix.
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        tiny_model.save(path)
    return path


LINE = re.compile(r"^(?P<path>.+): (?P<first>\d) \((?P<p1>[\d.]+)%\), (\d) \(([\d.]+)%\), (\d) \(([\d.]+)%\)$")


def test_predict_prints_top3(model_file, capsys):
    status = cli.main(["predict", str(SAMPLE), "--model", str(model_file)])
    out = capsys.readouterr().out.strip()
    assert status == 0
    match = LINE.match(out)
    assert match, out
    assert match["path"] == str(SAMPLE) and match["first"] == "7"


def test_top_k_option(model_file, capsys):
    assert cli.main(["predict", str(SAMPLE), "--model", str(model_file), "--top", "1"]) == 0
    assert re.fullmatch(r".+: 7 \([\d.]+%\)", capsys.readouterr().out.strip())
    assert cli.main(["predict", str(SAMPLE), "--model", str(model_file), "--top", "0"]) == 2


def test_blank_and_broken_inputs_are_refused(model_file, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    status = cli.main(["predict", str(SAMPLE), str(BLANK), str(text), str(empty), str(tmp_path / "missing.png"),
                       "--model", str(model_file)])
    captured = capsys.readouterr()
    assert status == 1
    out_lines = captured.out.strip().splitlines()
    assert LINE.match(out_lines[0])  # the good image still gets its answer
    assert out_lines[1].startswith(f"{BLANK}: No digit found")
    assert f"{text}: error" in captured.err and "not an image" in captured.err
    assert f"{empty}: error" in captured.err and "empty" in captured.err
    assert "missing.png: error" in captured.err
    assert not any(re.search(r"\d \([\d.]+%\)", line) for line in out_lines[1:])  # no guesses


def test_bad_model_path(tmp_path):
    with pytest.raises(SystemExit, match="cannot load the model"):
        cli.main(["predict", str(SAMPLE), "--model", str(tmp_path / "nope.keras")])


def test_default_model_is_the_part1_model(tiny_model, monkeypatch, capsys):
    from cnnbook import training

    asked = []
    monkeypatch.setattr(training, "trained_model", lambda dataset="mnist", **kw: asked.append(dataset) or tiny_model)
    assert cli.main(["predict", str(SAMPLE)]) == 0
    assert asked == ["mnist"]
    assert LINE.match(capsys.readouterr().out.strip())


def test_default_model_says_when_it_must_train(tiny_model, monkeypatch, tmp_path, capsys):
    """The 'training once' notice appears exactly when trained_model has no cached file to load."""
    from cnnbook import training

    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_DTYPE", "float32")
    monkeypatch.setattr(training, "trained_model", lambda dataset="mnist", **kw: tiny_model)
    assert cli.main(["predict", str(SAMPLE)]) == 0
    assert "no trained model cached" in capsys.readouterr().err
    training.trained_model_path("mnist", dtype="float32").write_bytes(b"")
    assert cli.main(["predict", str(SAMPLE)]) == 0
    assert "no trained model cached" not in capsys.readouterr().err


def test_usage_errors_and_help():
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    done = subprocess.run([sys.executable, "-m", "cnnbook.cli", "predict", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--model" in done.stdout


# --- export --format web (cli.run: main plus the drawing pad's weights) --------


def test_export_web_writes_the_pad_weights(model_file, tiny_model, tmp_path, capsys):
    import json

    from cnnbook import web

    out = tmp_path / "pad.json"
    assert cli.run(["export", str(model_file), "--format", "web", "--out", str(out)]) == 0
    assert "weights for the drawing pad" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["provenance"]["model_file"] == "tiny.keras"
    assert len(record["provenance"]["model_sha256"]) == 64
    weights = web.read_web(record)
    for got, want in zip(weights[tiny_model.layers[-1].name], tiny_model.layers[-1].get_weights()):
        np.testing.assert_array_equal(got, want)
    assert cli.run(["export", str(model_file), "--format", "web", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert cli.run(["export", str(model_file), "--format", "web", "--out", str(out),
                    "--quantize", "int8", "--force"]) == 2
    assert "float32" in capsys.readouterr().err


def test_run_is_main_for_the_other_commands(model_file, capsys):
    assert cli.run(["predict", str(SAMPLE), "--model", str(model_file), "--top", "1"]) == 0
    assert capsys.readouterr().out.strip()
    with pytest.raises(SystemExit) as stop:
        cli.run(["export", "--help"])
    assert stop.value.code == 0
    assert "web: the online book's drawing pad" in " ".join(capsys.readouterr().out.split())
