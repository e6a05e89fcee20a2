"""The side-by-side benchmark: tutorial models and the book's models, same data, same machine.

``benchmarks/compare.py`` is the command-line face of this module.  Each model
is trained and evaluated in a fresh Python process of its own, one after
another, with the same split and the same seed, so that one model's memory or
thread pools never colour the next one's figures and each peak RSS is its own.

What is measured for every model (definitions also in :data:`DEFINITIONS`):

- *training time*: wall-clock seconds of ``model.fit`` — every training step,
  the validation pass of every epoch and the recipe's own callbacks (the book's
  checkpointing included), since all of them are part of training with that
  recipe — minus the time spent measuring test accuracy for the figure below;
- *time to target*: DAWNBench-style, the training time at the end of the first
  epoch whose test accuracy reaches the target.  Test accuracy is measured at
  each epoch end for this figure only: its time is kept off the training clock
  and it never picks a model or stops training;
- *test accuracy*: of the model the recipe returns (the last epoch for the
  tutorials, the best-validation epoch for the book's recipe), on the test split;
- parameters, inference images/s (batch 1,024, CPU, median of three passes over
  the test split after a warm-up) and the process's peak resident memory.

This module imports TensorFlow/Keras only inside the functions that train.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "DATASETS",
    "DEFAULT_TARGETS",
    "DEFINITIONS",
    "MODEL_FIELDS",
    "REPORT_FIELDS",
    "Entry",
    "Settings",
    "build_report",
    "entries",
    "main",
    "run_benchmark",
    "run_worker",
    "time_to_accuracy",
    "to_markdown",
]

DATASETS = ("mnist", "fashion_mnist", "cifar10")

DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

#: Default target test accuracy per dataset, and where it comes from.
DEFAULT_TARGETS: dict[str, tuple[float, str]] = {
    "mnist": (0.9922, "the final test accuracy keras-io publishes for its Simple MNIST convnet"),
    "fashion_mnist": (0.91, "a round target that small CNNs reach on Fashion-MNIST (not a published figure)"),
    "cifar10": (0.70, "the test accuracy TensorFlow's CNN tutorial reports for the article's network"),
}

#: The "bar" the book sets itself on a dataset: model, reference, time ratio and final accuracy.
BARS: dict[str, dict[str, Any]] = {
    "mnist": {"model": "book_part1", "reference": "keras_io", "max_time_ratio": 0.5, "min_accuracy": 0.993},
}

DEFINITIONS = {
    "train_seconds": "wall-clock seconds of model.fit (training steps, each epoch's validation pass and the "
    "recipe's callbacks), minus the seconds spent measuring test accuracy for time_to_target",
    "seconds_per_epoch": "train_seconds / epochs (the first epoch includes building the TensorFlow graph)",
    "time_to_target_seconds": "training seconds at the end of the first epoch whose test accuracy reaches the "
    "target (DAWNBench-style; for an ensemble, at the end of the first member after which the ensemble so far "
    "reaches it); null: never reached",
    "test_accuracy": "accuracy on the test split of the model the recipe returns (last epoch for the tutorial "
    "recipes, best-validation epoch for the book's recipe)",
    "inference_images_per_second": "test images / median seconds of three model.predict passes "
    "(batch 1,024, CPU) after one warm-up pass",
    "peak_rss_mib": "peak resident memory of the process that loaded the data, trained and evaluated the model",
    "time_ratio": "train_seconds / train_seconds of the reference model",
    "error_ratio": "(1 - test_accuracy) / (1 - test_accuracy of the reference model); below 1 is better",
    "time_to_target_ratio": "time_to_target_seconds / train_seconds of the reference model",
}

#: Fields every measured model has in the JSON report.
MODEL_FIELDS = (
    "key", "name", "status", "source", "recipe", "final_weights", "precision", "parameters", "epochs",
    "train_seconds", "seconds_per_epoch", "epoch_seconds", "cumulative_seconds", "measuring_seconds_excluded",
    "test_accuracy_by_epoch", "val_accuracy_by_epoch", "test_accuracy", "test_error",
    "time_to_target_seconds", "epochs_to_target", "time_to_reference_accuracy_seconds",
    "inference_images_per_second", "inference_batch_size", "peak_rss_mib", "rss_after_data_mib",
    "time_ratio", "error_ratio", "time_to_target_ratio",
)

#: Fields of the JSON report itself.
REPORT_FIELDS = (
    "dataset", "dataset_name", "date", "machine", "versions", "command", "settings", "reduced", "target",
    "target_source", "reference", "models", "not_measured", "bar", "definitions",
)


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: which model, trained how, and why it is there."""

    key: str
    name: str
    source: str
    recipe: str
    epochs: int | None = None  # None: the book's recipe decides
    batch_size: int | None = None
    best_single: bool = False
    dtype: str | None = None  # Keras dtype policy; None: training.preferred_dtype() (the book's choice)


_KERAS_IO = Entry(
    key="keras_io",
    name="keras-io Simple MNIST convnet",
    source="https://keras.io/examples/vision/mnist_convnet/ (re-implemented from its description)",
    recipe="Adam 1e-3 constant, batch 128, 15 epochs, no augmentation; validation on our "
    "validation split (keras-io: validation_split=0.1); the last epoch's weights",
    epochs=15,
    batch_size=128,
    dtype="float32",
)
_KERAS_IO_BF16 = replace(
    _KERAS_IO,
    key="keras_io_bf16",
    name="keras-io Simple MNIST convnet in bfloat16 (control)",
    source="the keras-io model and recipe above, computing in mixed bfloat16 (float32 weights and logits)",
    recipe="as keras-io's, in Keras' mixed_bfloat16 policy: the control that shows how much of the book "
    "model's speed comes from the precision rather than the model and its schedule",
    dtype="mixed_bfloat16",
)
_ARTICLE = Entry(
    key="article",
    name="Source article / TensorFlow CNN tutorial (repaired)",
    source="https://www.tensorflow.org/tutorials/images/cnn (the article's listing, logits out)",
    recipe="Adam 1e-3 constant, batch 32 (Keras' default, which the tutorial uses), 10 epochs, no "
    "augmentation; validation on our validation split (the tutorial validates on the test set); the last "
    "epoch's weights",
    epochs=10,
    batch_size=32,
    dtype="float32",
)
_BOOK_PART1 = Entry(
    key="book_part1",
    name="Book, Part I model (best single model)",
    source="cnnbook.models.mnist_cnn + cnnbook.training.default_config(dataset)",
    recipe="the chapter recipe: training.default_config(dataset) with fit_classifier (one-cycle Adam, "
    "early stopping and checkpointing on the validation split), in the precision training.preferred_dtype() "
    "picks for this machine; the best validation epoch's weights",
    best_single=True,
)
_BOOK_ENSEMBLE = Entry(
    key="book_ensemble",
    name="Book, ensemble of Part I models",
    source="cnnbook.training.train_ensemble + cnnbook.evaluation.ensemble_average (chapter 10)",
    recipe="training.ENSEMBLE_MEMBERS Part I models trained one after another with the chapter recipe "
    "(seeds seed, seed + 1, ...), each keeping its best validation epoch; soft voting (mean probabilities). "
    "Training time is the sum of the members'; time to target is measured after each member, on the "
    "ensemble of the members so far",
)
_BOOK_CIFAR = Entry(
    key="book_cifar",
    name="Book, colour model (best single model)",
    source="cnnbook.models.cifar_cnn + cnnbook.models.cifar_augmentation + training.default_config('cifar10')",
    recipe="the colour chapter's recipe: cifar_cnn (width 64, per-channel normalisation adapted on the training "
    "images, fused batch normalisation) trained by fit_classifier with training.default_config('cifar10') "
    "(one-cycle AdamW), flips and shifts, in the precision training.preferred_dtype() picks; the best "
    "validation epoch's weights, without the chapter's test-time flip averaging",
    best_single=True,
)

_ENTRIES = {
    "mnist": (_KERAS_IO, _KERAS_IO_BF16, _ARTICLE, _BOOK_PART1, _BOOK_ENSEMBLE),
    "fashion_mnist": (_KERAS_IO, _KERAS_IO_BF16, _ARTICLE, _BOOK_PART1, _BOOK_ENSEMBLE),
    "cifar10": (_ARTICLE, _BOOK_CIFAR),
}

#: Rows the book does not have for a dataset: reported, never invented.
_NOT_MEASURED = {
    "cifar10": {"book_ensemble": ("Book, ensemble", "the book's ensemble chapter covers the MNIST family only")},
}


def entries(dataset: str) -> tuple[Entry, ...]:
    """The models compared on ``dataset``; the first one is the reference for the ratios."""
    _check_dataset(dataset)
    return _ENTRIES[dataset]


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")


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

    def selected(self) -> tuple[Entry, ...]:
        chosen = entries(self.dataset)
        return tuple(e for e in chosen if not self.models or e.key in self.models)


# --- Pure computations (no TensorFlow) ----------------------------------------------


def time_to_accuracy(
    cumulative_seconds: Sequence[float], accuracies: Sequence[float], target: float
) -> tuple[float | None, int | None]:
    """(seconds, epoch) at the end of the first epoch whose accuracy reaches ``target``; (None, None) if none."""
    if len(cumulative_seconds) != len(accuracies):
        raise ValueError(f"{len(cumulative_seconds)} times but {len(accuracies)} accuracies.")
    for epoch, (seconds, accuracy) in enumerate(zip(cumulative_seconds, accuracies), start=1):
        if accuracy >= target:
            return float(seconds), epoch
    return None, None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


def build_report(
    settings: Settings,
    results: Sequence[dict[str, Any]],
    *,
    machine: dict[str, Any],
    versions: dict[str, str],
    command: str,
    date: str | None = None,
) -> dict[str, Any]:
    """Combine the workers' measurements into the report: targets, ratios, the bar."""
    target = settings.target_accuracy
    reference = results[0] if results else None
    models = []
    for raw in results:
        row = dict(raw)
        row["test_error"] = 1.0 - row["test_accuracy"]
        row["time_to_target_seconds"], row["epochs_to_target"] = time_to_accuracy(
            row["cumulative_seconds"], row["test_accuracy_by_epoch"], target
        )
        row["time_to_reference_accuracy_seconds"] = (
            time_to_accuracy(row["cumulative_seconds"], row["test_accuracy_by_epoch"], reference["test_accuracy"])[0]
            if reference is not None else None
        )
        ref_seconds = reference["train_seconds"] if reference else None
        row["time_ratio"] = _ratio(row["train_seconds"], ref_seconds)
        row["error_ratio"] = _ratio(row["test_error"], 1.0 - reference["test_accuracy"]) if reference else None
        row["time_to_target_ratio"] = _ratio(row["time_to_target_seconds"], ref_seconds)
        models.append({name: row.get(name) for name in MODEL_FIELDS} | {
            k: v for k, v in row.items() if k not in MODEL_FIELDS
        })
    not_measured = [
        {"key": key, "name": name, "status": status}
        for key, (name, status) in _NOT_MEASURED.get(settings.dataset, {}).items()
    ]
    return {
        "dataset": settings.dataset,
        "dataset_name": DATASET_NAMES[settings.dataset],
        "date": date or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "versions": versions,
        "command": command,
        "settings": asdict(settings) | {"models": [m["key"] for m in models]},
        "reduced": settings.reduced,
        "target": target,
        "target_source": (
            DEFAULT_TARGETS[settings.dataset][1] if settings.target is None else "set on the command line"
        ),
        "reference": reference["key"] if reference else None,
        "models": models,
        "not_measured": not_measured,
        "bar": _bar(settings, models, target),
        "definitions": DEFINITIONS,
    }


def _bar(settings: Settings, models: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    bar = BARS.get(settings.dataset)
    if bar is None:
        return None
    by_key = {m["key"]: m for m in models}
    model, reference = by_key.get(bar["model"]), by_key.get(bar["reference"])
    if model is None or reference is None:
        return dict(bar, met=None, why="the model or its reference was not part of this run")
    ratio = _ratio(model["time_to_target_seconds"], reference["train_seconds"])
    time_ok = ratio is not None and ratio <= bar["max_time_ratio"]
    accuracy_ok = model["test_accuracy"] >= bar["min_accuracy"]
    return dict(
        bar,
        target=target,
        time_to_target_ratio=ratio,
        test_accuracy=model["test_accuracy"],
        time_met=time_ok,
        accuracy_met=accuracy_ok,
        met=bool(time_ok and accuracy_ok) if not settings.reduced else None,
        why=None if not settings.reduced else "reduced settings: a smoke run says nothing about the bar",
    )


# --- Markdown -------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _secs(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 100:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes} min {seconds:02d} s"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _cell(text: Any) -> str:
    return str(text).replace("|", "/")


_PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16 (mixed)"}

_SCHEDULES = {"onecycle": "one-cycle", "cosine": "cosine-decay", "constant": "constant"}


def _config_text(config: dict[str, Any] | None) -> str:
    """The settings actually run, for the recipes of the book (whose numbers live in training.py)."""
    if not config or "origin" not in config:
        return ""
    return (
        f" — here {config['origin']}: at most {config['epochs']} epochs, batch {config['batch_size']}, "
        f"{_SCHEDULES.get(config['schedule'], config['schedule'])} learning rate peaking at {config['learning_rate']:g}, "
        f"early-stopping patience {config['patience']}"
        + (f", weight decay {config['weight_decay']:g}" if config.get("weight_decay") else "")
        + (f", augmentation '{config['augmentation']}'" if config.get("augmentation") else "")
        + (f", {config['members']} members" if config.get("members") else "")
    )


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown fragment (no headings: it is included into a book page)."""
    machine = report["machine"]
    versions = report["versions"]
    s = report["settings"]
    target = report["target"]
    models = report["models"]
    reference = next((m for m in models if m["key"] == report["reference"]), None)
    lines = []
    if report["reduced"]:
        lines += [
            "**Reduced settings: a quick check that the benchmark runs, not a measurement to quote.**",
            "",
        ]
    sizes = models[0]["data_sizes"] if models and "data_sizes" in models[0] else {}
    size_text = ", ".join(f"{sizes[k]:,} {k}" for k in ("training", "validation", "test") if k in sizes)
    lines += [
        f"Measured {report['date']} on {_cell(machine.get('cpu'))}, {machine.get('cores')} CPU cores "
        f"(CPU only), Python {machine.get('python')}, TensorFlow {versions.get('tensorflow')}, "
        f"Keras {versions.get('keras')}. Data: {report['dataset_name']}"
        + (f", {size_text} images" if size_text else "")
        + f"; seed {s['seed']}, the same split and seed for every model, each trained in a fresh process, "
        "one after another.",
        "",
        f"Command: `{report['command']}`",
        "",
        f"| Model | Precision | Parameters | Epochs | Training time | Time per epoch | Time to {_pct(target)} "
        "| Test accuracy | Time ratio | Error ratio | Inference (images/s) | Peak RSS |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in models:
        reached = _secs(m["time_to_target_seconds"])
        if m["epochs_to_target"] is not None:
            reached += f" ({m.get('progress_unit', 'epoch')} {m['epochs_to_target']})"
        lines.append(
            f"| {_cell(m['name'])} | {_PRECISIONS.get(m.get('precision'), '—')} | {m['parameters']:,} "
            f"| {m['epochs']} | {_secs(m['train_seconds'])} "
            f"| {m['seconds_per_epoch']:.1f} s | {reached} | {_pct(m['test_accuracy'])} "
            f"| {_times(m['time_ratio'])} | {_times(m['error_ratio'])} "
            f"| {m['inference_images_per_second']:,.0f} | {m['peak_rss_mib']:,.0f} MiB |"
        )
    for row in report["not_measured"]:
        lines.append(f"| {_cell(row['name'])} | {row['status']} |  |  |  |  |  |  |  |  |  |  |")
    lines.append("")
    if reference is not None:
        lines.append(
            f"Ratios are against {reference['name']}: time ratio = training time ÷ its training time, "
            "error ratio = test error ÷ its test error (below 1 is better for both). "
            f"Target {_pct(target)}: {report['target_source']}."
        )
        lines.append("")
    lines.append("Recipes, as run here:")
    lines.append("")
    for m in models:
        lines.append(f"- **{_cell(m['name'])}**: {m['recipe']}{_config_text(m.get('config'))}.")
    lines.append("")
    bar = report.get("bar")
    if bar and "time_met" in bar:
        names = {m["key"]: m["name"] for m in models}
        verdict = {True: "met", False: "not met", None: "not judged (reduced settings)"}[bar["met"]]
        here = (
            f"here {_times(bar['time_to_target_ratio'])}" if bar["time_to_target_ratio"] is not None
            else "here it never reached it"
        )
        lines.append(
            f"The book's bar on {report['dataset_name']}: {names[bar['model']]} reaches {_pct(bar['target'])} in "
            f"at most {bar['max_time_ratio']:.2f}× the training time of {names[bar['reference']]} "
            f"({here}) and ends at {_pct(bar['min_accuracy'], 1)} or more "
            f"(here {_pct(bar['test_accuracy'])}): **{verdict}**."
        )
        lines.append("")
    return "\n".join(lines)


# --- Training one model (inside a worker process) ---------------------------------


def _make_clock(x_test: Any, y_test: Any, verbose: bool, label: str, epochs: int) -> Any:
    """A Keras callback: training seconds at each epoch end, and test accuracy measured off the clock.

    It must be the last callback, so that the recipe's own callbacks (checkpoints,
    early stopping) run before the clock is read and count as training.
    """
    import keras
    import numpy as np

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start = 0.0
            self.measuring = 0.0
            self.epoch_start = 0.0
            self.epoch_seconds: list[float] = []
            self.cumulative: list[float] = []
            self.test_accuracy: list[float] = []

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            now = time.perf_counter()
            self.epoch_seconds.append(now - self.epoch_start)
            self.cumulative.append(now - self.start - self.measuring)
            logits = self.model.predict(x_test, batch_size=1024, verbose=0)
            accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
            self.test_accuracy.append(accuracy)
            if verbose:
                val = (logs or {}).get("val_accuracy")
                print(
                    f"  [{label}] epoch {epoch + 1}/{epochs}: {self.cumulative[-1]:7.1f} s of training, "
                    f"validation accuracy {val:.4f}, test accuracy {accuracy:.4f} (measured off the clock)",
                    flush=True,
                )
            self.measuring += time.perf_counter() - now

    return Clock()


def _book_config(entry: Entry, dataset: str, seed: int, max_epochs: int | None) -> tuple[Any, str]:
    from . import training

    config = training.default_config(dataset, seed=seed)
    origin = f"training.default_config({dataset!r})"
    if max_epochs is not None and config.epochs > max_epochs:
        config = replace(config, epochs=max_epochs)
    return config, origin


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def run_worker(key: str, settings: Settings, verbose: bool = True) -> dict[str, Any]:
    """Train, time and evaluate one model (call in a fresh process: peak RSS is per process)."""
    import keras
    import numpy as np

    from . import data, models, training

    entry = next((e for e in entries(settings.dataset) if e.key == key), None)
    if entry is None:
        raise ValueError(f"No model {key!r} for {settings.dataset}.")
    splits = data.prepare(
        settings.dataset,
        validation_size=settings.validation_size,
        train_size=settings.train_size,
        test_size=settings.test_size,
        seed=settings.seed,
    )
    rss_after_data = _rss_mib()
    training.set_seed(settings.seed)
    cap = settings.max_epochs
    dtype = entry.dtype or training.preferred_dtype()
    if entry.key in ("keras_io", "keras_io_bf16", "article"):
        if entry.key == "article":
            model = models.article_cnn(splits.input_shape, splits.num_classes)
        else:
            model = models.keras_io_convnet(splits.input_shape, splits.num_classes, dtype=dtype)
        epochs = min(entry.epochs, cap) if cap else entry.epochs
        clock = _make_clock(splits.x_test, splits.y_test, verbose, key, epochs)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        train_ds = data.make_pipeline(
            splits.x_train, splits.y_train, batch_size=entry.batch_size, shuffle=True, seed=settings.seed
        )
        val_ds = data.make_pipeline(splits.x_val, splits.y_val, batch_size=1024)
        start = time.perf_counter()
        history = model.fit(
            train_ds, validation_data=val_ds, epochs=epochs, shuffle=False,  # the pipeline shuffles, seeded
            callbacks=[clock], verbose=0,
        )
        fit_seconds = time.perf_counter() - start
        hist = history.history
        final_weights = "last epoch"
        config_info: dict[str, Any] = {
            "optimizer": "Adam", "learning_rate": 1e-3, "schedule": "constant",
            "batch_size": entry.batch_size, "epochs": epochs, "augmentation": None,
        }
    elif entry.key == "book_ensemble":
        config, origin = _book_config(entry, settings.dataset, settings.seed, cap)
        return _ensemble_worker(entry, settings, splits, config, origin, dtype, rss_after_data, verbose)
    else:
        config, origin = _book_config(entry, settings.dataset, settings.seed, cap)
        if entry.key == "book_part1":
            model = models.mnist_cnn(splits.input_shape, splits.num_classes, dtype=dtype)
            augment = None
        else:
            normalizer = keras.layers.Normalization(axis=-1, name="normalize")
            normalizer.adapt(splits.x_train)
            model = models.cifar_cnn(splits.input_shape, splits.num_classes, normalizer=normalizer, dtype=dtype)
            augment = models.cifar_augmentation(seed=settings.seed)
        clock = _make_clock(splits.x_test, splits.y_test, verbose, key, config.epochs)
        with tempfile.TemporaryDirectory(prefix="cnnbook-benchmark-") as work:
            result = training.fit_classifier(
                model, splits, config, work_dir=work, augment=augment, callbacks=[clock], verbose=0
            )
        model = result.model
        fit_seconds = result.seconds
        hist = result.history
        final_weights = f"best validation epoch ({result.best_epoch})"
        config_info = {"origin": origin, **asdict(config), "augmentation": None if augment is None else augment.name}
    train_seconds = fit_seconds - clock.measuring
    epochs_run = len(clock.cumulative)

    test_ds = data.make_pipeline(splits.x_test, splits.y_test, batch_size=1024)
    logits = model.predict(test_ds, verbose=0)
    test_accuracy = float(np.mean(np.argmax(logits, axis=1) == splits.y_test))
    return _measured(
        entry, splits, [model], dtype, rss_after_data,
        config=config_info,
        final_weights=final_weights,
        epochs=epochs_run,
        train_seconds=train_seconds,
        epoch_seconds=clock.epoch_seconds,
        cumulative_seconds=clock.cumulative,
        measuring_seconds_excluded=clock.measuring,
        test_accuracy_by_epoch=clock.test_accuracy,
        val_accuracy_by_epoch=[float(v) for v in hist.get("val_accuracy", [])],
        test_accuracy=test_accuracy,
    )


def _measured(
    entry: Entry, splits: Any, networks: Sequence[Any], dtype: str, rss_after_data: float, **figures: Any
) -> dict[str, Any]:
    """A worker's result: the entry's description, the ``figures`` of its training, and what every row measures
    the same way (parameters, seconds per epoch, inference rate, memory, data sizes)."""
    return {
        "key": entry.key,
        "name": entry.name,
        "status": "measured",
        "source": entry.source,
        "recipe": entry.recipe,
        "best_single": entry.best_single,
        "precision": dtype,
        "parameters": int(sum(network.count_params() for network in networks)),
        **figures,
        "seconds_per_epoch": figures["train_seconds"] / max(figures["epochs"], 1),
        "inference_images_per_second": _inference_rate(networks, splits.x_test),
        "inference_batch_size": 1024,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_after_data_mib": rss_after_data,
        "data_sizes": {"training": len(splits.x_train), "validation": len(splits.x_val), "test": len(splits.x_test)},
    }


def _inference_rate(networks: Sequence[Any], x: Any) -> float:
    """Images/s of predicting ``x`` with every network in turn (median of three passes after a warm-up)."""
    for network in networks:
        network.predict(x, batch_size=1024, verbose=0)  # warm-up: graph built, caches filled
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        for network in networks:
            network.predict(x, batch_size=1024, verbose=0)
        passes.append(time.perf_counter() - t)
    return len(x) / statistics.median(passes)


def _ensemble_worker(
    entry: Entry, settings: Settings, splits: Any, config: Any, origin: str, dtype: str,
    rss_after_data: float, verbose: bool,
) -> dict[str, Any]:
    """Train the book's ensemble; after each member, measure the ensemble so far on the test split (off the clock)."""
    from . import evaluation, models, training

    members = training.ENSEMBLE_MEMBERS if not settings.reduced else min(training.ENSEMBLE_MEMBERS, 2)
    cumulative: list[float] = []
    test_accuracy: list[float] = []
    test_probs: list[Any] = []
    clock = {"training": 0.0, "measuring": 0.0}

    def after_member(i: int, result: Any) -> None:
        clock["training"] += result.seconds
        start = time.perf_counter()
        test_probs.append(evaluation.predict_proba(result.model, splits.x_test))
        accuracy = evaluation.accuracy(splits.y_test, evaluation.ensemble_average(test_probs).argmax(axis=1))
        cumulative.append(clock["training"])
        test_accuracy.append(accuracy)
        clock["measuring"] += time.perf_counter() - start
        if verbose:
            print(f"  [{entry.key}] member {i + 1}/{members}: {clock['training']:7.1f} s of training, validation "
                  f"accuracy {result.best_val_accuracy:.4f}, ensemble test accuracy {accuracy:.4f} "
                  "(measured off the clock)", flush=True)

    results = training.train_ensemble(
        lambda: models.mnist_cnn(splits.input_shape, splits.num_classes, dtype=dtype),
        splits, config, members, on_member=after_member,
    )
    epoch_seconds = [s for r in results for s in r.epoch_seconds]
    return _measured(
        entry, splits, [r.model for r in results], dtype, rss_after_data,
        config={"origin": origin, **asdict(config), "augmentation": None, "members": members},
        final_weights="each member's best validation epoch; soft voting",
        epochs=len(epoch_seconds),
        train_seconds=clock["training"],
        epoch_seconds=epoch_seconds,
        cumulative_seconds=cumulative,
        progress_unit="member",
        measuring_seconds_excluded=clock["measuring"],
        test_accuracy_by_epoch=test_accuracy,
        val_accuracy_by_epoch=[r.best_val_accuracy for r in results],
        test_accuracy=test_accuracy[-1],
    )


# --- Running the whole comparison -------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for package in ("tensorflow", "keras", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _pin_cpus(cpus: int | None) -> None:
    if cpus is None:
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("--cpus needs Linux (os.sched_setaffinity).")
    available = sorted(os.sched_getaffinity(0))
    if cpus > len(available):
        raise ValueError(f"--cpus {cpus} asks for more CPUs than the {len(available)} this process may use.")
    os.sched_setaffinity(0, available[:cpus])


def run_benchmark(settings: Settings, out_dir: str | os.PathLike[str], *, command: str = "") -> dict[str, Any]:
    """Train every selected model in its own process, one after another; write JSON and Markdown.

    Returns the report; writes ``<out_dir>/<dataset>.json`` and ``<out_dir>/<dataset>.md``.
    """
    from .book import machine_info

    _pin_cpus(settings.cpus)  # children inherit the affinity
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    selected = settings.selected()
    target = settings.target_accuracy
    print(
        f"Benchmark on {DATASET_NAMES[settings.dataset]}: {', '.join(e.key for e in selected)}; "
        f"target {target:.2%} ({DEFAULT_TARGETS[settings.dataset][1] if settings.target is None else 'given'})"
        + ("; REDUCED settings" if settings.reduced else ""),
        flush=True,
    )
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # the comparison is on the CPU
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = []
    with tempfile.TemporaryDirectory(prefix="cnnbook-benchmark-") as tmp:
        for i, entry in enumerate(selected, start=1):
            print(f"[{i}/{len(selected)}] {entry.name}", flush=True)
            result_path = Path(tmp) / f"{entry.key}.json"
            cmd = [
                sys.executable, "-m", "cnnbook.benchmark", "worker", entry.key,
                json.dumps(asdict(settings)), str(result_path),
            ]
            started = time.perf_counter()
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"Training {entry.key} failed (exit status {proc.returncode}); see above.")
            result = json.loads(result_path.read_text())
            results.append(result)
            print(
                f"    {entry.key}: test accuracy {result['test_accuracy']:.4f}, training "
                f"{result['train_seconds']:.1f} s ({time.perf_counter() - started:.0f} s with start-up and "
                "measurements)",
                flush=True,
            )
    report = build_report(settings, results, machine=machine_info(), versions=_versions(), command=command)
    json_path = out / f"{settings.dataset}.json"
    md_path = out / f"{settings.dataset}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report) + "\n")
    print(to_markdown(report))
    print(f"Wrote {json_path} and {md_path}")
    return report


def _settings_from_json(text: str) -> Settings:
    raw = json.loads(text)
    raw["models"] = tuple(raw.get("models", ()))
    return Settings(**raw)


def main(argv: list[str] | None = None) -> int:
    """``python -m cnnbook.benchmark worker KEY SETTINGS_JSON RESULT_PATH`` (used by compare.py)."""
    parser = argparse.ArgumentParser(prog="python -m cnnbook.benchmark")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="train and measure one model (one process per model)")
    worker.add_argument("key")
    worker.add_argument("settings", help="the Settings as JSON")
    worker.add_argument("result", help="where to write the measurements (JSON)")
    args = parser.parse_args(argv)
    settings = _settings_from_json(args.settings)
    result = run_worker(args.key, settings)
    Path(args.result).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
