"""The machine the book runs on: CPU facts, the precision to compute in, training throughput.

* :func:`cpu_info` — the one reader of Linux ``/proc/cpuinfo`` (its first
  processor's fields); :func:`cpu_flags` and :func:`cpu_model` read from it;
* :func:`preferred_dtype` — ``"mixed_bfloat16"`` where the CPU multiplies
  bfloat16 natively (:data:`BFLOAT16_CPU_FLAGS`), else ``"float32"``
  (:data:`DTYPES`; ``$CNNBOOK_DTYPE`` decides when set);
* :func:`training_throughput` — training images per second of a model on this
  machine, to compare precisions or layers before a long run (it lives with
  the training engine, in :mod:`cnnbook.train_steps`, and is imported back);
* :func:`machine_info` and :func:`cpu_description` — the record of where a
  run was made (stored with every chapter) and that record in words.

It imports only the standard library and NumPy at import time; TensorFlow and
Keras inside :func:`preferred_dtype` and :func:`training_throughput`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from .train_steps import training_throughput  # lives with the training engine

__all__ = [
    "BFLOAT16_CPU_FLAGS",
    "DTYPES",
    "ONEDNN_DEFAULT_FLAGS",
    "VECTOR_EXTENSIONS",
    "cpu_flags",
    "cpu_info",
    "cpu_description",
    "cpu_model",
    "machine_info",
    "float32_peak",
    "kernels_description",
    "onednn_state",
    "preferred_dtype",
    "training_throughput",
    "use_onednn",
    "vector_extensions",
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


# --- Which kernels run: oneDNN and the CPU's vector extensions --------------------

#: Vector extensions (Linux flag names) that decide which kernels can run.
VECTOR_EXTENSIONS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
    "avx_vnni", "amx_tile", "amx_bf16",
)

#: Where TensorFlow (2.16-2.21, ``tensorflow/core/util/port.cc``) turns oneDNN on
#: by itself on x86 Linux; elsewhere it leaves it off unless told.
ONEDNN_DEFAULT_FLAGS = (
    "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
)


def vector_extensions() -> list[str]:
    """The CPU's vector extensions among :data:`VECTOR_EXTENSIONS`, widest last.

    Returns
    -------
    list of str
        E.g. ``["sse4_2", "avx", "avx2", "fma"]`` on an AMD Zen 3.
    """
    flags = cpu_flags()
    return [name for name in VECTOR_EXTENSIONS if name in flags]


def expected_onednn_state() -> dict[str, Any]:
    """oneDNN's state a TensorFlow process started now will have, without importing TensorFlow.

    From ``$TF_ENABLE_ONEDNN_OPTS`` when set, else TensorFlow's own rule for
    x86 Linux (on with one of :data:`ONEDNN_DEFAULT_FLAGS`); what a chapter's
    kernel or a benchmark worker inherits.

    Returns
    -------
    dict
        ``{"enabled": bool, "decided_by": str, "max_isa": str or None,
        "vector_extensions": list of str}``.
    """
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip()
    if setting:
        enabled = setting.lower() in ("1", "true", "yes", "on")
        decided_by = f"TF_ENABLE_ONEDNN_OPTS={setting}"
    else:
        has = sorted(cpu_flags() & set(ONEDNN_DEFAULT_FLAGS))
        enabled = bool(has)
        decided_by = "TensorFlow's default for this CPU (" + (
            f"on with {', '.join(has)})" if has
            else "off: no AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX)"
        )
    max_isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip() or None
    return {
        "enabled": enabled, "decided_by": decided_by, "max_isa": max_isa,
        "vector_extensions": vector_extensions(),
    }


def onednn_state() -> dict[str, Any]:
    """Whether TensorFlow runs oneDNN kernels in this process, and what decided it.

    TensorFlow reads ``$TF_ENABLE_ONEDNN_OPTS`` once, when it loads; without
    it, oneDNN is on only on CPUs with one of :data:`ONEDNN_DEFAULT_FLAGS`.
    ``$ONEDNN_MAX_CPU_ISA`` caps the instructions oneDNN uses (``AVX2``
    reproduces an AVX2-only CPU's oneDNN kernels on an AVX-512 one).
    Imports TensorFlow.

    Returns
    -------
    dict
        ``{"enabled": bool or None (unknown), "decided_by": str,
        "max_isa": str or None}``: TensorFlow's own answer where it gives
        one, the reason from :func:`expected_onednn_state`.
    """
    expected = expected_onednn_state()
    enabled = None
    try:  # TensorFlow's own answer (a private module: absent, it stays unknown)
        from tensorflow.python.util import _pywrap_util_port

        enabled = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        pass
    return {"enabled": enabled, "decided_by": expected["decided_by"], "max_isa": expected["max_isa"]}


def kernels_description(state: dict[str, Any] | None = None) -> str:
    """oneDNN's state in words, e.g. ``"oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)"``.

    Parameters
    ----------
    state : dict, optional
        An :func:`onednn_state` record (default: this process's).

    Returns
    -------
    str
    """
    state = onednn_state() if state is None else state
    word = {True: "on", False: "off", None: "unknown"}[state.get("enabled")]
    text = f"oneDNN {word} ({state.get('decided_by')})"
    if state.get("max_isa") and state.get("enabled"):
        text += f", capped at {state['max_isa']}"
    return text


def float32_peak(
    cores: int | None = None, clock_ghz: float | None = None
) -> dict[str, Any]:
    """An estimate of this CPU's float32 peak, with its assumptions.

    Peak = physical cores x clock x float32 FLOPs per cycle of the widest
    fused multiply-add units: 64 with AVX-512 on two full-width units (Intel
    Xeon, AMD Zen 5 server parts), 32 on Zen 4 (AVX-512 executed as two
    256-bit halves) and with AVX2 and FMA on two 256-bit units (Zen 2/3,
    Intel since Haswell), 16 on AMD Zen 1 (128-bit units), 8 without FMA.

    Parameters
    ----------
    cores : int, optional
        Physical cores (default: the CPUs this process may use, divided by
        the threads per core that ``/proc/cpuinfo`` reports).
    clock_ghz : float, optional
        Default: ``cpu MHz`` of ``/proc/cpuinfo`` (a virtual machine reports
        its nominal clock; boost clocks are higher), else 2.5 GHz assumed.

    Returns
    -------
    dict
        ``{"gflops", "cores", "clock_ghz", "flops_per_cycle", "assumptions"}``.
    """
    info = cpu_info()
    flags = set(info.get("flags", "").split())
    family = info.get("cpu family", "")
    amd = "AMD" in info.get("vendor_id", "") + info.get("model name", "")
    if "avx512f" in flags:
        per_cycle = 32 if amd and family == "25" else 64
        unit = "AVX-512" + (" (Zen 4: two 256-bit halves)" if per_cycle == 32 else "")
    elif "avx2" in flags and "fma" in flags:
        per_cycle = 16 if amd and family == "23" and info.get("model") in ("1", "8", "17", "24") else 32
        unit = "AVX2 + FMA" + (" (Zen 1: 128-bit units)" if per_cycle == 16 else "")
    else:
        per_cycle, unit = 8, "no FMA"
    assumptions = [f"{unit}: {per_cycle} float32 FLOPs per cycle per core (two FMA units)"]
    if cores is None:
        logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        siblings, per_core = info.get("siblings"), info.get("cpu cores")
        threads = int(siblings) // int(per_core) if siblings and per_core and int(per_core) else 1
        cores = max(1, logical // max(threads, 1))
        assumptions.append(f"{cores} physical cores ({logical} logical CPUs, {threads} thread(s) per core)")
    if clock_ghz is None:
        mhz = info.get("cpu MHz")
        if mhz:
            clock_ghz = float(mhz) / 1000
            assumptions.append(f"clock {clock_ghz:.2f} GHz from /proc/cpuinfo (nominal; boost not counted)")
        else:
            clock_ghz = 2.5
            assumptions.append("clock unknown: 2.5 GHz assumed")
    gflops = cores * clock_ghz * per_cycle
    return {
        "gflops": gflops, "cores": cores, "clock_ghz": clock_ghz,
        "flops_per_cycle": per_cycle, "assumptions": assumptions,
    }


def machine_info() -> dict[str, Any]:
    """CPU model and core count, for recording where timings were measured.

    Returns
    -------
    dict
        ``{"cpu": model name, "cpu_family": ..., "cpu_model_number": ...,
        "cores": cores this process may use, "python": version, "system":
        e.g. "Linux"}``.  The CPU family and model number (from Linux
        ``/proc/cpuinfo``; ``None`` elsewhere) tell apart CPUs that share a
        brand name: an "AMD EPYC" may be a Zen 4 (family 25) or a Zen 5
        (family 26), about twice as fast.
    """
    info = cpu_info()
    cpu = info.get("model name") or platform.processor() or platform.machine()  # one read of /proc/cpuinfo
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cpu_family": info.get("cpu family"),
        "cpu_model_number": info.get("model"),
        "cores": cores,
        "python": platform.python_version(),
        "system": platform.system(),
    }


def cpu_description(info: dict[str, Any]) -> str:
    """The CPU of a :func:`machine_info` record in words, e.g. ``"AMD EPYC (CPU family 26, model 2)"``.

    Parameters
    ----------
    info : dict
        A :func:`machine_info` record (older records without the family give the name alone).

    Returns
    -------
    str
    """
    name = str(info.get("cpu") or "unknown CPU")
    if info.get("cpu_family"):
        name += f" (CPU family {info['cpu_family']}, model {info.get('cpu_model_number')})"
    return name


def use_onednn() -> dict[str, Any]:
    """Turn TensorFlow's oneDNN kernels on for this process, before TensorFlow loads.

    The book's choice: on a 2-core AMD Zen 3 (AVX2, no AVX-512), where
    TensorFlow leaves oneDNN off, turning it on made the Part I model train
    1.5x faster and predict 2x faster in float32 (the benchmark's AVX2 tables
    on the Results page); on CPUs with AVX-512-VNNI, AVX-512-BF16, AVX-VNNI
    or AMX, TensorFlow turns it on by itself.  A ``$TF_ENABLE_ONEDNN_OPTS``
    the reader set is left as it is (``0`` turns it off).

    Returns
    -------
    dict
        :func:`expected_onednn_state` after the choice.

    Raises
    ------
    RuntimeError
        TensorFlow is already loaded without the setting: it would be
        ignored, so call this first (before importing ``keras`` or
        ``tensorflow``).
    """
    import sys

    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        if "tensorflow" in sys.modules:
            raise RuntimeError(
                "TensorFlow is already loaded, so oneDNN can no longer be turned on: call "
                "cnnbook.hardware.use_onednn() before importing keras or tensorflow "
                "(or set TF_ENABLE_ONEDNN_OPTS=1 before starting Python)."
            )
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return expected_onednn_state()
