"""The machine the book runs on: CPU facts, the precision to compute in, training throughput.

* :func:`cpu_info` — the one reader of Linux ``/proc/cpuinfo`` (its first
  processor's fields); :func:`cpu_flags` and :func:`cpu_model` read from it;
* :func:`preferred_dtype` — ``"mixed_bfloat16"`` where the CPU multiplies
  bfloat16 natively (:data:`BFLOAT16_CPU_FLAGS`), else ``"float32"``
  (:data:`DTYPES`; ``$CNNBOOK_DTYPE`` decides when set);
* :func:`training_throughput` — training images per second of a model on this
  machine, to compare precisions or layers before a long run.

It imports only the standard library and NumPy at import time; TensorFlow and
Keras inside :func:`preferred_dtype` and :func:`training_throughput`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BFLOAT16_CPU_FLAGS",
    "DTYPES",
    "cpu_flags",
    "cpu_info",
    "cpu_model",
    "preferred_dtype",
    "training_throughput",
]

#: CPU feature flags (Linux ``/proc/cpuinfo``) of units that multiply bfloat16 natively.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

#: The Keras dtype policies the book trains in (:func:`preferred_dtype`, ``$CNNBOOK_DTYPE``,
#: :func:`cnnbook.training.model_path`).
DTYPES = ("float32", "mixed_bfloat16")

_CPUINFO = Path("/proc/cpuinfo")


def cpu_info() -> dict[str, str]:
    """The fields of the first processor in Linux ``/proc/cpuinfo``.

    Returns
    -------
    dict of str to str
        E.g. ``{"model name": "AMD EPYC ...", "flags": "fpu vme ...", ...}``;
        empty where there is no ``/proc/cpuinfo`` (not Linux).
    """
    try:
        text = _CPUINFO.read_text()
    except OSError:  # not Linux, or no /proc: assume nothing
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:  # the end of the first processor's block
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``flags`` in ``/proc/cpuinfo``; empty if unknown).

    Returns
    -------
    set of str
        E.g. ``{"sse2", "avx2", "avx512_bf16", ...}``.
    """
    return set(cpu_info().get("flags", "").split())


def cpu_model() -> str | None:
    """The CPU's model name (``model name`` in ``/proc/cpuinfo``).

    Returns
    -------
    str or None
        E.g. ``"AMD EPYC 9R14 96-Core Processor"``; ``None`` if unknown.
    """
    return cpu_info().get("model name") or None


def preferred_dtype() -> str:
    """The Keras dtype policy the book computes in on this machine.

    ``"mixed_bfloat16"`` (bfloat16 arithmetic, float32 weights) where the CPU
    multiplies bfloat16 natively (AMX or AVX-512-BF16: recent Intel Xeons) and
    no GPU is in use; ``"float32"`` everywhere else, because CPUs without those
    units *emulate* bfloat16 and get slower.  Set ``$CNNBOOK_DTYPE`` to
    ``float32`` or ``mixed_bfloat16`` to decide yourself.

    Returns
    -------
    str
        ``"float32"`` or ``"mixed_bfloat16"`` (one of :data:`DTYPES`).

    Raises
    ------
    ValueError
        ``$CNNBOOK_DTYPE`` is set to something else.
    """
    forced = os.environ.get("CNNBOOK_DTYPE", "").strip()
    if forced:
        if forced not in DTYPES:
            raise ValueError(f"CNNBOOK_DTYPE must be one of {', '.join(DTYPES)}, got {forced!r}.")
        return forced
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "float32"
    return "mixed_bfloat16" if cpu_flags() & set(BFLOAT16_CPU_FLAGS) else "float32"


def training_throughput(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int = 10,
    optimizer: Any = None,
) -> float:
    """Training images per second of ``model`` on one batch (``images``), repeated ``steps`` times.

    The first step, which builds and compiles the graph, is not timed.  Use it
    to compare precisions or layers on *this* machine before a long run; it
    changes ``model``'s weights, so measure on a throw-away copy.

    Parameters
    ----------
    model : keras.Model
        A logits model (it is compiled here, with a ``from_logits=True`` loss).
    images : numpy.ndarray
        One batch of inputs, non-empty.
    labels : numpy.ndarray
        One class index per image.
    steps : int
        Timed training steps (at least 1).
    optimizer : keras.optimizers.Optimizer, optional
        Default ``Adam(learning_rate=1e-3)``.

    Returns
    -------
    float
        Images per second over the timed steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"Need a non-empty batch with one label per image, got {len(images)} and {len(labels)}.")
    import keras

    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.train_on_batch(images, labels)  # builds the graph: not timed
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * len(images) / (time.perf_counter() - start)
