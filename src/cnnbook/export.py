"""Export a trained Keras model to TensorFlow Lite (LiteRT) and measure what each variant costs.

Four variants of the same network (:data:`VARIANTS`):

``float32``
    The graph as it is, weights in 32-bit floats.
``float16``
    Weights stored as 16-bit floats (half the file); computed in float32.
``dynamic``
    Dynamic-range quantisation: weights stored as int8 with a scale per
    channel; activations quantised on the fly.  No calibration data needed.
``int8``
    Full-integer quantisation: weights *and* activations in int8, input and
    output too, with scales calibrated on a *representative dataset* drawn
    from the training split.  What microcontrollers and NPUs run.

:class:`LiteModel` runs a converted model on NumPy arrays with the LiteRT
interpreter (the ``ai-edge-litert`` package) where it is installed, else with
TensorFlow's own ``tf.lite.Interpreter`` (deprecated, but in every TensorFlow).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = ["VARIANTS", "LiteModel", "VariantResult", "compare_variants", "float32_copy", "interpreter_backend",
           "to_saved_model", "to_tflite"]

#: The conversions :func:`to_tflite` knows.
VARIANTS = ("float32", "float16", "dynamic", "int8")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converter's and interpreter's native logs and prints (they write to the file descriptors)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logger = logging.getLogger("tensorflow")  # "Assets written to ..." goes through Python logging
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                yield
            finally:
                logger.setLevel(level)
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def interpreter_backend() -> str:
    """Which interpreter :class:`LiteModel` uses here.

    Returns
    -------
    str
        ``"ai-edge-litert"`` (the maintained LiteRT package) or ``"tf.lite"``.
    """
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "tf.lite"
    return "ai-edge-litert"


def float32_copy(model: Any) -> Any:
    """The same network computing in float32: what TensorFlow Lite converts.

    A model trained under a ``mixed_bfloat16`` policy keeps float32 weights but computes in
    bfloat16, and TensorFlow Lite has no bfloat16 kernels.  Its layers are rebuilt from their
    configurations with the float32 policy and given the same weights.

    Parameters
    ----------
    model : keras.Model
        A Functional or Sequential model.

    Returns
    -------
    keras.Model
        ``model`` itself when every layer already computes in float32, else the float32 copy.
    """
    import keras

    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def rebuild(layer: Any) -> Any:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    return copy


def to_tflite(model: Any, variant: str = "float32", representative: Any = None, calibration_size: int = 200) -> bytes:
    """Convert a Keras model to a TensorFlow Lite flatbuffer.

    Parameters
    ----------
    model : keras.Model
        A model with a fixed input shape (batch size aside).
    variant : str
        One of :data:`VARIANTS`.
    representative : array-like, optional
        Training images (``N×H×W×C``, as the model takes them) to calibrate the
        activations' int8 ranges; required for ``"int8"``.  Never test images.
    calibration_size : int
        How many of them to use (at least 1).

    Returns
    -------
    bytes
        The ``.tflite`` file's content.

    Raises
    ------
    ValueError
        Unknown variant, or ``"int8"`` without representative images.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}.")
    if variant == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("full-integer int8 needs representative images from the training split to calibrate.")
    if calibration_size < 1:
        raise ValueError(f"calibration_size must be at least 1, got {calibration_size}.")
    with _quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if variant == "int8":
            images = np.asarray(representative, dtype=np.float32)[:calibration_size]

            def examples() -> Iterator[list[np.ndarray]]:
                for image in images:
                    yield [image[None]]

            converter.representative_dataset = examples
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return bytes(converter.convert())


def to_saved_model(model: Any, path: str | os.PathLike[str]) -> int:
    """Write ``model``'s inference function as a TensorFlow SavedModel folder (``model.export``), quietly.

    A SavedModel holds the computation graph and the weights, not Python code:
    TensorFlow Serving, TensorFlow.js and the TFLite converter read it, and
    ``tf.saved_model.load(path).serve(x)`` runs it without Keras or cnnbook.

    Parameters
    ----------
    model : keras.Model
        The model to export.
    path : str or path-like
        A folder that does not exist yet.

    Returns
    -------
    int
        Bytes written (all files of the folder).
    """
    if os.path.exists(path):
        raise ValueError(f"{os.fspath(path)!r} exists; choose a new folder.")
    with _quiet():
        model.export(os.fspath(path), format="tf_saved_model")
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


class LiteModel:
    """A TensorFlow Lite model that takes and returns float arrays, like ``keras.Model.predict``.

    Quantised inputs and outputs (full-integer int8) are converted with the
    scale and zero point stored in the model, so every variant is called the
    same way.

    Parameters
    ----------
    content : bytes or str or path-like
        The flatbuffer (:func:`to_tflite`) or a ``.tflite`` file.
    threads : int, optional
        Interpreter threads (default: the interpreter's choice).
    """

    def __init__(self, content: bytes | str | os.PathLike[str], threads: int | None = None) -> None:
        if not isinstance(content, (bytes, bytearray)):
            with open(content, "rb") as f:
                content = f.read()
        self.content = bytes(content)
        self.backend = interpreter_backend()
        self._threads = threads
        with _quiet():
            self._interpreter = self._make()
            self._interpreter.allocate_tensors()
        self._batch = 1

    def _make(self) -> Any:
        if self.backend == "ai-edge-litert":
            from ai_edge_litert.interpreter import Interpreter
        else:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806 - the class, named as its package does
        return Interpreter(model_content=self.content, num_threads=self._threads)

    @property
    def size(self) -> int:
        """Bytes of the flatbuffer (the ``.tflite`` file's size)."""
        return len(self.content)

    @property
    def input_dtype(self) -> np.dtype:
        """The dtype of the input tensor (``int8`` for full-integer models)."""
        return np.dtype(self._interpreter.get_input_details()[0]["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        """The dtype of the output tensor."""
        return np.dtype(self._interpreter.get_output_details()[0]["dtype"])

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            detail = self._interpreter.get_input_details()[0]
            with _quiet():
                self._interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
                self._interpreter.allocate_tensors()
            self._batch = batch

    def _run(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        detail = self._interpreter.get_input_details()[0]
        out_detail = self._interpreter.get_output_details()[0]
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self._interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(out_detail["index"])
        if np.issubdtype(out_detail["dtype"], np.integer):
            scale, zero = out_detail["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32)

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """The model's outputs (logits for the book's models) on ``x``, as float32.

        Parameters
        ----------
        x : array-like
            ``N×H×W×C`` float inputs, as the Keras model takes them.
        batch_size : int
            Images per interpreter call (at least 1).

        Returns
        -------
        numpy.ndarray
            ``N×K`` float32.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        x = np.asarray(x, dtype=np.float32)
        parts = [self._run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def latency(self, x: Any, repeats: int = 200) -> float:
        """Median seconds to classify one image (batch of 1), as an app on a phone would.

        Parameters
        ----------
        x : array-like
            Images to cycle through (at least one).
        repeats : int
            Timed calls (at least 1); a few untimed calls warm up first.

        Returns
        -------
        float
        """
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0 or repeats < 1:
            raise ValueError("latency needs at least one image and one repeat.")
        for i in range(min(5, len(x))):
            self._run(x[i:i + 1])
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            self._run(x[i % len(x):i % len(x) + 1])
            times.append(time.perf_counter() - start)
        return float(np.median(times))


@dataclass(frozen=True)
class VariantResult:
    """One row of :func:`compare_variants`: a variant's size, accuracy, agreement and speed."""

    variant: str
    size_bytes: int
    accuracy: float
    agreement: float
    latency_s: float
    images_per_second: float


def compare_variants(
    model: Any,
    x_test: Any,
    y_test: Any,
    representative: Any,
    variants: tuple[str, ...] = VARIANTS,
    latency_repeats: int = 200,
    throughput_batch: int = 256,
) -> tuple[list[VariantResult], dict[str, bytes]]:
    """Convert ``model`` to each variant and measure it against the Keras model on the test images.

    Parameters
    ----------
    model : keras.Model
        The trained logits model.
    x_test, y_test : array-like
        Test images and labels (measured once here; nothing is tuned on them).
    representative : array-like
        Training images to calibrate ``int8``.
    variants : tuple of str
        Which of :data:`VARIANTS`.
    latency_repeats : int
        Timed single-image calls per variant.
    throughput_batch : int
        Batch size of the images-per-second measurement.

    Returns
    -------
    (list of VariantResult, dict of str to bytes)
        A row per variant (agreement: share of test images where its top class
        equals the Keras model's), and each variant's flatbuffer.
    """
    x = np.asarray(x_test, dtype=np.float32)
    y = np.asarray(y_test)
    reference = np.asarray(model.predict(x, batch_size=1024, verbose=0)).argmax(axis=1)
    rows, files = [], {}
    for variant in variants:
        content = to_tflite(model, variant, representative=representative)
        lite = LiteModel(content)
        start = time.perf_counter()
        predicted = lite.predict(x, batch_size=throughput_batch).argmax(axis=1)
        seconds = time.perf_counter() - start
        rows.append(VariantResult(
            variant=variant,
            size_bytes=lite.size,
            accuracy=float((predicted == y).mean()),
            agreement=float((predicted == reference).mean()),
            latency_s=lite.latency(x, repeats=latency_repeats),
            images_per_second=len(x) / seconds,
        ))
        files[variant] = content
    return rows, files
