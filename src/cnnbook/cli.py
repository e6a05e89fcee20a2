"""The ``cnnbook`` command line.

::

    cnnbook predict IMAGE [IMAGE ...] [--model PATH] [--top K]

prints, for each image of a handwritten digit, the ``K`` (default 3) most
probable digits and their probabilities.  Without ``--model`` it uses the
book's Part I model (:func:`cnnbook.training.trained_model`), which is trained
once — a few minutes — and cached in ``$CNNBOOK_MODEL_DIR``.

An input that is not an image, an empty file or a blank page is reported as an
error ("no digit found"), never answered with a guess.  Exit status: 0 when
every image got a prediction, 1 when some image held no digit or could not be
read, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

__all__ = ["main"]

DIGITS = tuple(str(d) for d in range(10))


def _load_model(path: str | None) -> Any:
    if path is not None:
        import keras

        try:
            return keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as err:
            raise SystemExit(f"cnnbook: cannot load the model {path!r}: {err}") from None
    from . import training

    dtype = training.preferred_dtype()
    # The file trained_model("mnist", dtype=dtype) will load: training owns the cache key.
    if not training.trained_model_path("mnist", dtype=dtype).is_file():
        print(f"cnnbook: no trained model cached in {training.model_dir()}; training the Part I "
              "MNIST model once (a few minutes on a laptop CPU) ...", file=sys.stderr, flush=True)
    return training.trained_model("mnist", dtype=dtype)


def _predict(args: argparse.Namespace) -> int:
    from . import evaluation, images

    if not 1 <= args.top <= 10:
        print(f"cnnbook: --top must be between 1 and 10, got {args.top}.", file=sys.stderr)
        return 2
    model = _load_model(args.model)
    status = 0
    for path in args.images:
        try:
            result = evaluation.predict_image(model, path, DIGITS, k=args.top)
        except images.NoDigitFoundError as err:
            print(f"{path}: {err}")  # the message starts with "No digit found"
            status = 1
            continue
        except (images.ImageError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
            print(f"{path}: error — {err}", file=sys.stderr)
            status = 1
            continue
        ranked = ", ".join(f"{result.class_names[int(c)]} ({float(p):.1%})"
                           for c, p in zip(result.classes, result.probabilities))
        print(f"{path}: {ranked}")
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnnbook`` command (its ``predict`` sub-command).

    Returns
    -------
    argparse.ArgumentParser
        Parsed arguments carry ``func``, the sub-command to call with them.
    """
    parser = argparse.ArgumentParser(prog="cnnbook", description="Command line of the cnnbook helper package.")
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser(
        "predict",
        help="classify photos or scans of handwritten digits",
        description="Turn each image into an MNIST-like 28×28 input (grayscale, inverted if the paper is "
                    "light, cropped to the ink, fitted in 20×20, centred by mass) and print the most "
                    "probable digits.",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s): PNG, JPEG, GIF, BMP, TIFF, WebP")
    predict.add_argument("--model", metavar="PATH", help="a saved Keras model (.keras) with logits outputs; "
                         "default: the book's Part I MNIST model")
    predict.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to print (default 3)")
    predict.set_defaults(func=_predict)
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
        0 when every image got a prediction, 1 when some image held no digit or
        could not be read, 2 for a usage error (``argparse`` exits with 2 itself
        for malformed arguments).
    """
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
