"""``cnnbook train / evaluate / predict (folders, --json, --csv) / export``: happy paths and every bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnnbook import cli, training, workflows

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "book" / "images" / "digit_7_transparent.png"
TRAIN = ["--dataset", "mnist", "--epochs", "3", "--train-size", "300", "--precision", "float32"]


def _save(model, path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        model.save(path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("cli_tools")


@pytest.fixture(scope="module")
def tiny_file(folder):
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    return _save(model, folder / "tiny.keras")


@pytest.fixture(scope="module")
def lambda_file(folder):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: 1.0 - x),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    return _save(model, folder / "lambda.keras")


@pytest.fixture(scope="module")
def trained(folder):
    """One uninterrupted quick run through the command line."""
    out = folder / "run.keras"
    assert cli.main(["train", *TRAIN, "--out", str(out)]) == 0
    return out


def _weights(path):
    import keras

    return keras.models.load_model(path, compile=False).get_weights()


# --- train ---------------------------------------------------------------------------------


def test_train_writes_model_and_record(trained, capsys):
    record = json.loads(trained.with_suffix(".json").read_text())
    assert record["dataset"] == "mnist" and record["train_size"] == 300 and record["epochs_run"] == 3
    assert 1 <= record["best_epoch"] <= 3 and len(record["history"]["val_accuracy"]) == 3
    assert record["best_val_accuracy"] == max(record["history"]["val_accuracy"])
    assert not workflows.work_dir_for(trained).exists()  # the resumable state is cleaned up


def test_train_refuses_to_overwrite_without_force(trained, capsys):
    before = trained.stat().st_mtime_ns
    assert cli.main(["train", *TRAIN, "--out", str(trained)]) == 1
    assert "--force" in capsys.readouterr().err
    assert trained.stat().st_mtime_ns == before


def test_interrupted_training_resumes_to_the_same_weights(trained, folder, capsys):
    out = folder / "resumed.keras"
    with pytest.raises(training.SimulatedInterruption):  # a crash after epoch 2
        workflows.train_to_file("mnist", out, epochs=3, train_size=300, precision="float32",
                                callbacks=[training.InterruptAfterEpoch(2)])
    assert workflows.work_dir_for(out).is_dir() and not out.exists()
    assert cli.main(["train", *TRAIN, "--out", str(out)]) == 0
    assert "resuming after epoch 1 of 3" in capsys.readouterr().err
    for a, b in zip(_weights(trained), _weights(out)):
        np.testing.assert_array_equal(a, b)


def test_cifar10_model_standardises_its_input_channels(folder):
    # The colour model's first layer divides by the training images' standard deviation per channel;
    # Normalization takes a *variance*, so the statistics' std must be squared on the way in.
    import keras

    from cnnbook import data

    out = folder / "colour.keras"
    workflows.train_to_file("cifar10", out, epochs=1, train_size=200, precision="float32")
    model = keras.models.load_model(out)
    normalizer = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    x_train = data.prepare("cifar10", train_size=200, seed=0).x_train
    standardised = np.asarray(normalizer(x_train))
    np.testing.assert_allclose(standardised.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardised.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)


def test_ctrl_c_exits_130_and_says_how_to_resume(monkeypatch, folder, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflows, "train_to_file", interrupted)
    assert cli.main(["train", *TRAIN, "--out", str(folder / "x.keras")]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_train_usage_errors(folder, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--dataset", "imagenet", "--out", str(folder / "y.keras")])
    assert exc.value.code == 2
    assert cli.main(["train", *TRAIN, "--out", str(folder / "model.h5")]) == 1
    assert ".keras" in capsys.readouterr().err


# --- evaluate ------------------------------------------------------------------------------


def test_evaluate_text_and_json(trained, capsys):
    assert cli.main(["evaluate", str(trained), "--dataset", "mnist", "--test-size", "500"]) == 0
    text = capsys.readouterr().out
    assert "mnist test set, 500 images: accuracy" in text and "95% interval" in text
    assert "confusion matrix" in text and "macro avg" in text
    assert cli.main(["evaluate", str(trained), "--dataset", "mnist", "--test-size", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 500
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 500)
    low, high = result["interval"]
    assert low < result["accuracy"] < high
    assert result["accuracy"] > 0.6  # three short epochs on 300 images, BN statistics re-estimated


def test_evaluate_wrong_input_shape(tiny_file):
    with pytest.raises(SystemExit, match=r"shape \(28, 28, 1\).*\(32, 32, 3\)"):
        cli.main(["evaluate", str(tiny_file), "--dataset", "cifar10", "--test-size", "100"])


# --- loading: missing, not .keras, Lambda ------------------------------------------------------


@pytest.mark.parametrize("command", [["evaluate", "{}", "--dataset", "mnist"],
                                     ["predict", str(SAMPLE), "--model", "{}"],
                                     ["export", "{}", "--format", "tflite", "--out", "{}.tflite"]])
def test_bad_model_files(command, folder, lambda_file, capsys):
    text = folder / "notes.keras"
    text.write_text("not a model")
    for path, message in [(folder / "missing.keras", "no model file"), (text, "not a Keras model file"),
                          (lambda_file, "Lambda layer")]:
        with pytest.raises(SystemExit, match=message):
            cli.main([a.format(path) for a in command])


def test_lambda_model_loads_with_unsafe(lambda_file, capsys):
    assert cli.main(["predict", str(SAMPLE), "--model", str(lambda_file), "--unsafe", "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{SAMPLE}: ")


def test_predict_refuses_a_model_of_other_images(folder):
    import keras

    colour = _save(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]),
                   folder / "colour.keras")
    with pytest.raises(SystemExit, match=r"inputs of shape \(32, 32, 3\)"):
        cli.main(["predict", str(SAMPLE), "--model", str(colour)])


# --- predict: folders, --json, --csv ------------------------------------------------------


def test_predict_folder_json_and_csv(tiny_file, tmp_path, capsys):
    shutil.copy(SAMPLE, tmp_path / "a.png")
    shutil.copy(SAMPLE, tmp_path / "b.png")
    (tmp_path / "readme.txt").write_text("ignored: not an image suffix")
    assert cli.main(["predict", str(tmp_path), "--model", str(tiny_file)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]

    assert cli.main(["predict", str(tmp_path), "--model", str(tiny_file), "--json", "--top", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(len(r["classes"]) == 2 and r["error"] is None for r in rows)
    assert rows[0]["probabilities"][0] >= rows[0]["probabilities"][1]

    (tmp_path / "broken.png").write_text("not an image")
    assert cli.main(["predict", str(tmp_path), "--model", str(tiny_file), "--csv"]) == 1
    captured = capsys.readouterr()
    table = list(csv.DictReader(io.StringIO(captured.out)))
    assert [Path(r["path"]).name for r in table] == ["a.png", "b.png", "broken.png"]
    assert table[0]["class1"] in "0123456789" and float(table[0]["p1"]) > 0 and table[0]["error"] == ""
    assert table[2]["class1"] == "" and "not an image" in table[2]["error"]
    assert "broken.png: error" in captured.err


def test_predict_empty_folder(tiny_file, tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path), "--model", str(tiny_file)]) == 1
    assert "holds no image file" in capsys.readouterr().err


# --- export --------------------------------------------------------------------------------


def test_export_float32_then_int8(trained, folder, capsys):
    from cnnbook import export

    out = folder / "run.tflite"
    assert cli.main(["export", str(trained), "--format", "tflite", "--out", str(out)]) == 0
    assert out.is_file() and "float32" in capsys.readouterr().out
    assert cli.main(["export", str(trained), "--format", "tflite", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    # int8 finds its calibration dataset in the JSON record beside the model
    assert cli.main(["export", str(trained), "--format", "tflite", "--quantize", "int8",
                     "--calibration-size", "50"]) == 0
    int8 = trained.with_suffix(".int8.tflite")
    lite = export.LiteModel(int8)
    assert lite.input_dtype == np.int8 and lite.size < out.stat().st_size / 2


def test_export_int8_needs_a_dataset(tiny_file, folder, capsys):
    assert cli.main(["export", str(tiny_file), "--format", "tflite", "--quantize", "int8",
                     "--out", str(folder / "t8.tflite")]) == 2
    assert "--dataset" in capsys.readouterr().err


# --- the terminal stays clean ----------------------------------------------------------------


def test_help_lists_subcommands_and_errors_are_clean(folder):
    done = subprocess.run([sys.executable, "-m", "cnnbook.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("train", "evaluate", "predict", "export"):
        assert command in done.stdout
    done = subprocess.run([sys.executable, "-m", "cnnbook.cli", "evaluate", str(folder / "missing.keras"),
                           "--dataset", "mnist"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    # The command (cli.run) checks the file before TensorFlow starts and says how to get one.
    assert done.stderr.strip().splitlines() == [
        f"cnnbook: no model file at {str(folder / 'missing.keras')!r}; give the path of a .keras file "
        "(cnnbook train --dataset mnist --out model.keras writes one)."]
    assert done.stdout == ""


def test_the_command_records_the_kernels_it_trained_with(folder, monkeypatch):
    """`cnnbook train` (cli.run) sets the book's kernel choice and writes it into the record."""
    from cnnbook import hardware

    out = folder / "kernels.keras"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    import sys

    if "tensorflow" in sys.modules:  # this test process loaded TensorFlow already: the choice
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # must be set the way a reader's shell would
    assert cli.run(["train", *TRAIN, "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["kernels"] == hardware.expected_onednn_state()
    assert record["kernels"]["enabled"] is True  # TF_ENABLE_ONEDNN_OPTS=1, the book's choice


def test_a_fresh_command_turns_onednn_on(folder):
    """A new process (TensorFlow not loaded yet, as for the `cnnbook` command) gets the book's choice."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = ("from cnnbook import hardware; state = hardware.use_onednn(); import tensorflow; "
            "print(state['enabled'], hardware.onednn_state()['enabled'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_use_onednn_refuses_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401

    from cnnbook import hardware

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    with pytest.raises(RuntimeError, match="before importing keras or tensorflow"):
        hardware.use_onednn()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the reader's own setting is kept
    assert hardware.use_onednn()["enabled"] is False
