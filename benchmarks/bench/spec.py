"""What the benchmark compares: its rows, a run's settings, the precision, where results go.

Every row (:class:`Entry`) says how its model is *built* (a function of the
splits and a Keras dtype policy) and how it is *trained*: a
:class:`cnnbook.training.TrainConfig` for its recipe, and which weights the
recipe keeps — the tutorials' last epoch, or the book's best validation epoch
(:func:`cnnbook.training.fit_classifier`).  The worker (:mod:`bench.worker`)
does nothing per row but call these.

Importing this module imports no TensorFlow: the build and config functions
import :mod:`cnnbook` modules when they are called (inside a worker); only
:mod:`cnnbook.data` (NumPy at import) is imported here, for :data:`DATASETS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

from cnnbook.data import DATASETS  # the datasets cnnbook can load; one home for the list

__all__ = [
    "BookRecipe",
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_TARGETS",
    "PRECISIONS",
    "PRECISION_CHOICES",
    "Entry",
    "Settings",
    "bfloat16_units",
    "entries",
    "resolve_precision",
    "result_paths",
]

DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

#: Default target test accuracy per dataset (the *Time to* column), and where it comes from.
DEFAULT_TARGETS: dict[str, tuple[float, str]] = {
    "mnist": (0.9922, "the final test accuracy keras-io publishes for its Simple MNIST convnet"),
    "fashion_mnist": (0.91, "a round target that small CNNs reach on Fashion-MNIST (not a published figure)"),
    "cifar10": (0.70, "the test accuracy TensorFlow's CNN tutorial reports for the article's network"),
}

#: The precision a run is measured in (``--precision``; ``auto`` resolves to one of these).
PRECISIONS = ("float32", "bfloat16")
PRECISION_CHOICES = ("auto", *PRECISIONS)

#: The Keras dtype policy of each precision.
DTYPE_POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


# --- How each row's model is built (called inside a worker) ------------------------


def _keras_io_model(splits: Any, dtype: str) -> Any:
    from cnnbook import models

    return models.keras_io_convnet(splits.input_shape, splits.num_classes, dtype=dtype)


def _article_model(splits: Any, dtype: str) -> Any:
    from cnnbook import models

    if dtype != "float32":  # models.article_cnn is the tutorial's listing: it has no dtype argument
        raise ValueError(f"The article's network is measured as published, in float32, not {dtype!r}.")
    return models.article_cnn(splits.input_shape, splits.num_classes)


def _book_part1_model(splits: Any, dtype: str) -> Any:
    from cnnbook import models

    return models.mnist_cnn(splits.input_shape, splits.num_classes, dtype=dtype)


def _book_cifar_model(splits: Any, dtype: str) -> Any:
    from cnnbook import data, models

    # Per-channel statistics of the training images, accumulated in float64 as in the chapter
    # (Normalization.adapt sums in float32, which stalls at 2**24 on CIFAR-10's training split).
    normalizer = models.channel_normalizer(*data.channel_statistics(splits.x_train))
    return models.cifar_cnn(splits.input_shape, splits.num_classes, normalizer=normalizer, dtype=dtype)


def _book_resnet_model(splits: Any, dtype: str) -> Any:
    from cnnbook import data, models

    # The input standardised as for book_cifar (float64 statistics of the training images).
    normalizer = models.channel_normalizer(*data.channel_statistics(splits.x_train))
    return models.cifar_resnet(splits.input_shape, splits.num_classes, normalizer=normalizer, dtype=dtype)


def _book_ensemble_member(splits: Any, dtype: str) -> Any:
    from cnnbook import training

    return training.ensemble_member(splits, dtype)


def _book_ensemble_augmentation(dataset: str, seed: int) -> Any:
    from cnnbook import training

    return training.ensemble_augmentation(dataset, seed)


# --- How each row is trained: a TrainConfig (called inside a worker) ---------------


def _tutorial_config(dataset: str, seed: int, *, epochs: int, batch_size: int) -> Any:
    """A tutorial's recipe: Adam at a constant 1e-3, a fixed number of epochs, no early stopping."""
    from cnnbook import training

    return training.TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=1e-3, schedule="constant", patience=epochs, seed=seed
    )


@dataclass(frozen=True)
class BookRecipe:
    """The book's recipe for a row: ``cnnbook.training.<function>(dataset, seed=seed)`` as the library defines it today.

    ``function`` is the public name (``"default_config"``, ``"ensemble_config"``, ``"cifar_cnn_config"``,
    ``"resnet_config"``), which the report also prints, so that a reader knows where the recipe's numbers and the
    measurements behind them live.
    """

    function: str

    def __call__(self, dataset: str, seed: int) -> Any:
        from cnnbook import training

        return getattr(training, self.function)(dataset, seed=seed)

    @property
    def origin(self) -> str:
        return f"training.{self.function}"


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: which model, trained how, in which precision, and why it is there."""

    key: str
    name: str
    source: str
    recipe: str
    #: ``build(splits, dtype_policy)`` -> an uncompiled Keras model with logits out.
    build: Callable[[Any, str], Any]
    #: ``config(dataset, seed)`` -> the ``training.TrainConfig`` of the recipe (before ``--max-epochs``).
    config: Callable[[str, int], Any]
    #: ``"last"``: the tutorials' fit — no callbacks, the last epoch's weights; ``"best"``:
    #: ``training.fit_classifier`` — early stopping, checkpoints, the best validation epoch's weights.
    weights: str = "best"
    #: ``"float32"``: always (as published); ``"run"``: the run's precision;
    #: ``"bfloat16"``: bfloat16 runs only (a control row, pointless in a float32 run).
    precision: str = "run"
    #: ``augment(seed)`` -> the training-time augmentation layer, or None.
    augment: Callable[[int], Any] | None = None
    #: Train ``training.ENSEMBLE_MEMBERS`` copies (2 in reduced runs) and average their probabilities.
    ensemble: bool = False
    best_single: bool = False
    #: Predict the test split as the chapter does: average the test-time views
    #: (``cnnbook.evaluation.predict_views``) that score best on the validation split.
    test_views: bool = False

    def __post_init__(self) -> None:
        if self.weights not in ("last", "best"):
            raise ValueError(f"weights must be 'last' or 'best', got {self.weights!r}.")
        if self.precision not in ("float32", "run", "bfloat16"):
            raise ValueError(f"precision must be 'float32', 'run' or 'bfloat16', got {self.precision!r}.")
        if self.ensemble and self.weights != "best":
            raise ValueError("an ensemble is trained with the book's recipe (weights='best').")

    def dtype(self, precision: str) -> str | None:
        """The Keras dtype policy this row computes in, in a run of ``precision``; None: not run."""
        _check_precision(precision)
        if self.precision == "float32":
            return "float32"
        if self.precision == "bfloat16" and precision != "bfloat16":
            return None
        return DTYPE_POLICY[precision]

    def skipped_because(self, precision: str) -> str | None:
        """Why this row is not measured in a run of ``precision`` (None: it is)."""
        if self.dtype(precision) is not None:
            return None
        return (
            f"not measured in a {precision} run: this is a bfloat16 control, and every model here computes "
            f"in {precision}"
        )


_KERAS_IO = Entry(
    key="keras_io",
    name="keras-io Simple MNIST convnet",
    source="https://keras.io/examples/vision/mnist_convnet/ (re-implemented from its description)",
    recipe="Adam 1e-3 constant, batch 128, 15 epochs, no augmentation; validation on our "
    "validation split (keras-io: validation_split=0.1); the last epoch's weights; float32, as published",
    build=_keras_io_model,
    config=partial(_tutorial_config, epochs=15, batch_size=128),
    weights="last",
    precision="float32",
)
_KERAS_IO_BF16 = replace(
    _KERAS_IO,
    key="keras_io_bf16",
    name="keras-io Simple MNIST convnet in bfloat16 (control)",
    source="the keras-io model and recipe above, computing in mixed bfloat16 (float32 weights and logits)",
    recipe="as keras-io's, in Keras' mixed_bfloat16 policy: the control that shows how much of the book "
    "model's speed comes from the precision rather than the model and its schedule (bfloat16 runs only)",
    precision="bfloat16",
)
_ARTICLE = Entry(
    key="article",
    name="Source article / TensorFlow CNN tutorial (repaired)",
    source="https://www.tensorflow.org/tutorials/images/cnn (the article's listing, logits out)",
    recipe="Adam 1e-3 constant, batch 32 (Keras' default, which the tutorial uses), 10 epochs, no "
    "augmentation; validation on our validation split (the tutorial validates on the test set); the last "
    "epoch's weights; float32, as published",
    build=_article_model,
    config=partial(_tutorial_config, epochs=10, batch_size=32),
    weights="last",
    precision="float32",
)
_BOOK_PART1 = Entry(
    key="book_part1",
    name="Book, Part I model (chapter 5)",
    source="cnnbook.models.mnist_cnn + cnnbook.training.default_config(dataset)",
    recipe="the chapter recipe: training.default_config(dataset) with fit_classifier (one-cycle Adam, "
    "early stopping and checkpointing on the validation split), in the run's precision; the best validation "
    "epoch's weights",
    build=_book_part1_model,
    config=BookRecipe("default_config"),
    best_single=True,
)
_BOOK_ENSEMBLE = Entry(
    key="book_ensemble",
    name="Book, ensemble (chapter 9)",
    source="cnnbook.training.ensemble_member + ensemble_config + ensemble_augmentation + train_ensemble; "
    "cnnbook.evaluation.ensemble_average (chapter 9)",
    recipe="training.ENSEMBLE_MEMBERS members (training.ensemble_member: on MNIST chapter 8's network at width "
    "training.ENSEMBLE_WIDTH, elsewhere the Part I model; initial weights seeded seed, seed + 1, ...) trained side "
    "by side as the branches of one model with the ensemble recipe (training.ensemble_config) and augmentation "
    "(training.ensemble_augmentation: on MNIST rotations, zooms and shifts), keeping the epoch with the best mean "
    "validation accuracy of the members; soft voting (mean probabilities). Training time is that of the joint "
    "run; time to target is measured after each epoch, on the soft vote of all members",
    build=_book_ensemble_member,
    config=BookRecipe("ensemble_config"),
    ensemble=True,
)
_BOOK_CIFAR = Entry(
    key="book_cifar",
    name="Book, colour model (best single model)",
    source="cnnbook.models.cifar_cnn + training.default_config('cifar10') (its augmentation included)",
    recipe="the colour chapter's recipe: cifar_cnn (width 32, per-channel normalisation from the training images' float64 statistics, "
    "fused batch normalisation) trained by fit_classifier with training.default_config('cifar10') "
    "(one-cycle SGD with Nesterov momentum) with the recipe's augmentation, in the run's precision; the best validation epoch's weights; the final "
    "test accuracy with the chapter's test-time views, chosen on the validation split (the accuracy by epoch, "
    "and so the time to target, without them)",
    build=_book_cifar_model,
    config=BookRecipe("default_config"),
    best_single=True,
    test_views=True,
)
_BOOK_WIDE = Entry(
    key="book_wide",
    name="Book, chapter 8's network (the best single model on Fashion-MNIST)",
    source="cnnbook.models.cifar_cnn + cnnbook.training.cifar_cnn_config(dataset) (chapter 10)",
    recipe="the network chapter 10 chooses at the full budget on the validation split: cifar_cnn (width 32, "
    "per-channel normalisation from the training images' float64 statistics) trained by fit_classifier with "
    "training.cifar_cnn_config(dataset) (one-cycle AdamW, mirror images), in the run's precision; the best "
    "validation epoch's weights; the final test accuracy with the test-time views chosen on the validation "
    "split (the accuracy by epoch, and so the time to target, without them)",
    build=_book_cifar_model,
    config=BookRecipe("cifar_cnn_config"),
    best_single=True,
    test_views=True,
)
_BOOK_RESNET = Entry(
    key="book_resnet",
    name="Book, small residual network (ResNet-14)",
    source="cnnbook.models.cifar_resnet + cnnbook.training.resnet_config('cifar10') (its augmentation included)",
    recipe="cifar_resnet (default: width 16, two residual blocks per stage, strided down-sampling; per-channel "
    "normalisation from the training images' float64 statistics, fused batch normalisation) trained by "
    "fit_classifier with training.resnet_config('cifar10') (chapter 8's recipe: one-cycle SGD with Nesterov "
    "momentum) with the recipe's augmentation, in the run's precision; the best validation epoch's weights; "
    "the final test accuracy with the test-time views chosen on the validation split, as for book_cifar (the "
    "accuracy by epoch, and so the time to target, without them)",
    build=_book_resnet_model,
    config=BookRecipe("resnet_config"),
    test_views=True,
)

_ENTRIES = {
    "mnist": (_KERAS_IO, _KERAS_IO_BF16, _ARTICLE, _BOOK_PART1,
              replace(_BOOK_ENSEMBLE, augment=partial(_book_ensemble_augmentation, "mnist"))),
    # Elsewhere training.ensemble_augmentation is the recipe's own, which the worker applies (and names).
    "fashion_mnist": (_KERAS_IO, _KERAS_IO_BF16, _ARTICLE, _BOOK_PART1, _BOOK_ENSEMBLE, _BOOK_WIDE),
    "cifar10": (_ARTICLE, _BOOK_CIFAR, _BOOK_RESNET),
}

#: Rows the book does not have for a dataset: reported, never invented.
NOT_MEASURED = {
    "cifar10": {"book_ensemble": ("Book, ensemble", "the book's ensemble chapter covers the MNIST family only")},
}


def entries(dataset: str) -> tuple[Entry, ...]:
    """The models compared on ``dataset``; the first one that runs is the reference for the ratios."""
    _check_dataset(dataset)
    return _ENTRIES[dataset]


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} here, got {precision!r}.")


# --- Precision ---------------------------------------------------------------------


def bfloat16_units() -> tuple[str, ...]:
    """The CPU's flags of units that multiply bfloat16 natively (``hardware.BFLOAT16_CPU_FLAGS``); () if none."""
    from cnnbook import hardware

    return tuple(sorted(hardware.cpu_flags() & set(hardware.BFLOAT16_CPU_FLAGS)))


def resolve_precision(requested: str, *, force: bool = False) -> str:
    """``"float32"`` or ``"bfloat16"``: what a run asked to be ``requested`` computes in.

    ``auto`` is the book's own choice, :func:`cnnbook.hardware.preferred_dtype` for a
    CPU-only process (bfloat16 where the CPU has bfloat16 units; ``$CNNBOOK_DTYPE``
    decides when set).  ``bfloat16`` on a CPU without those units is refused —
    TensorFlow would emulate it, slower than float32, and the table would measure
    the emulation — unless ``force``.
    """
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {requested!r}.")
    if requested == "float32":
        return "float32"
    from cnnbook import hardware

    if requested == "auto":
        return "bfloat16" if hardware.preferred_dtype() == "mixed_bfloat16" else "float32"
    if not force and not bfloat16_units():
        from cnnbook.book import machine_info

        raise ValueError(
            f"--precision bfloat16 needs a CPU that multiplies bfloat16 natively (a flag "
            f"{' or '.join(hardware.BFLOAT16_CPU_FLAGS)} in /proc/cpuinfo), and this one "
            f"({machine_info()['cpu']}) has none: TensorFlow would emulate bfloat16, slower than float32, so the "
            "bfloat16 rows would measure the emulation. Use --precision float32 (or auto), or add "
            "--force-bfloat16 to measure the emulation anyway."
        )
    return "bfloat16"


def result_paths(out_dir: str | Path, dataset: str, precision: str) -> tuple[Path, Path]:
    """``(<out>/<dataset>-<precision>.json, <out>/<dataset>-<precision>.md)`` for a resolved precision."""
    _check_dataset(dataset)
    _check_precision(precision)
    stem = Path(out_dir) / f"{dataset}-{precision}"
    return stem.with_suffix(".json"), stem.with_suffix(".md")


# --- A run's settings --------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What one benchmark run uses; everything but ``models`` is the same for every model."""

    dataset: str = "mnist"
    models: tuple[str, ...] = ()  # empty: all of the dataset's entries
    train_size: int | None = None
    test_size: int | None = None
    validation_size: int = 5000
    max_epochs: int | None = None
    seed: int = 0
    target: float | None = None  # None: DEFAULT_TARGETS[dataset]
    cpus: int | None = None
    precision: str = "auto"  # "auto", "float32" or "bfloat16"; see resolved()
    force_bfloat16: bool = False

    def __post_init__(self) -> None:
        _check_dataset(self.dataset)
        known = {e.key for e in _ENTRIES[self.dataset]}
        unknown = [m for m in self.models if m not in known]
        if unknown:
            raise ValueError(
                f"Unknown model(s) {', '.join(unknown)} for {self.dataset}; choose from {', '.join(sorted(known))}."
            )
        for name in ("train_size", "test_size", "max_epochs", "cpus"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}.")
        if self.validation_size < 1:
            raise ValueError(f"validation_size must be a positive integer, got {self.validation_size}.")
        if self.target is not None and not 0.0 < self.target <= 1.0:
            raise ValueError(f"target must be an accuracy in (0, 1], got {self.target}.")
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {self.precision!r}.")

    @property
    def reduced(self) -> bool:
        """True when any setting makes this a quick check rather than the benchmark itself."""
        return (
            self.train_size is not None or self.test_size is not None or self.max_epochs is not None
            or self.validation_size != 5000
        )

    @property
    def target_accuracy(self) -> float:
        return self.target if self.target is not None else DEFAULT_TARGETS[self.dataset][0]

    def resolved(self) -> "Settings":
        """These settings with ``precision`` resolved to ``float32`` or ``bfloat16`` (see resolve_precision).

        Raises ValueError for ``bfloat16`` on a CPU without bfloat16 units unless ``force_bfloat16``.
        """
        return replace(self, precision=resolve_precision(self.precision, force=self.force_bfloat16))

    def selected(self) -> tuple[Entry, ...]:
        """The dataset's rows this run asks for (``models``, in the dataset's order)."""
        return tuple(e for e in entries(self.dataset) if not self.models or e.key in self.models)

    def runs(self) -> tuple[tuple[Entry, str], ...]:
        """``(entry, dtype policy)`` of every selected row measured at this run's (resolved) precision."""
        _check_precision(self.precision)
        return tuple((e, e.dtype(self.precision)) for e in self.selected() if e.dtype(self.precision) is not None)

    def skipped(self) -> tuple[tuple[Entry, str], ...]:
        """``(entry, why)`` of every selected row *not* measured at this run's precision."""
        _check_precision(self.precision)
        return tuple((e, e.skipped_because(self.precision)) for e in self.selected() if e.dtype(self.precision) is None)
