"""The model cache: a trained Part I model loaded from disk, or trained and saved there.

:func:`trained_model` returns the Part I model trained with the chapter-5
recipe, loading it from ``$CNNBOOK_MODEL_DIR`` (:func:`model_dir`) or
training it there; :func:`model_path` names the file after what produced it;
:func:`cached_model` finds a model a chapter saved in whichever precision;
:func:`save_model` writes atomically with a JSON sidecar.
:mod:`cnnbook.training` imports them back.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras

from . import data, hardware, models
from .engine import fit_classifier, set_seed
from .recipes import TrainConfig, default_config

__all__ = [
    "cached_model",
    "model_dir",
    "model_path",
    "save_model",
    "trained_model",
    "trained_model_path",
]


def model_dir() -> Path:
    """Where trained models are kept: ``$CNNBOOK_MODEL_DIR`` or ``~/.cache/cnnbook/models``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    env = os.environ.get("CNNBOOK_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnbook" / "models"


def model_path(dataset: str, train_size: int | None, config: TrainConfig, dtype: str = "float32") -> Path:
    """The file name says what produced the model, so different runs never collide.

    It ends in a short fingerprint of the recipe, the dtype policy and the model
    builder's source, so a model cached by an older version of the book is never
    mistaken for this one.

    Parameters
    ----------
    dataset : str
        The dataset it is trained on.
    train_size : int or None
        Training examples (``None``: all).
    config : TrainConfig
        The recipe.
    dtype : str
        ``"float32"`` or ``"mixed_bfloat16"``.

    Returns
    -------
    pathlib.Path
        ``model_dir() / "part1-<dataset>-n<size>-e<epochs>-s<seed>-<fp32|bf16>-<fingerprint>.keras"``.

    Notes
    -----
    The fingerprint hashes the *source text* of :func:`cnnbook.models.mnist_cnn`,
    docstring included: editing even its docstring invalidates every cached model
    (chapters then retrain it), although no chapter's ``source_hash`` changes.
    """
    if dtype not in hardware.DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(hardware.DTYPES)}, got {dtype!r}.")
    size = "all" if train_size is None else str(int(train_size))
    recipe = json.dumps(asdict(config), sort_keys=True) + dtype + inspect.getsource(models.mnist_cnn)
    fingerprint = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    precision = "bf16" if dtype == "mixed_bfloat16" else "fp32"
    return model_dir() / f"part1-{dataset}-n{size}-e{config.epochs}-s{config.seed}-{precision}-{fingerprint}.keras"


def save_model(model: keras.Model, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> Path:
    """Save atomically (write a temporary file, then rename) plus a JSON sidecar with ``info``.

    Parameters
    ----------
    model : keras.Model
        The model to save (Keras' ``.keras`` format).
    path : str or path-like
        Where; its folder is created if needed.
    info : dict, optional
        Written beside it as ``<path without .keras>.json``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
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


def cached_model(
    dataset: str,
    *,
    train_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
) -> keras.Model | None:
    """A model trained with ``dataset``'s recipe and cached by a chapter, in whichever precision, or ``None``.

    Chapter 8 saves its colour model under :func:`model_path` with the precision it chose by
    measurement; a later chapter that needs that model does not know the choice, so every
    precision of :data:`cnnbook.hardware.DTYPES` is looked for, float32 first.

    Parameters
    ----------
    dataset : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
    train_size, epochs, seed
        As the chapter that saved it used them (its recipe is :func:`default_config`'s otherwise).

    Returns
    -------
    keras.Model or None
        Loaded without its optimizer (``compile=False``); ``None`` when no such file exists.
    """
    for dtype in hardware.DTYPES:
        path = _cached_recipe(dataset, train_size, epochs, seed, dtype)[2]
        if path.is_file():
            return keras.models.load_model(path, compile=False)
    return None


def trained_model_path(
    dataset: str = "mnist",
    *,
    train_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    dtype: str | None = None,
) -> Path:
    """The file :func:`trained_model` loads from (or trains into) for the same arguments.

    Lets a caller tell a cached model from one that will be trained first (the
    command line says so before a long wait) without rebuilding the cache key.

    Parameters
    ----------
    dataset, train_size, epochs, seed, dtype
        As for :func:`trained_model`.

    Returns
    -------
    pathlib.Path
        ``model_path(dataset, train_size, default_config(dataset, seed=seed[, epochs=epochs]), dtype)``.
    """
    return _cached_recipe(dataset, train_size, epochs, seed, dtype)[2]


def _cached_recipe(
    dataset: str, train_size: int | None, epochs: int | None, seed: int, dtype: str | None
) -> tuple[TrainConfig, str, Path]:
    """The recipe, the precision and the cache file of :func:`trained_model` (one derivation for both)."""
    dtype = hardware.preferred_dtype() if dtype is None else dtype
    config = default_config(dataset, seed=seed, **({"epochs": epochs} if epochs is not None else {}))
    return config, dtype, model_path(dataset, train_size, config, dtype)


def trained_model(
    dataset: str = "mnist",
    *,
    train_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    dtype: str | None = None,
    verbose: int | str = 0,
) -> keras.Model:
    """The Part I model trained with the chapter-5 recipe: loaded if cached, else trained and cached.

    Parameters
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion_mnist"``.
    train_size : int, optional
        Train on a stratified subset of this many images (``None``: all).
    epochs : int, optional
        Override the recipe's epochs.
    seed : int
        Seed of the splits, the initial weights and the shuffle.
    dtype : str, optional
        The precision it is trained in (``None``: :func:`cnnbook.hardware.preferred_dtype`).
    verbose : int or str
        ``model.fit``'s ``verbose`` when it has to be trained.

    Returns
    -------
    keras.Model
        Logits out: loaded (uncompiled) from :func:`model_path`, or trained and
        saved there first when missing.
    """
    config, dtype, path = _cached_recipe(dataset, train_size, epochs, seed, dtype)
    if path.is_file():
        return keras.models.load_model(path, compile=False)
    splits = data.prepare(dataset, train_size=train_size, seed=seed)
    set_seed(seed)
    model = models.mnist_cnn(splits.input_shape, splits.num_classes, dtype=dtype)
    result = fit_classifier(model, splits, config, verbose=verbose)
    save_model(
        result.model,
        path,
        info={
            "dataset": dataset,
            "train_size": train_size,
            "dtype": dtype,
            "config": asdict(config),
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "seconds": result.seconds,
        },
    )
    return result.model
