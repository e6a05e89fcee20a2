"""The online book's drawing pad: the reader draws a digit, the Part I model answers.

The pad (``_static/digit/digit.js`` with ``digit.css``, on chapter 6's "Your own
handwriting" section) runs entirely in the reader's browser, offline.  This
module is its Python side:

* :func:`prepare_canvas` — :func:`cnnbook.images.prepare_digit`'s path for a
  drawing on a canvas, which the pad's JavaScript implements step for step
  (``tests/test_digit_widget.py`` compares the two in headless Chromium);
* :func:`to_web` / :func:`read_web` — the weights file the pad computes from
  (``_static/digit/mnist_cnn.json``), written by ``cnnbook export MODEL
  --format web`` with :func:`web_provenance` (which model file, which recipe,
  which Keras) so a test can tell when it no longer matches the model the
  chapters train.

Why hand-written JavaScript rather than LiteRT's web runtime (or
TensorFlow.js)?  The Part I model needs five layer types (3×3 convolution, 2×2
max pooling, batch normalisation, ReLU, dense): about 150 lines of
dependency-free JavaScript.  A runtime would add hundreds of kilobytes to
megabytes of script and WebAssembly to a page whose model weighs about
115 KB, would have to be vendored into the book to work offline (no CDN), and
would need updating as it changes.  The price: only those layer types
export, which :func:`to_web` checks.

This module uses NumPy and :mod:`cnnbook.images`; Keras and TensorFlow inside
functions only.  No chapter imports it (``images`` and ``export``, which
chapters reach whole, stay unchanged).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .images import (
    BOX,
    FIELD,
    KEEP_FRACTION,
    MAX_INK_FRACTION,
    MIN_CONTRAST,
    MIN_DIGIT_FRACTION,
    MIN_SIDE,
    MIN_SNR,
    MIN_STROKE,
    TARGET_STROKE,
    ImageError,
    NoDigitFoundError,
    _box3,
    _centre_by_mass,
    _components,
    _dilate,
    _fit_box,
    _paint,
    _stroke_width,
)

__all__ = [
    "WEB_FORMAT",
    "WEB_FORMAT_VERSION",
    "prepare_canvas",
    "prepare_canvas_steps",
    "read_web",
    "to_web",
    "web_provenance",
]


# --- The canvas path of prepare_digit ------------------------------------------------


def _canvas_ink(ink: Any) -> np.ndarray:
    """A canvas drawing as float32 ink strength in [0, 1] (0 = untouched canvas)."""
    a = np.asarray(ink)
    if a.ndim != 2:
        raise ImageError(f"A canvas drawing must be a 2-D array (height × width); got shape {a.shape}.")
    if min(a.shape) < MIN_SIDE:
        raise ImageError(f"The canvas is only {a.shape[1]}×{a.shape[0]} pixels; at least "
                         f"{MIN_SIDE}×{MIN_SIDE} are needed to see a digit.")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype.kind not in "fb":
        raise ImageError(f"A canvas drawing must be uint8 (0-255) or float (0-1); got dtype {a.dtype}.")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
        raise ImageError("A float canvas drawing must hold ink strengths between 0 and 1.")
    return a


def prepare_canvas_steps(ink: Any) -> dict[str, np.ndarray]:
    """:func:`prepare_canvas`, keeping every intermediate image.

    Parameters
    ----------
    ink : numpy.ndarray
        As for :func:`prepare_canvas`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"ink"``, ``"mask"``, ``"cropped"``, ``"fitted"`` and ``"centred"``,
        as the same keys of :func:`prepare_digit_steps`.

    Raises
    ------
    ImageError, NoDigitFoundError
        As :func:`prepare_canvas`.
    """
    ink = _canvas_ink(ink)
    if float(np.ptp(ink)) < MIN_CONTRAST:
        raise NoDigitFoundError("No digit found: the canvas is blank.")
    # From here on, step for step what prepare_digit_steps does after reading.
    smooth = _box3(ink)
    noise = 1.4826 * float(np.median(np.abs(smooth - np.median(smooth))))
    peak = float(smooth.max())
    if peak < MIN_CONTRAST or peak < MIN_SNR * noise:
        raise NoDigitFoundError(f"No digit found: nothing stands out on the canvas (strongest mark {peak:.2f}).")
    mask = smooth > max(0.3 * peak, 4.0 * noise, 0.5 * MIN_CONTRAST)
    ink_fraction = float(mask.mean())
    if ink_fraction > MAX_INK_FRACTION:
        raise NoDigitFoundError(f"No digit found: the ink covers {ink_fraction:.0%} of the canvas.")
    (rows, starts, ends), labels, sizes = _components(mask)
    largest = int(sizes.max()) if sizes.size else 0
    if largest == 0 or (sizes.size > 50 and largest < 0.1 * sizes.sum()):
        raise NoDigitFoundError(f"No digit found: the marks are {sizes.size} scattered specks.")
    keep = sizes >= KEEP_FRACTION * largest
    run_kept = keep[labels]
    digit_mask = _paint(mask.shape, rows[run_kept], starts[run_kept], ends[run_kept])
    level = max(float(np.percentile(ink[digit_mask], 75)), 1e-6)
    core = digit_mask & (ink >= 0.5 * level)
    if not core.any():
        core = digit_mask
    r = np.flatnonzero(core.any(axis=1))
    c = np.flatnonzero(core.any(axis=0))
    y0, y1, x0, x1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
    long_side = max(y1 - y0, x1 - x0)
    if long_side < max(4, MIN_DIGIT_FRACTION * max(ink.shape)):
        raise NoDigitFoundError(f"No digit found: the only mark is a speck of {long_side} pixels.")
    clean = np.where(_dilate(digit_mask.astype(np.float32), 1) > 0, ink, 0.0)
    cropped = np.clip(clean[y0:y1, x0:x1] / level, 0.0, 1.0).astype(np.float32)
    crop_mask = core[y0:y1, x0:x1]
    scale = BOX / long_side
    width = _stroke_width(crop_mask)
    if width * scale < MIN_STROKE:
        radius = max(1, int(round((TARGET_STROKE / scale - width) / 2)))
        cropped = _dilate(np.pad(cropped, radius), radius)
    fitted = _fit_box(cropped, BOX)
    centred = _centre_by_mass(fitted, FIELD)
    if float(centred.max()) <= 0.0:
        raise NoDigitFoundError("No digit found: nothing was left after centring the marks.")
    return {"ink": ink, "mask": digit_mask, "cropped": cropped, "fitted": fitted, "centred": centred}


def prepare_canvas(ink: Any) -> np.ndarray:
    """A digit drawn on a canvas → the MNIST-like ``28×28`` input (the drawing pad's path).

    The online book's drawing pad (``_static/digit/digit.js``) runs this in the
    reader's browser; ``tests/test_digit_widget.py`` checks that both give the
    same image.  It is :func:`prepare_digit` without the steps a canvas does not
    need: the drawing is already grayscale and has no file to read, its
    polarity is known (the pad passes ink strength, bright on black as in
    MNIST), and its untouched background is exactly 0, so there is no paper
    colour to detect and no uneven illumination to fit and subtract.  The rest
    is the same code: the ink threshold against the background noise, specks
    dropped, the stroke's level, the crop to the ink, thin strokes thickened,
    the Lanczos fit into 20×20 and the centring by the centre of mass in 28×28.

    Parameters
    ----------
    ink : numpy.ndarray
        ``H×W`` ink strength: uint8 (0-255) or float in [0, 1]; 0 is the
        untouched canvas.  The pad passes ``255 - red`` of its black-on-white
        canvas.

    Returns
    -------
    numpy.ndarray
        float32 ``28×28``, the digit bright on black.

    Raises
    ------
    ImageError
        Not a 2-D uint8 or float array of ink strengths, or under
        :data:`MIN_SIDE` pixels a side.
    NoDigitFoundError
        A blank canvas, scattered specks, or ink over most of it.
    """
    return prepare_canvas_steps(ink)["centred"]


# --- The weights file -------------------------------------------------------------

#: The value of the ``"format"`` key of a file :func:`to_web` writes.
WEB_FORMAT = "cnnbook-web"
#: The version of that format the drawing pad reads.
WEB_FORMAT_VERSION = 1


def _web_array(array: Any) -> dict[str, Any]:
    a = np.ascontiguousarray(np.asarray(array, dtype="<f4"))
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _web_layer(layer: Any) -> dict[str, Any] | None:
    """One Keras layer as a record of the web format (None: nothing to compute at inference)."""
    kind = type(layer).__name__
    config = layer.get_config()
    weights = [np.asarray(w) for w in layer.get_weights()]

    def refuse(why: str) -> ValueError:
        return ValueError(f"layer {layer.name!r} ({kind}) cannot be exported to the web format: {why}.")

    activation = config.get("activation", "linear")
    if kind in ("Conv2D", "Dense") and activation not in ("linear", "relu"):
        raise refuse(f"activation {activation!r} (linear or relu only)")
    if kind == "InputLayer":
        return None
    if kind == "Conv2D":
        if tuple(config["strides"]) != (1, 1) or tuple(config["dilation_rate"]) != (1, 1) \
                or config.get("groups", 1) != 1 or config["data_format"] != "channels_last":
            raise refuse("only stride 1, no dilation, no groups, channels last")
        record = {"type": "conv2d", "padding": config["padding"], "activation": activation,
                  "kernel": _web_array(weights[0])}
        if config["use_bias"]:
            record["bias"] = _web_array(weights[1])
        return record
    if kind == "MaxPooling2D":
        if config["data_format"] != "channels_last" or config["padding"] != "valid":
            raise refuse("only 'valid' padding, channels last")
        return {"type": "max_pool2d", "pool_size": list(config["pool_size"]),
                "strides": list(config["strides"] or config["pool_size"])}
    if kind in ("BatchNormalization", "FusedBatchNormalization"):
        if config["axis"] not in (-1, 3, [-1], [3]) or config.get("renorm"):
            raise refuse("only the channel axis, no renormalisation")
        names = [w.name for w in layer.weights]
        by_name = dict(zip(names, weights))
        channels = by_name["moving_mean"].shape[0]
        gamma = by_name.get("gamma", np.ones(channels, np.float32))
        beta = by_name.get("beta", np.zeros(channels, np.float32))
        return {"type": "batch_norm", "epsilon": float(config["epsilon"]),
                "gamma": _web_array(gamma), "beta": _web_array(beta),
                "moving_mean": _web_array(by_name["moving_mean"]),
                "moving_variance": _web_array(by_name["moving_variance"])}
    if kind == "ReLU":
        if config.get("max_value") is not None or config.get("negative_slope", 0.0) != 0.0 \
                or config.get("threshold", 0.0) != 0.0:
            raise refuse("only the plain ReLU")
        return {"type": "relu"}
    if kind == "Flatten":
        return {"type": "flatten"}
    if kind == "Dropout":
        return None  # the identity at inference
    if kind == "Dense":
        record = {"type": "dense", "activation": activation, "kernel": _web_array(weights[0])}
        if config["use_bias"]:
            record["bias"] = _web_array(weights[1])
        return record
    raise refuse("the drawing pad's JavaScript computes Conv2D, MaxPooling2D, BatchNormalization, "
                 "ReLU, Flatten, Dropout and Dense only")


def to_web(model: Any, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Keras model as the drawing pad's weights file (a JSON-ready dict).

    The online book's drawing pad (``_static/digit/digit.js``) computes the
    network in hand-written JavaScript from this file: one record per layer in
    order, each weight array as little-endian float32 bytes in base64 with its
    shape.  Dropout is left out (the identity at inference).

    Parameters
    ----------
    model : keras.Model
        A chain of Conv2D (stride 1), MaxPooling2D, BatchNormalization, ReLU,
        Flatten, Dropout and Dense layers with logits out (the Part I model,
        :func:`cnnbook.models.mnist_cnn`), channels last.
    provenance : dict, optional
        Where the weights come from (stored under ``"provenance"``).

    Returns
    -------
    dict
        ``format``, ``version``, ``input_shape``, ``output`` (``"logits"``),
        ``parameters``, ``layers`` (each with its Keras ``name``) and
        ``provenance``.

    Raises
    ------
    ValueError
        A layer the drawing pad cannot compute.
    """
    layers = []
    for layer in model.layers:
        record = _web_layer(layer)
        if record is not None:
            layers.append({"name": layer.name, **record})
    return {
        "format": WEB_FORMAT,
        "version": WEB_FORMAT_VERSION,
        "input_shape": [int(d) for d in model.input_shape[1:]],
        "output": "logits",
        "parameters": int(model.count_params()),
        "layers": layers,
        "provenance": dict(provenance or {}),
    }


def read_web(record: dict[str, Any]) -> dict[str, list[np.ndarray]]:
    """The weights of a :func:`to_web` file, per layer name, in Keras' ``get_weights`` order.

    Parameters
    ----------
    record : dict
        The parsed JSON file.

    Returns
    -------
    dict of str to list of numpy.ndarray
        For ``model.get_layer(name).set_weights(arrays)`` (layers without
        weights are left out).

    Raises
    ------
    ValueError
        Not a file of this format and version.
    """
    if record.get("format") != WEB_FORMAT or record.get("version") != WEB_FORMAT_VERSION:
        raise ValueError(f"not a {WEB_FORMAT} file of version {WEB_FORMAT_VERSION} "
                         f"(format {record.get('format')!r}, version {record.get('version')!r}).")

    def array(entry: dict[str, Any]) -> np.ndarray:
        flat = np.frombuffer(base64.b64decode(entry["data"]), dtype="<f4")
        return flat.reshape(entry["shape"]).astype(np.float32)

    order = {"conv2d": ("kernel", "bias"), "dense": ("kernel", "bias"),
             "batch_norm": ("gamma", "beta", "moving_mean", "moving_variance")}
    return {layer["name"]: [array(layer[key]) for key in order[layer["type"]] if key in layer]
            for layer in record["layers"] if layer["type"] in order}


def web_provenance(model_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Where a model file's weights come from, for the pad's weights file.

    Parameters
    ----------
    model_path : str or path-like
        The ``.keras`` file (the sidecar ``.json`` that
        :func:`cnnbook.training.save_model` writes beside it is read when present).

    Returns
    -------
    dict
        ``model_file`` (its name: for the book's cached models the recipe's
        cache key, see :func:`cnnbook.training.trained_model_path`),
        ``model_sha256``, ``training`` (the sidecar without its timing:
        dataset, training size, precision, recipe, best epoch; ``None``
        without one), and the ``keras``, ``tensorflow`` and ``cnnbook``
        versions that exported it.
    """
    import keras
    import tensorflow as tf

    from . import __version__

    path = Path(model_path)
    sidecar = path.with_suffix(".json")
    training = json.loads(sidecar.read_text()) if sidecar.is_file() else None
    if isinstance(training, dict):
        training.pop("seconds", None)  # how long it took on that machine: not provenance
    return {
        "model_file": path.name,
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "training": training,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "cnnbook": __version__,
        "command": "cnnbook export MODEL --format web",
    }
