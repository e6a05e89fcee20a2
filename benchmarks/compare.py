"""Our models side by side with the best-known tutorial models: same data, same machine, one run.

    python benchmarks/compare.py --dataset mnist            # the benchmark (about 12 min on 2 cores)
    python benchmarks/compare.py --dataset mnist --train-size 500 --test-size 500 \\
        --validation-size 500 --max-epochs 1 --out /tmp/bench  # a quick check that it runs

Each model is trained and evaluated in a fresh process of its own, one after
another, on the same split with the same seed: keras-io's Simple MNIST convnet
(as published, and in bfloat16 as a control), the source article's (TensorFlow
tutorial's) network, the book's model with its chapter recipe and the book's
ensemble (on CIFAR-10: the article's network and the book's colour model).  Writes ``<out>/<dataset>.json`` and ``<out>/<dataset>.md`` (the table
the book's "Results" page includes).  Definitions of every figure:
``cnnbook.benchmark.DEFINITIONS`` (also in the JSON).

Full-size runs write to ``benchmarks/results/`` by default.  Reduced runs
(``--train-size``, ``--test-size``, ``--validation-size`` or ``--max-epochs``)
never do unless ``--out`` says so: they go to a temporary folder, so a quick
check cannot overwrite the book's measured results.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from cnnbook.benchmark import DATASETS, DEFAULT_TARGETS, Settings, entries, run_benchmark

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the tutorial models and the book's models side by side and compare them.",
        epilog="Default targets: " + "; ".join(f"{d} {t:.2%}" for d, (t, _) in DEFAULT_TARGETS.items()) + ".",
    )
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--models", nargs="+", metavar="KEY",
                        help="a subset of the dataset's models (default: all); mnist/fashion_mnist: keras_io "
                        "article book_part1; cifar10: article book_cifar. Ratios are against the first of these that runs.")
    parser.add_argument("--train-size", type=int, help="stratified subset of the training split (quick checks)")
    parser.add_argument("--test-size", type=int, help="stratified subset of the test split (quick checks)")
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="images held out of the training set for validation (default 5000)")
    parser.add_argument("--max-epochs", type=int, help="cap on every recipe's epochs (quick checks)")
    parser.add_argument("--target", type=float,
                        help="target test accuracy for the time-to-accuracy column (default per dataset)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed for every model (default 0)")
    parser.add_argument("--cpus", type=int, help="run on this many CPU cores only (Linux)")
    parser.add_argument("--out", type=Path,
                        help=f"output folder (default {RESULTS.relative_to(RESULTS.parents[1])}/ for full runs, "
                        "a temporary folder for reduced ones)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings(
            dataset=args.dataset,
            models=tuple(args.models or ()),
            train_size=args.train_size,
            test_size=args.test_size,
            validation_size=args.validation_size,
            max_epochs=args.max_epochs,
            seed=args.seed,
            target=args.target,
            cpus=args.cpus,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.models:
        first = entries(args.dataset)[0].key
        if settings.selected()[0].key != first:
            print(f"note: ratios are against {settings.selected()[0].key}, the first model of this run.")
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="cnnbook-benchmark-")) if settings.reduced else RESULTS
    command = "python benchmarks/compare.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    run_benchmark(settings, out, command=command.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
