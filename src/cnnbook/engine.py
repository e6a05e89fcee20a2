"""The training engine: seeds, the learning-rate schedule, callbacks and the training loop.

:func:`fit_classifier` is the one training loop of the book: Adam, AdamW or
SGD with momentum (:func:`make_optimizer`) with a one-cycle learning rate,
``from_logits=True`` loss, validation data always passed, and the callbacks a
practitioner uses — EarlyStopping on validation accuracy, ModelCheckpoint of
the best epoch, BackupAndRestore so an interrupted run resumes where it
stopped.  :func:`train_ensemble` trains several members side by side in one
model.  What to train with (a :class:`~cnnbook.recipes.TrainConfig` per
dataset) lives in :mod:`cnnbook.recipes`; :mod:`cnnbook.training` imports
this module, the recipes and :mod:`cnnbook.model_cache` back.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from . import data
from .recipes import TrainConfig, augmentation_layer
from .train_steps import training_throughput


class _WithoutRetracingAdvice(logging.Filter):
    """Drops TensorFlow's warning that a function "triggered tf.function retracing".

    Every new Keras model compiles step functions of its own, so training or
    scoring several small models in a row (a speed probe, a study, a set of
    defences) trips TensorFlow's advice for code that retraces one function by
    mistake. Here that is expected; the warning would only clutter the output.
    Every other TensorFlow message passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


_tensorflow_logger = logging.getLogger("tensorflow")
if not any(isinstance(f, _WithoutRetracingAdvice) for f in _tensorflow_logger.filters):
    _tensorflow_logger.addFilter(_WithoutRetracingAdvice())

__all__ = [
    "STEPS_PER_EXECUTION",
    "EpochTimer",
    "InterruptAfterEpoch",
    "OneCycle",
    "SimulatedInterruption",
    "TimeBudget",
    "TrainResult",
    "fit_classifier",
    "learning_rate_schedule",
    "make_optimizer",
    "set_seed",
    "standard_callbacks",
    "train_ensemble",
    "training_throughput",
]


#: :func:`fit_classifier`'s training steps per call into the compiled graph: the same steps, with
#: less of Keras' per-call Python work (faster for the Part I model; no gain
#: for the ensemble).
#: Measurements behind this choice: the book's 'How the recipes were chosen'
#: page (book/decisions.md).
STEPS_PER_EXECUTION = 16


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TensorFlow ops deterministic.

    Deterministic ops make two runs bit-identical on the same machine, at some
    cost in speed; seeds alone make them statistically alike.

    Parameters
    ----------
    seed : int
        The seed of every generator.
    deterministic : bool
        Also switch TensorFlow to deterministic ops (for the rest of the process).
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

    Parameters
    ----------
    peak : float
        Highest learning rate, reached at the end of the warm-up.
    total_steps : int
        Training steps of the whole run (at least 1).
    warmup_steps : int
        Steps of linear warm-up, ``0 <= warmup_steps < total_steps``.
    div, final_div : float
        The rate starts at ``peak / div`` and ends at ``peak / final_div``.
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
        """The constructor's arguments, so Keras can save and reload the schedule."""
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "div": self.div,
            "final_div": self.final_div,
        }


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> float | OneCycle:
    """The learning rate (or schedule) ``config`` asks for.

    Parameters
    ----------
    config : TrainConfig
        Its ``schedule``, ``learning_rate``, ``epochs`` and ``warmup_fraction`` are used.
    steps_per_epoch : int
        Training steps in one epoch (``ceil(N / batch_size)``).

    Returns
    -------
    float or OneCycle
        ``config.learning_rate`` for ``"constant"``; otherwise a :class:`OneCycle`
        over ``epochs × steps_per_epoch`` steps (no warm-up for ``"cosine"``).
    """
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return config.learning_rate
    warmup = int(config.warmup_fraction * total) if config.schedule == "onecycle" else 0
    return OneCycle(config.learning_rate, total_steps=total, warmup_steps=warmup)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimiser ``config`` asks for, with its learning-rate schedule.

    ``"adam"``: Adam, or AdamW when ``config.weight_decay`` is positive.
    ``"sgd"``: SGD with Nesterov momentum 0.9, and ``config.weight_decay``
    decoupled from the gradient as in AdamW (Keras' ``weight_decay``).

    Parameters
    ----------
    config : TrainConfig
        Its ``optimizer``, ``weight_decay`` and schedule fields are used.
    steps_per_epoch : int
        Training steps in one epoch, for :func:`learning_rate_schedule`.

    Returns
    -------
    keras.optimizers.Optimizer
    """
    rate = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None
        )
    if config.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall-clock seconds of every epoch (validation included) in ``self.seconds``."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record the epoch's seconds."""
        self.seconds.append(time.perf_counter() - self._start)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch past which the next one would overrun ``seconds``.

    The next epoch is forecast as long as the mean epoch so far, the first
    excluded once there are others (it also builds the graph).  A comparison
    "at equal training time" planned from earlier epoch times thus stays within
    its budget when the machine slows down.

    Parameters
    ----------
    seconds : float
        The training time allowed, from the start of ``fit`` (positive).
    clock : callable
        Returns the current time in seconds (``time.perf_counter``; tests pass a fake).

    Attributes
    ----------
    stopped_early : bool
        Whether the budget ended training before its last planned epoch.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"The time budget must be positive, got {seconds}.")
        self.budget = float(seconds)
        self.clock = clock
        self.stopped_early = False
        self._start = 0.0
        self._ends: list[float] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start the clock."""
        self._start, self._ends, self.stopped_early = self.clock(), [], False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Stop if the forecast end of the next epoch lies past the budget."""
        self._ends.append(self.clock() - self._start)
        spent = self._ends[-1]
        later = np.diff(self._ends)  # the epochs after the first
        forecast = float(later.mean()) if len(later) else spent
        if spent + forecast > self.budget and epoch + 1 < self.params.get("epochs", epoch + 2):
            self.model.stop_training = True
            self.stopped_early = True


class SimulatedInterruption(RuntimeError):
    """Raised by :class:`InterruptAfterEpoch` to stand in for a crash or a closed laptop."""


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Stops training with :class:`SimulatedInterruption` after epoch ``epoch`` (1-based) ends.

    Parameters
    ----------
    epoch : int
        The last epoch to finish (1-based).
    """

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = int(epoch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Raise :class:`SimulatedInterruption` once the chosen epoch has ended."""
        if epoch + 1 == self.epoch:
            raise SimulatedInterruption(f"Training interrupted after epoch {self.epoch} (simulated).")


def standard_callbacks(work_dir: str | os.PathLike[str], config: TrainConfig) -> list[keras.callbacks.Callback]:
    """EarlyStopping, ModelCheckpoint (best validation accuracy) and BackupAndRestore.

    All three watch the *validation* split; the test set plays no part in
    choosing the epoch.  The backup lives in ``work_dir/backup`` and is deleted
    when training finishes normally.

    Parameters
    ----------
    work_dir : str or path-like
        Folder of the checkpoint (``best.keras``) and the backup.
    config : TrainConfig
        Its ``patience`` is EarlyStopping's.

    Returns
    -------
    list of keras.callbacks.Callback
        ``[BackupAndRestore, ModelCheckpoint, EarlyStopping]``, in that order.
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
    """What :func:`fit_classifier` returns.

    Attributes
    ----------
    model : keras.Model
        The trained model, with the weights of the best epoch.
    history : dict of str to list of float
        Per-epoch values of the loss and metrics (``val_`` for validation).
    seconds : float
        Wall-clock seconds of ``model.fit``.
    epoch_seconds : list of float
        Wall-clock seconds of each epoch.
    best_epoch : int
        The epoch (1-based) whose weights were kept.
    best_val_accuracy : float
        Its validation accuracy.
    config : TrainConfig
        The recipe used.
    work_dir : pathlib.Path or None
        Folder of the checkpoints; ``None`` when it was a temporary folder (removed).
    """

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    epoch_seconds: list[float]
    best_epoch: int
    best_val_accuracy: float
    config: TrainConfig
    work_dir: Path | None = field(repr=False)  # None: a temporary folder, removed after training


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
    steps_per_execution: int = STEPS_PER_EXECUTION,
) -> TrainResult:
    """Compile and train ``model`` on ``splits`` with the book's recipe.

    The weights returned are those of the epoch with the best validation
    accuracy.  Calling again with the same ``work_dir`` after an interruption
    resumes from the last finished epoch (BackupAndRestore); without a
    ``work_dir`` the checkpoints go to a temporary folder, removed afterwards.

    Parameters
    ----------
    model : keras.Model
        An uncompiled (or to-be-recompiled) classifier.
    splits : cnnbook.data.Splits
        Non-empty training and validation splits (the test split is not used).
    config : TrainConfig
        The recipe: epochs, batch size, learning rate and schedule, weight decay,
        patience, shuffle seed.
    work_dir : str or path-like, optional
        Folder of the checkpoint and the backup, kept afterwards.
    augment : keras.layers.Layer, optional
        Applied to each training batch (e.g. :func:`cnnbook.models.augmentation`);
        default: the recipe's, :func:`augmentation_layer` of ``config``.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, after the standard ones.
    verbose : int or str
        ``model.fit``'s ``verbose`` (2: one line per epoch).
    from_logits : bool
        Must match the model's output: ``True`` for the book's logits models.
    run_eagerly : bool
        Run each step as plain Python/TensorFlow eager code (slower; used to show
        behaviour that graph compilation would hide).
    steps_per_execution : int
        Training steps per call into TensorFlow's compiled graph (at least 1);
        the same steps, with fewer round trips through Python.  Per-batch
        callbacks then run once per call.

    Returns
    -------
    TrainResult
    """
    if len(splits.x_train) == 0 or len(splits.x_val) == 0:
        raise ValueError("fit_classifier needs a non-empty training and validation split.")
    if steps_per_execution < 1:
        raise ValueError(f"steps_per_execution must be at least 1, got {steps_per_execution}.")
    temporary = work_dir is None  # then the checkpoint and backup folder is removed afterwards
    work = Path(tempfile.mkdtemp(prefix="cnnbook-train-")) if temporary else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        steps = math.ceil(len(splits.x_train) / config.batch_size)
        model.compile(
            optimizer=make_optimizer(config, steps),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            metrics=["accuracy"],
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
        )
        if augment is None:
            augment = augmentation_layer(config)
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
            work_dir=None if temporary else work,
        )
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


def train_ensemble(
    build: Callable[[], keras.Model],
    splits: data.Splits,
    config: TrainConfig,
    members: int,
    *,
    work_dir: str | os.PathLike[str] | None = None,
    augment: keras.layers.Layer | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
) -> tuple[list[keras.Model], TrainResult]:
    """Train ``members`` models from ``build()`` side by side, as the branches of one model.

    Member ``i`` is built after ``set_seed(config.seed + i)``, so its initial
    weights and dropout masks are its own; every member sees the same batches
    (shuffled with ``config.seed``) and the same validation split, which stays
    a fair judge of the ensemble.  The branches share nothing but the input,
    and the loss is the mean of the members' losses, so each member's
    gradient is the one it would get alone, divided by ``members`` — a
    factor that Adam's normalised steps cancel.  The members therefore learn
    as if trained one after another on that batch order, but one larger step
    per batch keeps a CPU's cores busier than a small model alone does
    (measured on the book's 'How the recipes were chosen' page,
    ``book/decisions.md``).

    Parameters
    ----------
    build : callable
        Returns a fresh, untrained model (logits out) each call.
    splits : cnnbook.data.Splits
        The same splits for every member.
    config : TrainConfig
        The recipe.  The epoch kept is the one where the members' *mean*
        validation accuracy is best (one epoch for all members); early stopping
        watches that mean too.
    members : int
        How many models (at least 1).
    work_dir, augment, callbacks, verbose
        As for :func:`fit_classifier` (an interrupted run resumes from ``work_dir``).

    Returns
    -------
    members : list of keras.Model
        The trained members, named ``member_1``, ``member_2``, …, with the weights of the kept epoch.
    result : TrainResult
        The joint run: its ``model`` outputs the members' logits stacked as
        ``images × members × classes``; its history holds the members' mean loss and accuracy.
    """
    if members < 1:
        raise ValueError(f"An ensemble needs at least one member, got {members}.")
    nets = []
    for i in range(members):
        set_seed(config.seed + i)
        net = build()
        net.name = f"member_{i + 1}"  # names must be unique inside the joint model
        nets.append(net)
    image = keras.Input(shape=splits.input_shape, name="image")
    # Stacked as images × members × classes, so that one sparse cross-entropy (labels repeated per member)
    # averages the members' losses and "accuracy" is their mean accuracy.
    logits = [keras.layers.Reshape((1, -1), name=f"{net.name}_row")(net(image)) for net in nets]
    stacked = logits[0] if members == 1 else keras.layers.Concatenate(axis=1, name="members")(logits)
    joint = keras.Model(image, stacked, name="ensemble")
    repeated = replace(
        splits,
        y_train=np.repeat(splits.y_train[:, None], members, axis=1),
        y_val=np.repeat(splits.y_val[:, None], members, axis=1),
    )
    result = fit_classifier(
        joint, repeated, config, work_dir=work_dir, augment=augment, callbacks=callbacks, verbose=verbose
    )
    return nets, result
