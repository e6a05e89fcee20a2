"""Our models side by side with the best-known tutorial models: same data, same machine, one run.

    python benchmarks/compare.py --dataset mnist                       # the book's precision on this CPU
    python benchmarks/compare.py --dataset mnist --precision float32   # every model in float32
    python benchmarks/compare.py --dataset mnist --precision float32 --onednn off   # TensorFlow's AVX2 default
    python benchmarks/compare.py --dataset mnist --precision float32 --train-size 500 --test-size 500 \\
        --validation-size 500 --max-epochs 1 --out /tmp/bench            # a quick check that it runs

Each model is trained and evaluated in a fresh process of its own, one after
another, on the same split with the same seed: keras-io's Simple MNIST convnet
(as published, and in bfloat16 as a control in bfloat16 runs), the source
article's (TensorFlow tutorial's) network, the book's model with its chapter
recipe and the book's ensemble (on CIFAR-10: the article's network, the
book's colour model and the book's small residual network).

``--precision``: ``float32`` runs every model in float32 (the bfloat16 control is
not measured, and the table says why); ``bfloat16`` runs the book's models and
the control in Keras' mixed_bfloat16 and the tutorials as published, in float32
— refused on a CPU without bfloat16 units unless ``--force-bfloat16``; ``auto``
(the default) is the book's own choice, ``cnnbook.hardware.preferred_dtype()``.

Writes ``<out>/<dataset>-<precision>.json`` and ``.md`` (the table the book's
"Results" page includes), the precision being the resolved one, so a float32
table sits beside the bfloat16 one; then prints the table and, for each of the
book's bars on that dataset, whether this run met it.  Definitions of every
figure: ``bench.report.DEFINITIONS`` (also in the JSON).

Full-size runs write to ``benchmarks/results/`` by default.  Reduced runs
(``--train-size``, ``--test-size``, ``--validation-size`` or ``--max-epochs``)
never do unless ``--out`` says so: they go to a temporary folder, so a quick
check cannot overwrite the book's measured results.  Works from any folder.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # already first when run as a script; not when imported
    sys.path.insert(0, str(HERE))

from bench.runner import run_benchmark  # noqa: E402
from bench.spec import DATASETS, DEFAULT_TARGETS, PRECISION_CHOICES, Settings, entries  # noqa: E402

RESULTS = HERE / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Train the tutorial models and the book's models side by side and compare them.",
        epilog="Default targets: " + "; ".join(f"{d} {t:.2%}" for d, (t, _) in DEFAULT_TARGETS.items()) + ".",
    )
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--models", nargs="+", metavar="KEY",
                        help="a subset of the dataset's models (default: all); mnist/fashion_mnist: keras_io "
                        "keras_io_bf16 article book_part1 book_ensemble (and book_wide on fashion_mnist); "
                        "cifar10: article book_cifar book_resnet. Ratios are against the first of these that runs.")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="float32: every model in float32; bfloat16: the book's models and the control in "
                        "mixed bfloat16, the tutorials in float32 as published; auto (default): the book's choice "
                        "for this CPU (hardware.preferred_dtype(); $CNNBOOK_DTYPE decides when set)")
    parser.add_argument("--force-bfloat16", action="store_true",
                        help="allow --precision bfloat16 on a CPU without bfloat16 units (it measures the emulation)")
    parser.add_argument("--train-size", type=int, help="stratified subset of the training split (quick checks)")
    parser.add_argument("--test-size", type=int, help="stratified subset of the test split (quick checks)")
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="images held out of the training set for validation (default 5000)")
    parser.add_argument("--max-epochs", type=int, help="cap on every recipe's epochs (quick checks)")
    parser.add_argument("--target", type=float,
                        help="target test accuracy for the time-to-accuracy column (default per dataset)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed for every model (default 0)")
    parser.add_argument("--cpus", type=int, help="run on this many CPU cores only (Linux)")
    parser.add_argument("--onednn", choices=("on", "off", "tensorflow"), default="on",
                        help="TensorFlow's oneDNN kernels in every worker: on (default, the book's choice: "
                        "TensorFlow turns them on by itself only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI "
                        "or AMX, and they measured faster on an AVX2-only CPU too), off, or tensorflow (its own "
                        "default for this CPU); the table records what ran")
    parser.add_argument("--max-isa", choices=("avx2",),
                        help="cap oneDNN at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2): an AVX2 CPU's oneDNN kernels on an "
                        "AVX-512 machine; with --onednn off the kernels are TensorFlow's own (Eigen), the same "
                        "build on every x86 CPU. Tables carry -avx2 in their file name")
    parser.add_argument("--out", type=Path,
                        help=f"output folder (default {RESULTS.relative_to(RESULTS.parents[1])}/ for full runs, "
                        "a temporary folder for reduced ones)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The comparison runs on the CPU: hide any GPU before TensorFlow is imported, so that
    # `auto` is the book's choice for the CPU, the one the workers compute on.
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    # Read by TensorFlow when it loads, in each worker process (they inherit this environment).
    if args.onednn == "tensorflow":
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    else:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"
    if args.max_isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.max_isa.upper()
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
            precision=args.precision,
            force_bfloat16=args.force_bfloat16,
        ).resolved()
        runs = settings.runs()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.models and runs and runs[0][0].key != entries(args.dataset)[0].key:
        print(f"note: ratios are against {runs[0][0].key}, the first model of this run.")
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="cnnbook-benchmark-")) if settings.reduced else RESULTS
    command = "python benchmarks/compare.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        run_benchmark(settings, out, command=command.strip())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
