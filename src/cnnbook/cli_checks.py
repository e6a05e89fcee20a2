"""What the ``cnnbook`` command checks before it works, and how it words what goes wrong.

Every bad input ends in one line on stderr that says what is wrong and how to
fix it, and a non-zero exit status (1: an input cannot be used; 2: a flag's
value is out of range), never in a traceback.  :func:`check` looks at the
arguments before any TensorFlow work: model files (present, a file, a ``.keras``
zip archive whose ``config.json`` is JSON, a classifier with as many outputs as
the command needs), output paths (not a folder, in a folder that can be
written) and numeric flags.  :func:`guarded` runs a sub-command after
:func:`check` and words the errors that only the work itself can meet.

Why not in :mod:`cnnbook.cli`'s sub-commands themselves?  Chapter 13 runs the
command line in its cells, so it reaches every sub-command function: changing
them would make the chapter stale (CONTRIBUTING.md, "When is a chapter
stale?").  :func:`cnnbook.cli.run`, the command's entry point, goes through
:func:`guarded`; fold both into the sub-commands at chapter 13's next full run.

This module imports the standard library only; no chapter imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check", "guarded", "model_classes", "model_file_problem", "word_error"]

#: Classes the digit commands (``predict``, ``explain``) and every dataset of
#: ``evaluate`` have.
CLASSES = 10

_TRAIN_HINT = "cnnbook train --dataset mnist --out model.keras writes one"
# Layers that keep the number of classes of the layer before them.
_PASS_THROUGH = {"Activation", "Softmax", "Dropout", "ReLU", "Identity", "ActivityRegularization"}


def model_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a usable ``.keras`` model file, in one line, or ``None``.

    Reads only the archive's table of contents and ``config.json`` (no
    TensorFlow): what Keras would refuse later with a longer, less helpful
    message.

    Parameters
    ----------
    path : str or path-like
        The file given on the command line.

    Returns
    -------
    str or None
        The problem and its fix, or ``None`` when the file looks like a model.
    """
    p = Path(path)
    name = os.fspath(path)
    if not p.exists():
        return f"no model file at {name!r}; give the path of a .keras file ({_TRAIN_HINT})."
    if p.is_dir():
        return (f"{name!r} is a folder, not a model file; give a .keras file (a SavedModel folder: "
                "load it in Python and save it with model.save('model.keras')).")
    if p.suffix.lower() in (".h5", ".hdf5"):
        return (f"{name!r} is a legacy HDF5 file; cnnbook reads .keras archives: load it with "
                "keras.models.load_model and save it again with model.save('model.keras').")
    if p.suffix.lower() == ".tflite":
        return (f"{name!r} is a TensorFlow Lite file, which cnnbook writes but does not read; "
                "give the .keras file it was exported from.")
    if p.suffix != ".keras":
        return f"{name!r} is not a Keras model file: give a .keras archive written by model.save ({_TRAIN_HINT})."
    try:
        if p.stat().st_size == 0:
            return f"{name!r} is empty (0 bytes): an interrupted copy or save? Copy or save it again."
        if not zipfile.is_zipfile(p):
            return (f"{name!r} is not a .keras archive (not a zip file): damaged, or another format "
                    "renamed; save the model again with model.save('model.keras').")
        with zipfile.ZipFile(p) as archive:
            if "config.json" not in archive.namelist():
                return (f"{name!r} is a zip file without config.json, so not a model written by "
                        "model.save; save the model again with model.save('model.keras').")
            json.loads(archive.read("config.json"))
    except PermissionError:
        return f"cannot read {name!r}: permission denied; check the file's permissions."
    except (OSError, zipfile.BadZipFile) as err:
        return f"cannot read {name!r} ({err}); copy or save the model again."
    except (ValueError, UnicodeDecodeError):
        return (f"{name!r} is damaged: its config.json is not JSON (edited by hand, or truncated?); "
                "save the model again with model.save('model.keras').")
    return None


def model_classes(path: str | os.PathLike[str]) -> int | None:
    """The number of classes a ``.keras`` classifier outputs, read from its ``config.json``.

    Parameters
    ----------
    path : str or path-like
        A file :func:`model_file_problem` accepted.

    Returns
    -------
    int or None
        The ``units`` of the output ``Dense`` layer (through activation,
        softmax or dropout layers after it); ``None`` when the configuration
        does not say it plainly (the command then finds out while it runs).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json")).get("config", {})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        return None
    outputs = config.get("output_layers")
    if outputs:  # Functional: from its one output back along each layer's one input
        # One output is saved as [name, 0, 0] (Keras 3) or [[name, 0, 0]]; more outputs: no answer.
        if isinstance(outputs[0], list):
            outputs = outputs[0] if len(outputs) == 1 else []
        if not outputs or not isinstance(outputs[0], str):
            return None
        by_name = {layer.get("config", {}).get("name"): layer for layer in layers if isinstance(layer, dict)}
        layer, seen = by_name.get(outputs[0]), 0
        while isinstance(layer, dict) and seen < len(layers):
            found = _plain_classes(layer)
            if found != 0:
                return found
            sources = set(re.findall(r'"keras_history": \["([^"]+)"', json.dumps(layer.get("inbound_nodes"))))
            layer, seen = (by_name.get(sources.pop()) if len(sources) == 1 else None), seen + 1
        return None
    for layer in reversed(layers):  # Sequential: from the last layer back
        found = _plain_classes(layer) if isinstance(layer, dict) else None
        if found != 0:
            return found
    return None


def _plain_classes(layer: dict) -> int | None:
    """A Dense layer's units; 0 for a layer that keeps its input's classes; None otherwise."""
    units = layer.get("config", {}).get("units")
    if layer.get("class_name") == "Dense" and isinstance(units, int):
        return units
    return 0 if layer.get("class_name") in _PASS_THROUGH else None


def _output_problem(out: Path) -> str | None:
    """Why ``out`` cannot be written, or ``None``."""
    if out.is_dir():
        return f"{os.fspath(out)!r} is a folder; name a file to write in it with --out."
    folder = out.parent
    existing = next((f for f in (folder, *folder.parents) if f.exists()), Path("."))
    if not existing.is_dir():
        return f"cannot write {os.fspath(out)!r}: {os.fspath(existing)!r} is a file, not a folder."
    if not os.access(existing, os.W_OK | os.X_OK):
        return (f"cannot write {os.fspath(out)!r}: the folder {os.fspath(existing)!r} is not writable; "
                "choose another place with --out.")
    return None


def _at_least(args: argparse.Namespace, flag: str, low: int) -> str | None:
    value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if value is not None and value < low:
        return f"{flag} must be at least {low}, got {value}."
    return None


def check(args: argparse.Namespace) -> tuple[str, int] | None:
    """The first problem with the command's arguments, before any work.

    Parameters
    ----------
    args : argparse.Namespace
        What :func:`cnnbook.cli.build_parser` parsed (``command`` names the
        sub-command).

    Returns
    -------
    tuple of (str, int) or None
        The one-line message (without the ``cnnbook:`` prefix) and the exit
        status (2: a flag's value; 1: a file), or ``None`` when nothing is wrong.
    """
    command = args.command
    for flag, low in (("--epochs", 1), ("--test-size", 1), ("--calibration-size", 1)):
        problem = _at_least(args, flag, low)
        if problem:
            return problem, 2
    model = getattr(args, "model", None)
    if model is not None:
        problem = model_file_problem(model)
        if problem:
            return problem, 1
        classes = model_classes(model)
        if command in ("predict", "explain", "evaluate") and classes not in (None, CLASSES):
            what = "the digits 0-9" if command != "evaluate" else f"the {CLASSES} classes of {args.dataset}"
            return (f"the model {model!r} outputs {classes} classes, but {command} needs one output per class "
                    f"of {what} ({CLASSES}); give a model trained on them ({_TRAIN_HINT})."), 1
    if command == "train":
        problem = _output_problem(Path(args.out))
        if problem:
            return problem, 1
    elif command == "export" and args.out:
        problem = _output_problem(Path(args.out))
        if problem:
            return problem, 1
    elif command == "explain" and Path(args.out).parent.is_dir() and not Path(args.out).is_dir():
        problem = _output_problem(Path(args.out))  # (a missing folder or a folder --out: explain says so)
        if problem:
            return problem, 1
    return None


_CLASS_NAMES = re.compile(r"the model has (\d+) classes but (\d+) class names were given")
_TWICE = re.compile(r"^(cnnbook: cannot load the model '[^']*': )cannot load the model '[^']*': ")


def word_error(err: BaseException, args: argparse.Namespace) -> str:
    """One line, with the fix, for an error a sub-command met while it worked.

    Parameters
    ----------
    err : BaseException
        What the sub-command raised (``ValueError``, ``OSError``, ...).
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    str
        The message, without the ``cnnbook:`` prefix.
    """
    text = " ".join(str(err).split()) or type(err).__name__
    found = _CLASS_NAMES.search(text)
    if found:
        return (f"the model {getattr(args, 'model', None) or 'given'!r} outputs {found.group(1)} classes, but "
                f"{args.command} needs {found.group(2)}, one per digit 0-9; give a digit classifier "
                f"({_TRAIN_HINT}).")
    if "class indices outside" in text:
        return (f"the model {getattr(args, 'model', '')!r} outputs more classes than {args.dataset} has; "
                f"evaluate it on the dataset it was trained on.")
    if isinstance(err, PermissionError):
        return f"permission denied: {getattr(err, 'filename', None) or text}; choose a place you can write to."
    if isinstance(err, IsADirectoryError):
        return f"{getattr(err, 'filename2', None) or getattr(err, 'filename', None) or text} is a folder; name a file."
    if isinstance(err, FileNotFoundError):
        return f"{text}; check the path."
    if isinstance(err, OSError):
        return f"{text}; check the paths and free disk space."
    if isinstance(err, MemoryError):
        return "out of memory; try a smaller --train-size, --test-size or --calibration-size."
    return text


def guarded(args: argparse.Namespace, work: Callable[[], Any]) -> int:
    """Check ``args``, run ``work`` (the sub-command) and word what goes wrong; the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments (for :func:`check` and the messages).
    work : callable
        Runs the sub-command and returns its exit status.

    Returns
    -------
    int
        ``work``'s status; 1 or 2 when :func:`check` refused the arguments; 1
        when ``work`` raised ``ValueError``, ``OSError`` or ``MemoryError``
        (the line on stderr says what to do); 130 after Ctrl-C.
    """
    problem = check(args)
    if problem:
        print(f"cnnbook: {problem[0]}", file=sys.stderr)
        return problem[1]
    try:
        return int(work())
    except SystemExit as stop:
        if isinstance(stop.code, str):  # cli._fail: keep one "cannot load the model" of two
            raise SystemExit(_TWICE.sub(r"\1", stop.code)) from None
        raise
    except KeyboardInterrupt:
        print("\ncnnbook: interrupted.", file=sys.stderr)
        return 130
    except (ValueError, OSError, MemoryError) as err:
        print(f"cnnbook: {word_error(err, args)}", file=sys.stderr)
        return 1
