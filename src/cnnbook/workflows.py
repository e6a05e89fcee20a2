"""What the ``cnnbook`` command does, as functions: train to a file, load safely, evaluate, list and classify images.

:mod:`cnnbook.cli` only parses arguments and prints; everything it does lives
here so that a notebook or a script can do the same.

Resumable training
------------------
:func:`train_to_file` trains with the book's recipe
(:func:`cnnbook.training.default_config`) one epoch at a time and, after each
epoch, saves the model *with its optimizer state* and a small JSON state in a
work folder beside the output (``.<name>.partial``).  Run it again after a crash
or Ctrl-C and it continues from the last finished epoch.  Every epoch draws its
shuffle order, dropout masks and augmentation from ``(seed, epoch)`` alone, never from what
happened before, so a resumed run ends with *exactly* the weights of an
uninterrupted one.  (:func:`cnnbook.training.fit_classifier`'s BackupAndRestore
resumes too, but not bit for bit: a resumed run builds a fresh ``tf.data``
pipeline, whose seeded reshuffling starts its sequence again, a loaded model's
dropout generator is not the saved one, and EarlyStopping's memory of the best
epoch is not restored.)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "ImagePrediction",
    "PRECISIONS",
    "REFRESH_IMAGES",
    "TRAINABLE",
    "ModelFileError",
    "evaluate_model",
    "format_evaluation",
    "image_files",
    "load_model_file",
    "predict_image",
    "refresh_batchnorm",
    "train_to_file",
    "work_dir_for",
]

#: Datasets ``cnnbook train`` has a recipe for.
TRAINABLE = ("mnist", "fashion_mnist", "cifar10")

#: ``--precision`` choices and the Keras dtype policy each means (``auto``: :func:`cnnbook.hardware.preferred_dtype`).
PRECISIONS = {"auto": None, "float32": "float32", "bfloat16": "mixed_bfloat16"}

#: Training images :func:`train_to_file` re-estimates batch normalisation's statistics on after each epoch.
REFRESH_IMAGES = 4096

#: File name endings :func:`image_files` picks up in a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


class ModelFileError(ValueError):
    """A model file that cannot be used: missing, not a ``.keras`` archive, refused by safe mode, wrong input."""


# --- Loading ----------------------------------------------------------------------


def load_model_file(path: str | os.PathLike[str], *, unsafe: bool = False,
                    input_shape: Sequence[int] | None = None) -> Any:
    """Load a ``.keras`` model, refusing what would run code unless ``unsafe``.

    Keras' safe mode (the default) refuses a ``Lambda`` layer, whose Python
    function is stored as bytecode and would *run* on loading: a model file
    from a stranger could do anything your account can.  ``unsafe=True`` lifts
    the refusal; use it only for files you made or trust.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file (Keras 3's zip archive).
    unsafe : bool
        Load with ``safe_mode=False``.
    input_shape : sequence of int, optional
        The ``H×W×C`` input the caller will feed; checked against the model's.

    Returns
    -------
    keras.Model
        Loaded without its training configuration (``compile=False``).

    Raises
    ------
    ModelFileError
        Missing file, not a ``.keras`` archive, refused by safe mode, or a
        different input shape.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no model file at {os.fspath(path)!r}.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{os.fspath(path)!r} is not a Keras model file (expected a .keras archive "
                             "written by model.save).")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise ModelFileError(
                f"{os.fspath(path)!r} holds a Lambda layer, whose Python code would run on loading; "
                "Keras refuses it in safe mode. Load it only if you trust its author (--unsafe).") from None
        raise ModelFileError(f"cannot load the model {os.fspath(path)!r}: {err}") from None
    except (OSError, TypeError, KeyError) as err:
        raise ModelFileError(f"cannot load the model {os.fspath(path)!r}: {err}") from None
    if input_shape is not None:
        have = tuple(model.input_shape[1:])
        if have != tuple(input_shape):
            raise ModelFileError(f"the model takes inputs of shape {have}, not {tuple(input_shape)}.")
    return model


# --- Training ---------------------------------------------------------------------


def refresh_batchnorm(model: Any, images: Any, batch_size: int = 256) -> int:
    """Re-estimate every batch-normalisation layer's moving statistics on ``images``.

    Batch normalisation keeps a moving average of each channel's mean and
    variance (momentum 0.99: about the last hundred steps), starting from 0 and
    1.  A short run — a few dozen steps, a quick ``--train-size`` run — ends
    before that average has forgotten its start, and the model then predicts
    badly although it trained well.  This replaces the averages by the plain
    mean of the batch statistics over ``images`` (training images, passed in a
    fixed order: the result depends only on the weights and the images).
    Weights are not changed.

    Parameters
    ----------
    model : keras.Model
        The trained model.
    images : array-like
        Training images, ``N×H×W×C`` as the model takes them (at least one).
    batch_size : int
        Images per forward pass (at least 1).

    Returns
    -------
    int
        The number of batch-normalisation layers refreshed.
    """
    import keras

    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0 or batch_size < 1:
        raise ValueError("refresh_batchnorm needs at least one image and a positive batch_size.")
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1)  # the k-th batch gets weight 1/(k+1): a plain average
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)



def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The folder where :func:`train_to_file` keeps its resumable state for ``out``.

    Parameters
    ----------
    out : str or path-like
        The model file being trained.

    Returns
    -------
    pathlib.Path
        ``<folder of out>/.<name of out>.partial``.
    """
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 7_919) % (2**31 - 1)


def _reseed_layers(model: Any, seed: int) -> None:
    """Restart every layer's random generator (dropout) from ``seed``: epochs stop depending on earlier ones."""
    import keras

    for i, layer in enumerate(model._flatten_layers(include_self=False)):
        generator = getattr(layer, "seed_generator", None)
        if isinstance(generator, keras.random.SeedGenerator):
            state = np.array([_epoch_seed(seed, i), 0], dtype=keras.backend.standardize_dtype(generator.state.dtype))
            generator.state.assign(state)


class _Progress:
    """A text progress bar on ``stream``: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream: TextIO | None, epochs: int, steps: int) -> None:
        self.stream, self.epochs, self.steps = stream, epochs, steps
        self.live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def callback(self, epoch: int) -> Any:
        import keras

        progress = self

        class _Bar(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
                if progress.live and (batch % 10 == 0 or batch + 1 == progress.steps):
                    done = (batch + 1) / progress.steps
                    bar = "#" * int(24 * done) + "-" * (24 - int(24 * done))
                    loss = (logs or {}).get("loss", float("nan"))
                    progress.stream.write(f"\repoch {epoch + 1}/{progress.epochs} [{bar}] {done:4.0%} "
                                          f"loss {float(loss):.4f}")
                    progress.stream.flush()

        return _Bar()

    def epoch_end(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        if self.stream is None:
            return
        self.stream.write(("\r" if self.live else "") + f"epoch {epoch + 1}/{self.epochs}: loss {logs['loss']:.4f}, "
                          f"accuracy {logs['accuracy']:.4f}, val_accuracy {logs['val_accuracy']:.4f} "
                          f"({seconds:.1f} s)\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


def _write_json(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str))
    os.replace(tmp, path)


def train_to_file(
    dataset: str,
    out: str | os.PathLike[str],
    *,
    epochs: int | None = None,
    precision: str = "auto",
    train_size: int | None = None,
    seed: int = 0,
    force: bool = False,
    progress: TextIO | None = None,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train the book's model for ``dataset`` with its recipe into ``out``, resumably.

    MNIST and Fashion-MNIST get the Part I model (:func:`cnnbook.models.mnist_cnn`),
    CIFAR-10 the colour model (:func:`cnnbook.models.cifar_cnn` with its
    augmentation and normalisation); the recipe is
    :func:`cnnbook.training.default_config`'s.  Early stopping and the best-epoch
    choice watch the validation split only.  A JSON record (recipe, history,
    best epoch, seconds) is written beside the model (``out`` with ``.json``).

    Parameters
    ----------
    dataset : str
        One of :data:`TRAINABLE`.
    out : str or path-like
        The ``.keras`` file to write.
    epochs : int, optional
        Override the recipe's epochs.
    precision : str
        ``"auto"``, ``"float32"`` or ``"bfloat16"`` (see :data:`PRECISIONS`).
    train_size : int, optional
        Train on a stratified subset of this many images (quick runs).
    seed : int
        Seed of the splits, initial weights, shuffles and dropout.
    force : bool
        Overwrite an existing ``out`` (otherwise refused).
    progress : text stream, optional
        Where to draw the progress bar (e.g. ``sys.stderr``); ``None``: silent.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks for every epoch's ``fit`` (e.g. to simulate a crash).

    Returns
    -------
    dict
        The JSON record written beside the model.

    Raises
    ------
    ValueError
        Unknown dataset or precision, ``out`` not ending in ``.keras``, or ``out``
        exists and ``force`` is false.
    """
    import keras

    from . import data, hardware, models, training

    if dataset not in TRAINABLE:
        raise ValueError(f"cnnbook trains {', '.join(TRAINABLE)}, not {dataset!r}.")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    out = Path(out)
    if out.suffix != ".keras":
        raise ValueError(f"the output must be a .keras file, got {os.fspath(out)!r}.")
    if out.exists() and not force:
        raise ValueError(f"{os.fspath(out)!r} exists; pass --force to overwrite it.")
    dtype = PRECISIONS[precision] or hardware.preferred_dtype()
    config = training.default_config(dataset, seed=seed, **({"epochs": epochs} if epochs is not None else {}))
    arguments = {"dataset": dataset, "train_size": train_size, "dtype": dtype, "config": asdict(config)}

    work = work_dir_for(out)
    state_file, last_file, best_file = work / "state.json", work / "last.keras", work / "best.weights.h5"
    state: dict[str, Any] = {}
    if state_file.is_file() and last_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("arguments") != arguments:
            progress and _Progress(progress, 0, 0).say(
                f"cnnbook: the unfinished run in {work.name} had other settings; starting afresh.")
            state = {}
    splits = data.prepare(dataset, train_size=train_size, seed=seed)
    steps = math.ceil(len(splits.x_train) / config.batch_size)
    bar = _Progress(progress, config.epochs, steps)
    if state:
        model = keras.models.load_model(last_file, compile=True)
        bar.say(f"cnnbook: resuming after epoch {state['epoch']} of {config.epochs} from {work.name}.")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        training.set_seed(seed)
        if dataset == "cifar10":
            normalizer = models.channel_normalizer(*data.channel_statistics(splits.x_train))
            model = models.cifar_cnn(splits.input_shape, splits.num_classes, normalizer=normalizer, dtype=dtype)
        else:
            model = models.mnist_cnn(splits.input_shape, splits.num_classes, dtype=dtype)
        model.compile(
            optimizer=training.make_optimizer(config, steps),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        state = {"arguments": arguments, "epoch": 0, "history": {}, "best_epoch": 0,
                 "best_val_accuracy": -1.0, "seconds": 0.0}
    val_ds = data.make_pipeline(splits.x_val, splits.y_val, batch_size=1024)
    while state["epoch"] < config.epochs and state["epoch"] - state["best_epoch"] < config.patience:
        epoch = state["epoch"]
        # Shuffle order and dropout masks from (seed, epoch) only: a resumed epoch repeats exactly.
        _reseed_layers(model, _epoch_seed(seed, epoch))
        # A fresh augmentation for every epoch, seeded by (seed, epoch): a Keras random layer reused
        # for a second pipeline does not repeat its draws even when its generator is reset.
        # make_pipeline augments one batch after another, so a resumed epoch repeats its draws exactly.
        augment = training.augmentation_layer(replace(config, seed=_epoch_seed(seed + 1, epoch)))
        train_ds = data.make_pipeline(splits.x_train, splits.y_train, batch_size=config.batch_size,
                                      shuffle=True, seed=_epoch_seed(seed, epoch), augment=augment)
        start = time.perf_counter()
        history = model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                            verbose=0, callbacks=[bar.callback(epoch), *callbacks])
        # Settle batch normalisation's moving statistics (a short run ends before they do), then validate.
        refresh_batchnorm(model, splits.x_train[:REFRESH_IMAGES])
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        logs.update({f"val_{k}": float(v) for k, v in model.evaluate(val_ds, verbose=0, return_dict=True).items()})
        seconds = time.perf_counter() - start
        for key, value in logs.items():
            state["history"].setdefault(key, []).append(value)
        state["epoch"] = epoch + 1
        state["seconds"] += seconds
        if logs["val_accuracy"] > state["best_val_accuracy"]:
            state["best_epoch"], state["best_val_accuracy"] = epoch + 1, logs["val_accuracy"]
            model.save_weights(best_file)
        model.save(last_file)  # weights and optimizer state: where the next run resumes
        _write_json(state_file, state)
        bar.epoch_end(epoch, logs, seconds)
    model.load_weights(best_file)
    record = {**arguments, "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
              "best_val_accuracy": state["best_val_accuracy"], "seconds": state["seconds"],
              "history": state["history"], "class_names": list(splits.class_names),
              "input_shape": list(splits.input_shape)}
    inference = keras.models.clone_model(model)  # the model without its optimizer: a smaller file
    inference.set_weights(model.get_weights())
    training.save_model(inference, out, info=record)
    shutil.rmtree(work, ignore_errors=True)
    return record


# --- Evaluation -------------------------------------------------------------------


def evaluate_model(model: Any, dataset: str, *, test_size: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Accuracy with its 95 % interval, per-class report and confusion matrix on ``dataset``'s test split.

    Parameters
    ----------
    model : keras.Model
        A logits classifier whose input matches the dataset's images.
    dataset : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
    test_size : int, optional
        A stratified subset of the test split (quick checks); default all of it.
    seed : int
        Seed of that subset.

    Returns
    -------
    dict
        ``dataset``, ``n``, ``accuracy``, ``interval`` (low, high), ``class_names``,
        ``report`` (:func:`cnnbook.evaluation.classification_report`) and
        ``confusion`` (list of rows: true class, predicted class across).

    Raises
    ------
    ModelFileError
        The model's input shape differs from the dataset's images.
    """
    from . import data, evaluation

    if dataset not in data.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; one of {', '.join(data.DATASETS)}.")
    ds = data.load_dataset(dataset)  # the test split only: never the training images' float copy
    index = np.arange(len(ds.y_test)) if test_size is None else data.stratified_subset(ds.y_test, test_size, seed)
    x_test, y_test = data.to_float(ds.x_test[index]), ds.y_test[index]
    have = tuple(model.input_shape[1:])
    if have != tuple(x_test.shape[1:]):
        raise ModelFileError(f"the model takes inputs of shape {have}, but {dataset} images are "
                             f"{tuple(x_test.shape[1:])}.")
    predicted = evaluation.predict_proba(model, x_test).argmax(axis=1)
    correct = int((predicted == y_test).sum())
    n = len(y_test)
    return {
        "dataset": dataset,
        "n": n,
        "accuracy": correct / n,
        "interval": list(evaluation.accuracy_interval(correct, n)),
        "class_names": list(ds.class_names),
        "report": evaluation.classification_report(y_test, predicted, ds.class_names),
        "confusion": evaluation.confusion_matrix(y_test, predicted, len(ds.class_names)).tolist(),
    }


def format_evaluation(result: dict[str, Any]) -> str:
    """The text ``cnnbook evaluate`` prints: accuracy and interval, the report, the confusion matrix.

    Parameters
    ----------
    result : dict
        What :func:`evaluate_model` returned.

    Returns
    -------
    str
        Several lines, no trailing newline.
    """
    from . import evaluation

    low, high = result["interval"]
    names = result["class_names"]
    lines = [f"{result['dataset']} test set, {result['n']} images: accuracy {result['accuracy']:.2%} "
             f"(95% interval {low:.2%} to {high:.2%})", "", str(evaluation.report_table(result["report"])), "",
             "confusion matrix (rows: true class, columns: predicted)"]
    short = [n[:5] for n in names]
    width = max(5, max(len(str(v)) for row in result["confusion"] for v in row))
    label = max(len(n) for n in names)
    lines.append(" " * label + "  " + " ".join(s.rjust(width) for s in short))
    for name, row in zip(names, result["confusion"]):
        lines.append(name.rjust(label) + "  " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


# --- Images -----------------------------------------------------------------------


def image_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders into the image files they hold (sorted, not recursive); keep files as given.

    Parameters
    ----------
    paths : sequence of str or path-like
        Files and folders.

    Returns
    -------
    list of pathlib.Path
        Files in the order given, each folder's images sorted by name.  A path
        that does not exist is kept (the caller reports it).

    Raises
    ------
    ValueError
        A folder holds no image file.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"the folder {os.fspath(p)!r} holds no image file "
                                 f"({', '.join(IMAGE_SUFFIXES)}).")
            files.extend(found)
        else:
            files.append(p)
    return files


# --- One image of the reader's own -------------------------------------------------


@dataclass(frozen=True)
class ImagePrediction:
    """What :func:`predict_image` found: the MNIST-like input and the top-k classes."""

    digit: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""

    @property
    def label(self) -> str:
        """Name of the most probable class."""
        return self.class_names[int(self.classes[0])]

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return float(self.probabilities[0])

    def table(self) -> Any:
        """The top-k classes with their probabilities (an :class:`cnnbook.evaluation.Table`)."""
        from . import evaluation

        rows = tuple(
            (str(rank), self.class_names[int(c)], f"{float(p):.1%}")
            for rank, (c, p) in enumerate(zip(self.classes, self.probabilities), start=1)
        )
        return evaluation.Table(("rank", "class", "probability"), rows, caption=self.source or None)

    def __str__(self) -> str:
        return str(self.table())


def predict_image(
    model: Any,
    image: Any,
    class_names: Sequence[str] | None = None,
    k: int = 3,
) -> ImagePrediction:
    """Turn any image of one handwritten digit into an MNIST-like input and classify it.

    ``image`` is a file path, the file's bytes, a PIL image or an array (see
    :func:`cnnbook.images.prepare_digit`, which raises
    :class:`~cnnbook.images.ImageError` for something that is not a usable image and
    :class:`~cnnbook.images.NoDigitFoundError` for a blank page — never a guess).
    ``model`` is a trained logits model taking ``N×28×28×1`` inputs in [0, 1].

    Parameters
    ----------
    model : keras.Model
        A trained logits model of 28×28×1 inputs.
    image : str, path-like, bytes, PIL.Image.Image or numpy.ndarray
        The reader's image.
    class_names : sequence of str, optional
        One name per class (default ``"0"``, ``"1"``, ...).
    k : int
        How many of the most probable classes to keep.

    Returns
    -------
    ImagePrediction
        The 28×28 input the model saw, the top ``k`` classes and their
        probabilities, and the file's name when ``image`` was a path.
    """
    from . import evaluation, images

    digit = images.prepare_digit(image)
    probs = evaluation.predict_proba(model, digit[None, :, :, None], batch_size=1)[0]
    names = tuple(str(c) for c in class_names) if class_names is not None else tuple(
        str(i) for i in range(len(probs)))
    if len(names) != len(probs):
        raise ValueError(f"the model has {len(probs)} classes but {len(names)} class names were given.")
    classes, values = evaluation.top_k(probs, k)
    source = os.fspath(image) if isinstance(image, (str, os.PathLike)) else ""
    return ImagePrediction(digit=digit, classes=classes, probabilities=values, class_names=names,
                           source=os.path.basename(source))
