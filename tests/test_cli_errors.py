"""Every bad input to the ``cnnbook`` command ends in one line with the fix and a non-zero status.

The command's entry point is :func:`cnnbook.cli.run` (``[project.scripts]``);
it is called in-process here.  The models are tiny and untrained.
"""

from __future__ import annotations

import argparse
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnbook import cli, cli_checks

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "book" / "images" / "digit_7_transparent.png"


def _save(model, path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        model.save(path)
    return path


def _classifier(classes, *tail):
    import keras

    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(classes), *tail])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Model files good and bad, images, and a file standing where a folder should be."""
    import keras

    d = tmp_path_factory.mktemp("cli_errors")
    f = {"dir": d}
    f["ten"] = _save(_classifier(10), d / "ten.keras")
    f["three"] = _save(_classifier(3), d / "three.keras")
    f["twelve"] = _save(_classifier(12), d / "twelve.keras")
    # Three classes behind a layer whose configuration does not say how many: found while predicting.
    f["three_hidden"] = _save(_classifier(3, keras.layers.Reshape((3,))), d / "three_hidden.keras")
    f["not_json"] = d / "not_json.keras"
    with zipfile.ZipFile(f["ten"]) as src, zipfile.ZipFile(f["not_json"], "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"{not json" if item.filename == "config.json" else src.read(item.filename))
    f["no_config"] = d / "no_config.keras"
    with zipfile.ZipFile(f["no_config"], "w") as archive:
        archive.writestr("notes.txt", "hello")
    f["empty_model"] = d / "empty.keras"
    f["empty_model"].write_bytes(b"")
    f["text_model"] = d / "text.keras"
    f["text_model"].write_text("a model, honestly")
    f["h5"] = d / "model.h5"
    f["h5"].write_bytes(b"\x89HDF\r\n\x1a\n")
    f["tflite"] = d / "model.tflite"
    f["tflite"].write_bytes(b"\x1c\x00\x00\x00TFL3")
    f["folder_model"] = d / "saved_model"
    f["folder_model"].mkdir()
    f["empty_image"] = d / "empty.png"
    f["empty_image"].write_bytes(b"")
    f["text_image"] = d / "notes.png"
    f["text_image"].write_text("not a picture")
    f["no_images"] = d / "no_images"
    f["no_images"].mkdir()
    f["a_file"] = d / "a_file.txt"
    f["a_file"].write_text("not a folder")
    return f


def _one_line_error(capsys, status, *expected, code=1):
    """The status is ``code``, stderr is one line starting ``cnnbook:`` and holds each expected phrase."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert status == code, captured.err
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    for phrase in expected:
        assert phrase in lines[0], lines[0]
    return lines[0]


# --- model files (predict, evaluate, export, explain alike) --------------------------------------


@pytest.mark.parametrize("name, phrases", [
    ("not_json", ["is damaged: its config.json is not JSON", "model.save('model.keras')"]),
    ("no_config", ["without config.json", "model.save('model.keras')"]),
    ("empty_model", ["is empty (0 bytes)", "save it again"]),
    ("text_model", ["not a .keras archive (not a zip file)", "model.save('model.keras')"]),
    ("h5", ["legacy HDF5 file", "model.save('model.keras')"]),
    ("tflite", ["TensorFlow Lite file", "give the .keras file it was exported from"]),
    ("folder_model", ["is a folder, not a model file", "model.save('model.keras')"]),
])
@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "explain"])
def test_unusable_model_files(files, capsys, name, phrases, command):
    model = str(files[name])
    argv = {"predict": ["predict", str(SAMPLE), "--model", model],
            "evaluate": ["evaluate", model, "--dataset", "mnist"],
            "export": ["export", model, "--format", "tflite", "--out", str(files["dir"] / "x.tflite")],
            "explain": ["explain", str(SAMPLE), "--model", model, "--out", str(files["dir"] / "x.png")]}[command]
    line = _one_line_error(capsys, cli.run(argv), *phrases)
    assert line.count("cannot load the model") <= 1


def test_missing_model_and_an_image_given_as_model(files, capsys):
    _one_line_error(capsys, cli.run(["predict", str(SAMPLE), "--model", str(files["dir"] / "nope.keras")]),
                    "no model file at", "cnnbook train --dataset mnist --out model.keras")
    _one_line_error(capsys, cli.run(["evaluate", str(SAMPLE), "--dataset", "mnist"]),
                    "is not a Keras model file", "model.save")


def test_predict_with_a_model_of_three_classes(files, capsys):
    line = _one_line_error(capsys, cli.run(["predict", str(SAMPLE), "--model", str(files["three"])]),
                           "outputs 3 classes", "digits 0-9", "cnnbook train --dataset mnist")
    assert "ValueError" not in line


def test_three_classes_found_only_while_predicting(files, capsys):
    assert cli_checks.model_classes(files["three_hidden"]) is None  # its config does not say
    _one_line_error(capsys, cli.run(["predict", str(SAMPLE), "--model", str(files["three_hidden"])]),
                    "outputs 3 classes", "needs 10, one per digit 0-9", "cnnbook train")


def test_explain_with_a_model_of_three_classes(files, capsys):
    _one_line_error(capsys, cli.run(["explain", str(SAMPLE), "--model", str(files["three"]),
                                     "--out", str(files["dir"] / "three.png")]), "outputs 3 classes")
    assert not (files["dir"] / "three.png").exists()


def test_evaluate_with_a_model_of_twelve_classes(files, capsys):
    _one_line_error(capsys, cli.run(["evaluate", str(files["twelve"]), "--dataset", "mnist"]),
                    "outputs 12 classes", "10 classes of mnist")


def test_model_classes_reads_sequential_and_functional_configs(files, tmp_path):
    import keras

    assert cli_checks.model_classes(files["ten"]) == 10
    assert cli_checks.model_classes(files["three"]) == 3
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Softmax()(keras.layers.Dense(7)(keras.layers.Flatten()(inputs)))
    functional = _save(keras.Model(inputs, outputs), tmp_path / "functional.keras")
    assert cli_checks.model_classes(functional) == 7
    assert cli_checks.model_classes(files["not_json"]) is None


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, phrase", [
    ("empty_image", "is empty (0 bytes)"),
    ("text_image", "is not an image Pillow can read"),
])
def test_unusable_image_files(files, capsys, name, phrase):
    _one_line_error(capsys, cli.run(["predict", str(files[name]), "--model", str(files["ten"])]),
                    phrase, "Pass a photo or scan")


def test_missing_image_and_a_folder_without_images(files, capsys):
    status = cli.run(["predict", str(files["dir"] / "nope.png"), "--model", str(files["ten"])])
    _one_line_error(capsys, status, "No such image file")
    status = cli.run(["predict", str(files["no_images"]), "--model", str(files["ten"])])
    _one_line_error(capsys, status, "holds no image file", ".png")


def test_explain_an_image_folder(files, capsys):
    status = cli.run(["explain", str(files["no_images"]), "--model", str(files["ten"]),
                      "--out", str(files["dir"] / "folder.png")])
    _one_line_error(capsys, status, "is a folder, not an image file")


# --- flags and outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv, phrase", [
    (["train", "--dataset", "mnist", "--out", "m.keras", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["evaluate", "MODEL", "--dataset", "mnist", "--test-size", "0"], "--test-size must be at least 1, got 0"),
    (["evaluate", "MODEL", "--dataset", "mnist", "--test-size", "-5"], "--test-size must be at least 1, got -5"),
    (["export", "MODEL", "--format", "tflite", "--quantize", "int8", "--dataset", "mnist",
      "--calibration-size", "0"], "--calibration-size must be at least 1, got 0"),
    (["predict", "IMAGE", "--model", "MODEL", "--top", "0"], "--top must be between 1 and 10"),
])
def test_flag_values_out_of_range(files, capsys, argv, phrase):
    argv = [str(files["ten"]) if a == "MODEL" else str(SAMPLE) if a == "IMAGE" else a for a in argv]
    _one_line_error(capsys, cli.run(argv), phrase, code=2)


def test_train_output_that_cannot_be_written(files, capsys):
    _one_line_error(capsys, cli.run(["train", "--dataset", "mnist", "--out", str(files["no_images"])]),
                    "is a folder; name a file")
    _one_line_error(capsys, cli.run(["train", "--dataset", "mnist", "--out", str(files["a_file"] / "m.keras")]),
                    "is a file, not a folder")
    _one_line_error(capsys, cli.run(["train", "--dataset", "mnist", "--out", str(files["dir"] / "m.txt")]),
                    "must be a .keras file")


def test_export_output_that_cannot_be_written(files, capsys):
    model = str(files["ten"])
    _one_line_error(capsys, cli.run(["export", model, "--format", "tflite", "--out", str(files["no_images"]),
                                     "--force"]), "is a folder; name a file")
    _one_line_error(capsys, cli.run(["export", model, "--format", "tflite", "--out",
                                     str(files["a_file"] / "m.tflite")]), "is a file, not a folder")


def test_explain_output_must_be_a_png_in_an_existing_folder(files, capsys):
    model = str(files["ten"])
    _one_line_error(capsys, cli.run(["explain", str(SAMPLE), "--model", model, "--out", str(files["dir"] / "o.jpg")]),
                    "--out must name a .png file", code=2)
    _one_line_error(capsys, cli.run(["explain", str(SAMPLE), "--model", model, "--out",
                                     str(files["dir"] / "missing" / "o.png")]), "does not exist", code=2)


def test_usage_errors_come_from_argparse_with_status_2(capsys):
    for argv in (["predict"], ["train", "--dataset", "imagenet", "--out", "m.keras"], ["predict", "x", "--top", "a"]):
        with pytest.raises(SystemExit) as stop:
            cli.run(argv)
        assert stop.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("cnnbook")


# --- what only the work itself meets -------------------------------------------------------------


def _args(**kw):
    return argparse.Namespace(**{"command": "export", "model": None, "out": None, **kw})


@pytest.mark.parametrize("error, phrase", [
    (PermissionError(13, "Permission denied", "/srv/out.tflite"), "permission denied: /srv/out.tflite"),
    (IsADirectoryError(21, "Is a directory", "/tmp/.x.tmp", None, "/tmp/x"), "/tmp/x is a folder; name a file"),
    (FileNotFoundError(2, "No such file or directory", "/gone"), "check the path"),
    (MemoryError(), "out of memory"),
    (ValueError("train_size must be at least the number of classes (10)."), "train_size must be at least"),
])
def test_errors_met_while_working_are_one_line(capsys, error, phrase):
    def work():
        raise error

    _one_line_error(capsys, cli_checks.guarded(_args(), work), phrase)


def test_ctrl_c_and_the_doubled_load_message(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert cli_checks.guarded(_args(), interrupted) == 130
    assert capsys.readouterr().err.strip() == "cnnbook: interrupted."

    def doubled():
        raise SystemExit("cnnbook: cannot load the model 'm.keras': cannot load the model 'm.keras': Unknown layer")

    with pytest.raises(SystemExit) as stop:
        cli_checks.guarded(_args(), doubled)
    assert stop.value.code == "cnnbook: cannot load the model 'm.keras': Unknown layer"


def test_a_good_model_passes_the_checks(files, capsys):
    args = cli._parser_with_web().parse_args(["predict", str(SAMPLE), "--model", str(files["ten"])])
    assert cli_checks.check(args) is None
    assert cli.run(["predict", str(SAMPLE), "--model", str(files["ten"]), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{SAMPLE}: ") and np.isfinite(float(out.split("(")[1].split("%")[0]))
