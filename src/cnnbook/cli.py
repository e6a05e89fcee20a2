"""The ``cnnbook`` command line.

::

    cnnbook predict IMAGE [IMAGE ...] [--model PATH] [--top K]
    cnnbook explain IMAGE --out overlay.png [--method grad_cam] [--model PATH] [--force]

prints, for each image of a handwritten digit, the ``K`` (default 3) most
probable digits and their probabilities.  Without ``--model`` it uses the
book's Part I model (:func:`cnnbook.training.trained_model`), which is trained
once — a few minutes — and cached in ``$CNNBOOK_MODEL_DIR``.

An input that is not an image, an empty file or a blank page is reported as an
error ("no digit found"), never answered with a guess.  ``explain`` prints the
prediction for one image and writes the image with a saliency map laid over it
(:mod:`cnnbook.explain`) to a PNG file; it does not overwrite a file without
``--force``.  Exit status: 0 when
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


EXPLAIN_METHODS = ("grad_cam", "saliency", "smoothgrad", "occlusion")


def _explain(args: argparse.Namespace) -> int:
    """``cnnbook explain``: the prediction for one digit and a PNG of where the model looked."""
    from pathlib import Path

    from . import evaluation, images

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        print(f"cnnbook: --out must name a .png file, got {args.out!r}.", file=sys.stderr)
        return 2
    if out.exists() and not args.force:
        print(f"cnnbook: {args.out} exists; pass --force to overwrite it.", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"cnnbook: the folder of --out ({out.parent}) does not exist.", file=sys.stderr)
        return 2
    model = _load_model(args.model)
    try:
        result = evaluation.predict_image(model, args.image, DIGITS, k=1)
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
        return 2
    fig = plots.saliency_overlay(result.digit, heatmap,
                                 title=f"{result.label} ({result.confidence:.1%}) — {args.method}")
    fig.savefig(out, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"{args.image}: {result.label} ({result.confidence:.1%}); {args.method} overlay written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnnbook`` command (its ``predict`` and ``explain`` sub-commands).

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
        0 when every image got a prediction, 1 when some image held no digit or
        could not be read, 2 for a usage error (``argparse`` exits with 2 itself
        for malformed arguments).
    """
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
