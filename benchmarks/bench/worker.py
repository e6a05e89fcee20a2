"""Train, time and evaluate *one* row of the benchmark, in a process of its own.

    python benchmarks/bench/worker.py KEY SETTINGS_JSON RESULT_JSON

:mod:`bench.runner` starts one such process per row, so that one model's memory
or thread pools never colour the next one's figures and each peak RSS is its
own.  ``SETTINGS_JSON`` is a :class:`bench.spec.Settings` with its precision
resolved.  The row's :class:`~bench.spec.Entry` builds the model and names its
recipe; training goes through :mod:`cnnbook.training` — ``fit_classifier`` for
the book's recipe, ``train_ensemble`` for the ensemble (its members side by side) — except the tutorials'
recipe, which :func:`fit_last_epoch` runs (see there why).

What is measured (definitions also in :data:`bench.report.DEFINITIONS`):

- *training time*: wall-clock seconds of ``model.fit`` — every training step,
  the validation pass of every epoch and the recipe's own callbacks (the book's
  checkpointing included) — minus the time spent measuring test accuracy;
- *test accuracy by epoch*, measured at each epoch end off the training clock
  (:class:`TestAccuracyClock`), only to find the time to a target accuracy: it
  never picks a model or stops training;
- the final model's test accuracy and per-image correctness, parameters,
  inference images/s and the process's peak resident memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the `bench` package from benchmarks/, not its
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # modules from bench/ as top-level ones

import argparse
import json
import math
import resource
import tempfile
import time
from dataclasses import asdict, replace
from typing import Any, Sequence

import keras
import numpy as np

from bench.spec import BookRecipe, Entry, Settings, entries
from cnnbook import compute, conv, data, evaluation, hardware, training

__all__ = ["EnsembleAccuracyClock", "TestAccuracyClock", "fit_last_epoch", "main", "run_worker", "settings_from_json"]


class TestAccuracyClock(training.EpochTimer):
    """``training.EpochTimer`` (seconds of each epoch) that also measures test accuracy off the training clock.

    At each epoch end it records the training seconds so far (``cumulative``:
    since ``fit`` began, minus the time of its own measurements) and the test
    accuracy (``test_accuracy``), then adds the time that measurement took to
    ``measuring``.  Pass it as the *last* callback, so that the recipe's own
    callbacks (checkpoints, early stopping) run before it and count as training.
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, x_test: np.ndarray, y_test: np.ndarray, *, label: str = "", epochs: int = 0,
                 verbose: bool = False) -> None:
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.label, self.epochs, self.verbose = label, epochs, verbose
        self.measuring = 0.0
        self.cumulative: list[float] = []
        self.test_accuracy: list[float] = []
        self._fit_start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._fit_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        now = time.perf_counter()
        self.cumulative.append(now - self._fit_start - self.measuring)
        accuracy = evaluation.accuracy(self.y_test, self.probabilities().argmax(axis=1))
        self.test_accuracy.append(accuracy)
        if self.verbose:
            val = (logs or {}).get("val_accuracy", float("nan"))
            print(
                f"  [{self.label}] epoch {epoch + 1}/{self.epochs}: {self.cumulative[-1]:7.1f} s of training, "
                f"validation accuracy {val:.4f}, test accuracy {accuracy:.4f} (measured off the clock)",
                flush=True,
            )
        self.measuring += time.perf_counter() - now

    def probabilities(self) -> np.ndarray:
        """The test split's class probabilities under the model as it is now."""
        return evaluation.predict_proba(self.model, self.x_test)


class EnsembleAccuracyClock(TestAccuracyClock):
    """:class:`TestAccuracyClock` for ``training.train_ensemble``'s joint model: soft voting of its members."""

    __test__ = False

    def probabilities(self) -> np.ndarray:
        return _soft_vote(self.model, self.x_test)


def _soft_vote(joint: keras.Model, images: np.ndarray) -> np.ndarray:
    """Mean probabilities of the members of ``training.train_ensemble``'s joint model."""
    return evaluation.ensemble_average(evaluation.member_probabilities(joint, images))


def fit_last_epoch(
    model: keras.Model,
    splits: data.Splits,
    config: training.TrainConfig,
    *,
    augment: keras.layers.Layer | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[keras.Model, dict[str, list[float]], float]:
    """The tutorials' recipe: ``config.epochs`` epochs of Adam at ``config``'s rate, the last epoch's weights.

    Returns ``(model, history, seconds of fit)``.  Compiled and fed as
    :func:`cnnbook.training.fit_classifier` does (same loss, optimizer family,
    ``training.learning_rate_schedule``, ``data.make_pipeline``), but without its
    callbacks: ``fit_classifier`` always adds BackupAndRestore, ModelCheckpoint and
    EarlyStopping with ``restore_best_weights=True``, so it would return the best
    validation epoch's weights and charge the tutorials for checkpoints they do not write.
    """
    steps = math.ceil(len(splits.x_train) / config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=training.learning_rate_schedule(config, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train_ds = data.make_pipeline(
        splits.x_train, splits.y_train, batch_size=config.batch_size, shuffle=True, seed=config.seed, augment=augment
    )
    val_ds = data.make_pipeline(splits.x_val, splits.y_val, batch_size=1024)
    start = time.perf_counter()
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=config.epochs, shuffle=False,  # the pipeline shuffles, seeded
        callbacks=list(callbacks), verbose=0,
    )
    seconds = time.perf_counter() - start
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, seconds


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _correct(y_true: np.ndarray, probs: np.ndarray) -> str:
    """Per-image correctness as a '0'/'1' string, in the test split's order."""
    return "".join("1" if ok else "0" for ok in (probs.argmax(axis=1) == y_true))


def _config_info(entry: Entry, dataset: str, config: training.TrainConfig, augment: Any) -> dict[str, Any]:
    # An explicit layer (a tutorial row's) or else the recipe's own (TrainConfig.augmentation).
    recipe_augmentation = None if config.augmentation == "none" else config.augmentation
    info: dict[str, Any] = asdict(config) | {"augmentation": recipe_augmentation if augment is None else augment.name}
    if augment is None and recipe_augmentation is not None:  # what the preset does, for the report to spell out
        info["augmentation_settings"] = dict(training.AUGMENTATIONS[recipe_augmentation])
    if isinstance(entry.config, BookRecipe):  # the book's recipe: its numbers live in that function, so say so
        info["origin"] = f"{entry.config.origin}({dataset!r})"
    return info


def run_worker(key: str, settings: Settings, verbose: bool = True) -> dict[str, Any]:
    """Train, time and evaluate one row (call in a fresh process: peak RSS is per process)."""
    entry = next((e for e in entries(settings.dataset) if e.key == key), None)
    if entry is None:
        raise ValueError(f"No model {key!r} for {settings.dataset}.")
    dtype = entry.dtype(settings.precision)  # raises unless the precision is resolved
    if dtype is None:
        raise ValueError(f"{key} is {entry.skipped_because(settings.precision)}.")
    splits = data.prepare(
        settings.dataset,
        validation_size=settings.validation_size,
        train_size=settings.train_size,
        test_size=settings.test_size,
        seed=settings.seed,
    )
    rss_after_data = _rss_mib()
    config = entry.config(settings.dataset, settings.seed)
    if settings.max_epochs is not None and config.epochs > settings.max_epochs:
        config = replace(config, epochs=settings.max_epochs)
    if entry.ensemble:
        return _ensemble_worker(entry, settings, splits, config, dtype, rss_after_data, verbose)

    training.set_seed(settings.seed)
    model = entry.build(splits, dtype)
    augment = entry.augment(settings.seed) if entry.augment is not None else None
    clock = TestAccuracyClock(splits.x_test, splits.y_test, label=key, epochs=config.epochs, verbose=verbose)
    if entry.weights == "last":
        model, history, fit_seconds = fit_last_epoch(model, splits, config, augment=augment, callbacks=[clock])
        final_weights = "last epoch"
    else:
        with tempfile.TemporaryDirectory(prefix="cnnbook-benchmark-") as work:
            result = training.fit_classifier(
                model, splits, config, work_dir=work, augment=augment, callbacks=[clock], verbose=0
            )
        model, history, fit_seconds = result.model, result.history, result.seconds
        final_weights = f"best validation epoch ({result.best_epoch})"
        if settings.reduced and _refresh_batchnorm(model, splits):
            final_weights += REFRESHED
    probs = evaluation.predict_proba(model, splits.x_test)
    views: dict[str, Any] = {}
    if entry.test_views:
        views = {"test_accuracy_without_views": evaluation.accuracy(splits.y_test, probs.argmax(axis=1)),
                 **_test_views(model, splits)}
        probs = views.pop("probabilities")
    return _measured(
        entry, splits, [model], dtype, rss_after_data,
        config=_config_info(entry, settings.dataset, config, augment),
        final_weights=final_weights + (f"; test-time views '{views['test_views']}'" if views else ""),
        **views,
        epochs=len(clock.cumulative),
        train_seconds=fit_seconds - clock.measuring,
        epoch_seconds=clock.seconds,
        cumulative_seconds=clock.cumulative,
        measuring_seconds_excluded=clock.measuring,
        test_accuracy_by_epoch=clock.test_accuracy,
        val_accuracy_by_epoch=history.get("val_accuracy", []),
        test_accuracy=evaluation.accuracy(splits.y_test, probs.argmax(axis=1)),
        test_correct=_correct(splits.y_test, probs),
    )


#: What a reduced run adds to the final weights' description when it re-estimated batch-norm statistics.
REFRESHED = (
    "; batch-norm statistics re-estimated on the training images after training (reduced run only: "
    "a few hundred steps leave the moving averages near their start, and the model at chance; "
    "the accuracy by epoch still uses the averages)"
)


def _refresh_batchnorm(model: keras.Model, splits: data.Splits) -> bool:
    """Re-estimate the batch-norm layers' statistics (``workflows.refresh_batchnorm``); False if it has none."""
    from cnnbook import workflows

    return workflows.refresh_batchnorm(model, splits.x_train) > 0


def _test_views(model: keras.Model, splits: data.Splits) -> dict[str, Any]:
    """The chapter's test-time augmentation: the views best on the validation split (the cheapest of equals),
    then the test split's probabilities under them."""
    chosen, val_accuracy = evaluation.choose_views(model, splits.x_val, splits.y_val)
    return {
        "test_views": chosen,
        "val_accuracy_by_views": val_accuracy,
        "probabilities": conv.softmax(evaluation.predict_views(model, splits.x_test, chosen).astype(np.float64)),
    }


def _measured(
    entry: Entry, splits: data.Splits, networks: Sequence[keras.Model], dtype: str, rss_after_data: float,
    **figures: Any,
) -> dict[str, Any]:
    """A worker's result: the entry's description, the ``figures`` of its training, and what every row measures
    the same way (parameters, seconds per epoch, inference rate, memory, data sizes)."""
    # Utilisation: training FLOPs (forward + backward, every image of every epoch) over the training time.
    forward = sum(compute.forward_flops(network) for network in networks)
    train_flops = compute.BACKWARD_FACTOR * forward * figures["epochs"] * len(splits.x_train)
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
        "forward_flops_per_image": forward,
        "train_flops": train_flops,
        "achieved_gflops": train_flops / figures["train_seconds"] / 1e9 if figures["train_seconds"] > 0 else None,
        "kernels": hardware.onednn_state(),
        "inference_images_per_second": evaluation.images_per_second(networks, splits.x_test, batch_size=1024),
        "inference_batch_size": 1024,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_after_data_mib": rss_after_data,
        "data_sizes": {"training": len(splits.x_train), "validation": len(splits.x_val), "test": len(splits.x_test)},
    }


def _ensemble_worker(
    entry: Entry, settings: Settings, splits: data.Splits, config: training.TrainConfig, dtype: str,
    rss_after_data: float, verbose: bool,
) -> dict[str, Any]:
    """Train the book's ensemble (its members side by side); after each epoch, measure its soft vote on the
    test split (off the clock)."""
    members = training.ENSEMBLE_MEMBERS if not settings.reduced else min(training.ENSEMBLE_MEMBERS, 2)
    augment = entry.augment(settings.seed) if entry.augment is not None else None
    clock = EnsembleAccuracyClock(splits.x_test, splits.y_test, label=entry.key, epochs=config.epochs,
                                  verbose=verbose)
    with tempfile.TemporaryDirectory(prefix="cnnbook-benchmark-") as work:
        nets, result = training.train_ensemble(
            lambda: entry.build(splits, dtype), splits, config, members, work_dir=work, augment=augment,
            callbacks=[clock],
        )
    refreshed = settings.reduced and _refresh_batchnorm(result.model, splits)
    probs = _soft_vote(result.model, splits.x_test)
    return _measured(
        entry, splits, nets, dtype, rss_after_data,
        config=_config_info(entry, settings.dataset, config, augment) | {"members": members},
        final_weights=f"the epoch with the best mean validation accuracy of the members ({result.best_epoch}); "
        "soft voting" + (REFRESHED if refreshed else ""),
        epochs=len(clock.cumulative),
        train_seconds=result.seconds - clock.measuring,
        epoch_seconds=clock.seconds,
        cumulative_seconds=clock.cumulative,
        measuring_seconds_excluded=clock.measuring,
        test_accuracy_by_epoch=clock.test_accuracy,
        val_accuracy_by_epoch=result.history.get("val_accuracy", []),
        test_accuracy=evaluation.accuracy(splits.y_test, probs.argmax(axis=1)),
        test_correct=_correct(splits.y_test, probs),
    )


def settings_from_json(text: str) -> Settings:
    """The :class:`Settings` that :func:`bench.runner.run_benchmark` passes to a worker as JSON."""
    raw = json.loads(text)
    raw["models"] = tuple(raw.get("models", ()))
    return Settings(**raw)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/bench/worker.py KEY SETTINGS_JSON RESULT_PATH`` (started by bench.runner)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench/worker.py",
                                     description="Train and measure one model of the benchmark (one process per model).")
    parser.add_argument("key")
    parser.add_argument("settings", help="the Settings as JSON, precision resolved")
    parser.add_argument("result", help="where to write the measurements (JSON)")
    args = parser.parse_args(argv)
    result = run_worker(args.key, settings_from_json(args.settings))
    Path(args.result).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
