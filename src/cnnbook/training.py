"""Training: seeds, the learning-rate schedule, callbacks and the book's recipe.

:func:`fit_classifier` is the one training loop of the book: Adam (or AdamW)
with a one-cycle learning rate, ``from_logits=True`` loss, validation data
always passed, and the callbacks a practitioner uses — EarlyStopping on
validation accuracy, ModelCheckpoint of the best epoch, BackupAndRestore so an
interrupted run resumes where it stopped.  :func:`trained_model` returns the
Part I model, loading it from ``$CNNBOOK_MODEL_DIR`` or training it there.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from . import data, models

__all__ = [
    "EpochTimer",
    "InterruptAfterEpoch",
    "OneCycle",
    "SimulatedInterruption",
    "TrainConfig",
    "TrainResult",
    "default_config",
    "fit_classifier",
    "model_dir",
    "model_path",
    "save_model",
    "set_seed",
    "standard_callbacks",
    "trained_model",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained (not what it is)."""

    epochs: int = 7
    batch_size: int = 128
    learning_rate: float = 3e-3
    schedule: str = "onecycle"  # "onecycle", "cosine" or "constant"
    warmup_fraction: float = 0.2
    weight_decay: float = 0.0
    patience: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.schedule not in ("onecycle", "cosine", "constant"):
            raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', got {self.schedule!r}.")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}.")


def default_config(dataset: str = "mnist", **overrides: Any) -> TrainConfig:
    """The chapter-5 recipe for the Part I model on an MNIST-sized dataset."""
    if dataset not in ("mnist", "fashion_mnist"):
        raise ValueError(f"The Part I recipe is for 'mnist' or 'fashion_mnist', not {dataset!r}.")
    base = TrainConfig() if dataset == "mnist" else TrainConfig(epochs=12)
    return replace(base, **overrides)


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow ops deterministic.

    Deterministic ops make two runs bit-identical on the same machine, at some
    cost in speed; seeds alone make them statistically alike.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@keras.saving.register_keras_serializable(package="cnnbook")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak/div`` to ``peak``, then cosine decay to ``peak/final_div``.

    ``warmup_steps=0`` gives plain cosine decay.  A schedule (rather than a
    callback) changes the rate every step and is saved with the optimizer, so a
    resumed run continues on the same curve.
    """

    def __init__(
        self,
        peak: float,
        total_steps: int,
        warmup_steps: int = 0,
        div: float = 25.0,
        final_div: float = 1e3,
    ) -> None:
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"Need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}.")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        start, end = self.peak / self.div, self.peak / self.final_div
        warm = start + (self.peak - start) * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cosine = end + 0.5 * (self.peak - end) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "div": self.div,
            "final_div": self.final_div,
        }


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> float | OneCycle:
    """The learning rate (or schedule) ``config`` asks for."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return config.learning_rate
    warmup = int(config.warmup_fraction * total) if config.schedule == "onecycle" else 0
    return OneCycle(config.learning_rate, total_steps=total, warmup_steps=warmup)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall-clock seconds of every epoch (validation included) in ``self.seconds``."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class SimulatedInterruption(RuntimeError):
    """Raised by :class:`InterruptAfterEpoch` to stand in for a crash or a closed laptop."""


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Stops training with :class:`SimulatedInterruption` after epoch ``epoch`` (1-based) ends."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = int(epoch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.epoch:
            raise SimulatedInterruption(f"Training interrupted after epoch {self.epoch} (simulated).")


def standard_callbacks(work_dir: str | os.PathLike[str], config: TrainConfig) -> list[keras.callbacks.Callback]:
    """EarlyStopping, ModelCheckpoint (best validation accuracy) and BackupAndRestore.

    All three watch the *validation* split; the test set plays no part in
    choosing the epoch.  The backup lives in ``work_dir/backup`` and is deleted
    when training finishes normally.
    """
    work_dir = Path(work_dir)
    return [
        keras.callbacks.BackupAndRestore(backup_dir=str(work_dir / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(work_dir / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=config.patience, restore_best_weights=True
        ),
    ]


@dataclass
class TrainResult:
    """What :func:`fit_classifier` returns."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    epoch_seconds: list[float]
    best_epoch: int
    best_val_accuracy: float
    config: TrainConfig
    work_dir: Path = field(repr=False)


def fit_classifier(
    model: keras.Model,
    splits: data.Splits,
    config: TrainConfig,
    *,
    work_dir: str | os.PathLike[str] | None = None,
    augment: keras.layers.Layer | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 2,
    from_logits: bool = True,
    run_eagerly: bool = False,
) -> TrainResult:
    """Compile and train ``model`` on ``splits`` with the book's recipe.

    The weights returned are those of the epoch with the best validation
    accuracy.  Calling again with the same ``work_dir`` after an interruption
    resumes from the last finished epoch (BackupAndRestore).  ``from_logits``
    must match the model's output: ``True`` for the book's logits models.
    ``run_eagerly`` runs each step as plain Python/TensorFlow eager code (slower;
    used to show behaviour that graph compilation would hide).
    """
    if len(splits.x_train) == 0 or len(splits.x_val) == 0:
        raise ValueError("fit_classifier needs a non-empty training and validation split.")
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="cnnbook-train-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = math.ceil(len(splits.x_train) / config.batch_size)
    rate = learning_rate_schedule(config, steps)
    if config.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
    )
    train_ds = data.make_pipeline(
        splits.x_train, splits.y_train, batch_size=config.batch_size, shuffle=True, seed=config.seed, augment=augment
    )
    val_ds = data.make_pipeline(splits.x_val, splits.y_val, batch_size=1024)
    timer = EpochTimer()
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        shuffle=False,  # the tf.data pipeline shuffles, with the seed
        callbacks=[*standard_callbacks(work, config), timer, *callbacks],
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    best = int(np.argmax(hist["val_accuracy"]))
    return TrainResult(
        model=model,
        history=hist,
        seconds=seconds,
        epoch_seconds=timer.seconds,
        best_epoch=best + 1,
        best_val_accuracy=hist["val_accuracy"][best],
        config=config,
        work_dir=work,
    )


# --- The Part I model, cached -----------------------------------------------------


def model_dir() -> Path:
    """Where trained models are kept: ``$CNNBOOK_MODEL_DIR`` or ``~/.cache/cnnbook/models``."""
    env = os.environ.get("CNNBOOK_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnbook" / "models"


def model_path(dataset: str, train_size: int | None, config: TrainConfig) -> Path:
    """The file name says what produced the model, so different runs never collide.

    It ends in a short fingerprint of the recipe and of the model builder's source,
    so a model cached by an older version of the book is never mistaken for this one.
    """
    size = "all" if train_size is None else str(int(train_size))
    recipe = json.dumps(asdict(config), sort_keys=True) + inspect.getsource(models.mnist_cnn)
    fingerprint = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return model_dir() / f"part1-{dataset}-n{size}-e{config.epochs}-s{config.seed}-{fingerprint}.keras"


def save_model(model: keras.Model, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> Path:
    """Save atomically (write a temporary file, then rename) plus a JSON sidecar with ``info``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if info is not None:
        path.with_suffix(".json").write_text(json.dumps(info, indent=2, default=str))
    return path


def trained_model(
    dataset: str = "mnist",
    *,
    train_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    verbose: int | str = 0,
) -> keras.Model:
    """The Part I model trained with the chapter-5 recipe: loaded if cached, else trained and cached."""
    config = default_config(dataset, seed=seed, **({"epochs": epochs} if epochs is not None else {}))
    path = model_path(dataset, train_size, config)
    if path.is_file():
        return keras.models.load_model(path, compile=False)
    splits = data.prepare(dataset, train_size=train_size, seed=seed)
    set_seed(seed)
    model = models.mnist_cnn(splits.input_shape, splits.num_classes)
    with tempfile.TemporaryDirectory(prefix="cnnbook-train-") as work:
        result = fit_classifier(model, splits, config, work_dir=work, verbose=verbose)
    save_model(
        result.model,
        path,
        info={
            "dataset": dataset,
            "train_size": train_size,
            "config": asdict(config),
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "seconds": result.seconds,
        },
    )
    return result.model
