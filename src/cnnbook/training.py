"""Training: seeds, the learning-rate schedule, callbacks and the book's recipes, in one place.

The facade the chapters import: it imports back, unchanged, what three
modules hold, each one idea —

* :mod:`cnnbook.engine` — how a model is trained: :func:`fit_classifier`
  (the book's one training loop: Adam, AdamW or SGD with momentum with a
  one-cycle learning rate, ``from_logits=True`` loss, validation data always
  passed, EarlyStopping, ModelCheckpoint of the best epoch and
  BackupAndRestore), :func:`train_ensemble`, :func:`set_seed`,
  :func:`make_optimizer`, :class:`OneCycle`, the callbacks (and
  :func:`cnnbook.engine.training_throughput`, from :mod:`cnnbook.train_steps`);
* :mod:`cnnbook.recipes` — what a model is trained with: :class:`TrainConfig`,
  :func:`default_config` per dataset, :data:`AUGMENTATIONS`, the larger
  networks' and the ensemble's recipes (the measurements behind them: the
  book's "How the recipes were chosen" page);
* :mod:`cnnbook.model_cache` — :func:`trained_model` returns the Part I
  model, loading it from ``$CNNBOOK_MODEL_DIR`` or training it there.
"""

from __future__ import annotations

from .engine import (
    STEPS_PER_EXECUTION,
    EpochTimer,
    InterruptAfterEpoch,
    OneCycle,
    SimulatedInterruption,
    TimeBudget,
    TrainResult,
    fit_classifier,
    learning_rate_schedule,
    make_optimizer,
    set_seed,
    standard_callbacks,
    train_ensemble,
)
from .model_cache import (
    cached_model,
    model_dir,
    model_path,
    save_model,
    trained_model,
    trained_model_path,
)
from .recipes import (
    AUGMENTATIONS,
    ENSEMBLE_MEMBERS,
    ENSEMBLE_WIDTH,
    TrainConfig,
    augmentation_layer,
    cifar_cnn_config,
    default_config,
    ensemble_augmentation,
    ensemble_config,
    ensemble_member,
    resnet_config,
)

__all__ = [
    "AUGMENTATIONS",
    "ENSEMBLE_MEMBERS",
    "ENSEMBLE_WIDTH",
    "STEPS_PER_EXECUTION",
    "EpochTimer",
    "InterruptAfterEpoch",
    "OneCycle",
    "SimulatedInterruption",
    "TrainConfig",
    "TimeBudget",
    "TrainResult",
    "augmentation_layer",
    "cached_model",
    "cifar_cnn_config",
    "default_config",
    "ensemble_augmentation",
    "ensemble_config",
    "ensemble_member",
    "fit_classifier",
    "learning_rate_schedule",
    "make_optimizer",
    "model_dir",
    "model_path",
    "resnet_config",
    "save_model",
    "set_seed",
    "standard_callbacks",
    "train_ensemble",
    "trained_model",
    "trained_model_path",
]
