"""The ``cnnbook`` command line: train, evaluate, predict, export, explain.

::

    cnnbook train --dataset mnist|fashion_mnist|cifar10 --out model.keras [--epochs N]
                  [--precision auto|float32|bfloat16] [--train-size N] [--seed S] [--force]
    cnnbook evaluate MODEL --dataset NAME [--test-size N] [--json] [--unsafe]
    cnnbook predict IMAGE_OR_FOLDER [...] [--model PATH] [--top K] [--json | --csv] [--unsafe]
    cnnbook export MODEL --format tflite [--quantize float32|float16|dynamic|int8] [--out PATH] [--force]
    cnnbook export MODEL --format web [--out PATH] [--force]
    cnnbook explain IMAGE --out overlay.png [--method grad_cam] [--model PATH] [--force] [--unsafe]

``predict`` prints, for each image of a handwritten digit, the ``K`` (default 3)
most probable digits and their probabilities.  Without ``--model`` it uses the
book's Part I model (:func:`cnnbook.training.trained_model`), which is trained
once — a few minutes — and cached in ``$CNNBOOK_MODEL_DIR``.  An input that is
not an image, an empty file or a blank page is reported as an error ("no digit
found"), never answered with a guess.

``export --format web`` writes the weights of the online book's drawing pad (a
JSON file with their provenance; :func:`run`, the command's entry point, adds it).

``explain`` prints the prediction for one image and writes the MNIST-like input with a
saliency map laid over it (:mod:`cnnbook.explain`) to a PNG file.

``train`` can be interrupted (Ctrl-C, a crash) and run again with the same
arguments: it resumes after the last finished epoch and ends with the same
weights as an uninterrupted run (:func:`cnnbook.workflows.train_to_file`).

Exit status: 0 when everything worked; 1 when an input could not be used (a
missing or unusable model file, an image without a digit, an empty folder, an
output that exists without ``--force``); 2 for a usage error; 130 when training
was interrupted (run the same command again to resume).

This module is the thin face: the work is done in :mod:`cnnbook.workflows`,
:mod:`cnnbook.export`, :mod:`cnnbook.evaluation` and :mod:`cnnbook.training`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["build_parser", "main"]

DIGITS = tuple(str(d) for d in range(10))


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its log noise (only the command does this; the package has no side effects)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced():
            import tensorflow  # noqa: F401
            import keras  # noqa: F401
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(keras|tensorflow)\.")
    warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy keyword")


def _fail(message: str) -> SystemExit:
    return SystemExit(f"cnnbook: {message}")


def _exists_unforced(out: Path, force: bool) -> bool:
    """Say so and return True when the output ``out`` exists and ``--force`` was not given."""
    if out.exists() and not force:
        print(f"cnnbook: {out} exists; pass --force to overwrite it.", file=sys.stderr)
        return True
    return False


def _load(path: str, unsafe: bool, input_shape: Sequence[int] | None = None) -> Any:
    from . import workflows

    try:
        return workflows.load_model_file(path, unsafe=unsafe, input_shape=input_shape)
    except workflows.ModelFileError as err:
        raise _fail(f"cannot load the model {path!r}: {err}") from None


def _load_model(path: str | None, unsafe: bool = False) -> Any:
    if path is not None:
        return _load(path, unsafe, input_shape=(28, 28, 1))
    from . import hardware, training

    dtype = hardware.preferred_dtype()
    # The file trained_model("mnist", dtype=dtype) will load: training owns the cache key.
    if not training.trained_model_path("mnist", dtype=dtype).is_file():
        print(f"cnnbook: no trained model cached in {training.model_dir()}; training the Part I "
              "MNIST model once (a few minutes on a laptop CPU) ...", file=sys.stderr, flush=True)
    return training.trained_model("mnist", dtype=dtype)


# --- Sub-commands: one function each ---------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from . import workflows

    try:
        record = workflows.train_to_file(
            args.dataset, args.out, epochs=args.epochs, precision=args.precision, train_size=args.train_size,
            seed=args.seed, force=args.force, progress=sys.stderr)
    except KeyboardInterrupt:
        print(f"\ncnnbook: interrupted; run the same command again to resume "
              f"(state in {workflows.work_dir_for(args.out)}).", file=sys.stderr)
        return 130
    except ValueError as err:
        print(f"cnnbook: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.dataset}, best epoch {record['best_epoch']} of {record['epochs_run']}, "
          f"validation accuracy {record['best_val_accuracy']:.2%}, {record['seconds']:.0f} s "
          f"(record: {Path(args.out).with_suffix('.json')})")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import workflows

    model = _load(args.model, args.unsafe)
    try:
        result = workflows.evaluate_model(model, args.dataset, test_size=args.test_size)
    except workflows.ModelFileError as err:
        raise _fail(f"cannot evaluate {args.model!r}: {err}") from None
    print(json.dumps(result, indent=2) if args.json else workflows.format_evaluation(result))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from . import images, workflows

    if not 1 <= args.top <= 10:
        print(f"cnnbook: --top must be between 1 and 10, got {args.top}.", file=sys.stderr)
        return 2
    try:
        paths = workflows.image_files(args.images)
    except ValueError as err:
        print(f"cnnbook: {err}", file=sys.stderr)
        return 1
    model = _load_model(args.model, args.unsafe)
    status, rows = 0, []
    for path in map(str, paths):
        row: dict[str, Any] = {"path": path, "classes": [], "probabilities": [], "error": None}
        try:
            result = workflows.predict_image(model, path, DIGITS, k=args.top)
        except images.NoDigitFoundError as err:
            row["error"] = str(err)  # the message starts with "No digit found"
            if not (args.json or args.csv):
                print(f"{path}: {err}")
            status = 1
        except (images.ImageError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
            row["error"] = str(err)
            print(f"{path}: error — {err}", file=sys.stderr)
            status = 1
        else:
            row["classes"] = [result.class_names[int(c)] for c in result.classes]
            row["probabilities"] = [round(float(p), 6) for p in result.probabilities]
            if not (args.json or args.csv):
                print(f"{path}: " + ", ".join(f"{c} ({p:.1%})" for c, p in zip(row["classes"], row["probabilities"])))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["path", *(f"{name}{i}" for i in range(1, args.top + 1) for name in ("class", "p")), "error"])
        for row in rows:
            ranked = [v for pair in zip(row["classes"], row["probabilities"]) for v in pair]
            writer.writerow([row["path"], *ranked, *[""] * (2 * args.top - len(ranked)), row["error"] or ""])
    return status


def _export(args: argparse.Namespace) -> int:
    from . import data, export

    out = Path(args.out) if args.out else Path(args.model).with_suffix(
        ".tflite" if args.quantize == "float32" else f".{args.quantize}.tflite")
    if _exists_unforced(out, args.force):
        return 1
    model = _load(args.model, args.unsafe)
    representative = None
    if args.quantize == "int8":
        dataset = args.dataset
        record = Path(args.model).with_suffix(".json")
        if dataset is None and record.is_file():
            dataset = json.loads(record.read_text()).get("dataset")
        if dataset is None:
            print("cnnbook: --quantize int8 calibrates on training images: name them with --dataset.",
                  file=sys.stderr)
            return 2
        # Calibration images from the training split (never the test split).
        representative = data.prepare(dataset, train_size=args.calibration_size, seed=0).x_train
        if tuple(representative.shape[1:]) != tuple(model.input_shape[1:]):
            raise _fail(f"the model takes inputs of shape {tuple(model.input_shape[1:])}, but {dataset} "
                        f"images are {tuple(representative.shape[1:])}.")
    content = export.to_tflite(model, args.quantize, representative=representative,
                               calibration_size=args.calibration_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, out)
    print(f"{out}: TensorFlow Lite, {args.quantize}, {len(content) / 1024:.1f} KiB")
    return 0


EXPLAIN_METHODS = ("grad_cam", "saliency", "smoothgrad", "occlusion")


def _explain(args: argparse.Namespace) -> int:
    """``cnnbook explain``: the prediction for one digit and a PNG of where the model looked."""
    from . import images, workflows

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        print(f"cnnbook: --out must name a .png file, got {args.out!r}.", file=sys.stderr)
        return 2
    if _exists_unforced(out, args.force):
        return 1
    if not out.parent.is_dir():
        print(f"cnnbook: the folder of --out ({out.parent}) does not exist.", file=sys.stderr)
        return 2
    model = _load_model(args.model, args.unsafe)
    try:
        result = workflows.predict_image(model, args.image, DIGITS, k=1)
    except images.NoDigitFoundError as err:
        print(f"{args.image}: {err}")
        return 1
    except (images.ImageError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"{args.image}: error — {err}", file=sys.stderr)
        return 1
    from . import explain, plots

    x = result.digit[None, :, :, None].astype("float32")
    try:
        heatmap = explain.METHODS[args.method](model, x, int(result.classes[0]))[0]
    except ValueError as err:  # e.g. Grad-CAM on a model without convolutions
        print(f"cnnbook: {err}", file=sys.stderr)
        return 1
    fig = plots.saliency_overlay(result.digit, heatmap,
                                 title=f"{result.label} ({result.confidence:.1%}) — {args.method}")
    fig.savefig(out, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"{args.image}: {result.label} ({result.confidence:.1%}); {args.method} overlay written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnnbook`` command and its sub-commands.

    Returns
    -------
    argparse.ArgumentParser
        Parsed arguments carry ``func``, the sub-command to call with them.
    """
    from .workflows import PRECISIONS, TRAINABLE

    parser = argparse.ArgumentParser(prog="cnnbook", description="Command line of the cnnbook helper package: "
                                     "train, evaluate, predict with, export and explain the book's CNNs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,predict,export,explain}")

    train = sub.add_parser("train", help="train the book's model for a dataset into a .keras file (resumable)",
                           description="Train with the book's recipe; after Ctrl-C or a crash, run the same "
                                       "command again to resume.  A JSON record is written beside the model.")
    train.add_argument("--dataset", required=True, choices=TRAINABLE)
    train.add_argument("--out", required=True, metavar="PATH", help="the .keras file to write")
    train.add_argument("--epochs", type=int, metavar="N", help="override the recipe's epochs")
    train.add_argument("--precision", default="auto", choices=tuple(PRECISIONS),
                       help="auto: bfloat16 where the CPU has it, else float32 (default auto)")
    train.add_argument("--train-size", type=int, metavar="N", help="train on a stratified subset of N images "
                       "(a quick run)")
    train.add_argument("--seed", type=int, default=0, help="seed of splits, weights, shuffles (default 0)")
    train.add_argument("--force", action="store_true", help="overwrite an existing output")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="accuracy with its interval, per-class report, confusion matrix",
                              description="Evaluate a saved model on a dataset's test split.")
    evaluate.add_argument("model", metavar="MODEL", help="a .keras file")
    evaluate.add_argument("--dataset", required=True, choices=TRAINABLE)
    evaluate.add_argument("--test-size", type=int, metavar="N", help="a stratified subset of N test images")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    evaluate.add_argument("--unsafe", action="store_true", help="allow a Lambda layer (its code runs on loading)")
    evaluate.set_defaults(func=_evaluate)

    predict = sub.add_parser(
        "predict",
        help="classify photos or scans of handwritten digits",
        description="Turn each image into an MNIST-like 28×28 input (grayscale, inverted if the paper is "
                    "light, cropped to the ink, fitted in 20×20, centred by mass) and print the most "
                    "probable digits.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s) or folder(s) of them: PNG, "
                         "JPEG, GIF, BMP, TIFF, WebP")
    predict.add_argument("--model", metavar="PATH", help="a saved Keras model (.keras) with logits outputs; "
                         "default: the book's Part I MNIST model")
    predict.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to print (default 3)")
    predict.add_argument("--unsafe", action="store_true", help="allow a Lambda layer (its code runs on loading)")
    output = predict.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON list for scripts")
    output.add_argument("--csv", action="store_true", help="print CSV for scripts")
    predict.set_defaults(func=_predict)

    export = sub.add_parser("export", help="convert a .keras model to TensorFlow Lite (LiteRT)",
                            description="Convert for phones and small devices.")
    export.add_argument("model", metavar="MODEL", help="a .keras file")
    export.add_argument("--format", required=True, choices=("tflite",))
    export.add_argument("--quantize", default="float32", choices=("float32", "float16", "dynamic", "int8"),
                        help="float32 (none), float16 weights, dynamic-range int8 weights, or full-integer "
                             "int8 (calibrated on training images)")
    export.add_argument("--dataset", choices=TRAINABLE, help="training images for int8 calibration (default: "
                        "the dataset in the model's JSON record)")
    export.add_argument("--calibration-size", type=int, default=200, metavar="N",
                        help="calibration images for int8 (default 200)")
    export.add_argument("--out", metavar="PATH", help="default: MODEL with .tflite (or .QUANT.tflite)")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.add_argument("--unsafe", action="store_true", help="allow a Lambda layer (its code runs on loading)")
    export.set_defaults(func=_export)
    explain = sub.add_parser(
        "explain",
        help="show where the model looks when it classifies a digit",
        description="Classify one image of a handwritten digit (prepared as for predict) and write a PNG of "
                    "the MNIST-like input beside it with a saliency map laid over it.",
    )
    explain.add_argument("image", metavar="IMAGE", help="image file: PNG, JPEG, GIF, BMP, TIFF, WebP")
    explain.add_argument("--out", required=True, metavar="PNG", help="where to write the overlay (.png)")
    explain.add_argument("--method", choices=EXPLAIN_METHODS, default="grad_cam",
                         help="saliency method (default grad_cam)")
    explain.add_argument("--model", metavar="PATH", help="a saved Keras model (.keras) with logits outputs; "
                         "default: the book's Part I MNIST model")
    explain.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    explain.add_argument("--unsafe", action="store_true", help="allow a Lambda layer (its code runs on loading)")
    explain.set_defaults(func=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cnnbook`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when everything worked, 1 when an input could not be used, 2 for a
        usage error (``argparse`` exits with 2 itself for malformed arguments),
        130 when training was interrupted.
    """
    args = build_parser().parse_args(argv)
    _quiet_tensorflow()
    return int(args.func(args))


# --- export --format web: the online book's drawing pad -------------------------
#
# ``main`` and ``build_parser`` are reached by chapter 13, which runs the
# command line in its cells: changing them would make it stale.  ``run`` (the
# ``cnnbook`` command's entry point) is ``main`` plus ``--format web``; fold it
# into them at chapter 13's next full run.


def _export_web(args: argparse.Namespace) -> int:
    from . import models, web  # noqa: F401 - models registers FusedBatchNormalization for loading

    if args.quantize != "float32":
        print("cnnbook: --format web stores float32 weights; leave out --quantize.", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.model).with_suffix(".web.json")
    if _exists_unforced(out, args.force):
        return 1
    model = _load(args.model, args.unsafe)
    try:
        record = web.to_web(model, web.web_provenance(args.model))
    except ValueError as err:
        raise _fail(str(err)) from None
    text = json.dumps(record, indent=1) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(f"{out}: weights for the drawing pad (JSON), {record['parameters']:,} parameters, "
          f"{len(text.encode()) / 1024:.1f} KiB")
    return 0


def _parser_with_web() -> argparse.ArgumentParser:
    """:func:`build_parser`, with ``web`` among ``export --format``'s choices."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    export = commands.choices["export"]
    fmt = next(a for a in export._actions if a.dest == "format")
    fmt.choices = (*fmt.choices, "web")
    fmt.help = ("tflite: TensorFlow Lite; web: the online book's drawing pad "
                "(JSON weights with their provenance, default MODEL.web.json)")
    export.description = "Convert a .keras model to TensorFlow Lite (LiteRT) or to the drawing pad's weights."
    return parser


def _record_kernels(record: Path, kernels: dict) -> None:
    """Add the kernels the training ran with to ``cnnbook train``'s JSON record (if it wrote one)."""
    if record.is_file():
        data = json.loads(record.read_text(encoding="utf-8"))
        data["kernels"] = kernels
        record.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cnnbook`` command: :func:`main` plus ``export --format web``.

    It also checks the arguments before any work and words every error the
    sub-commands can meet in one line with its fix, never a traceback
    (:func:`cnnbook.cli_checks.guarded`).

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        As :func:`main`; 1 or 2 for an input :mod:`cnnbook.cli_checks` refused.
    """
    from . import cli_checks

    args = _parser_with_web().parse_args(argv)

    def work() -> int:
        from . import hardware

        # The book's kernel choice, before TensorFlow loads (called from Python with TensorFlow
        # already loaded, the kernels are those it loaded with, and the record says so).
        loaded = "tensorflow" in sys.modules
        kernels = hardware.expected_onednn_state() if loaded else hardware.use_onednn()
        _quiet_tensorflow()
        if args.command == "export" and args.format == "web":
            return _export_web(args)
        status = int(args.func(args))
        if args.command == "train" and status == 0:
            _record_kernels(Path(args.out).with_suffix(".json"), kernels)
        return status

    return cli_checks.guarded(args, work)


if __name__ == "__main__":
    sys.exit(run())
