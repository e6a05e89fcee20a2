"""The small runtime every chapter imports: glue values for the prose, read them back.

* :func:`glue` stores a value under a name for the book's prose
  (``{glue:text}`name```), in the format myst-nb reads, without importing
  myst-nb (chapters also run on Colab);
* :func:`read_glued` reads every glued value of an executed chapter back;
* :func:`machine_info` and :func:`cpu_description` (from
  :mod:`cnnbook.hardware`) record and describe the machine a run was made on.

The tools that execute chapters and tell whether they are stale are not part
of the installed package: they live in the repository's ``tools/bookbuild``
(``PYTHONPATH=tools python -m bookbuild check notebooks/*.ipynb``).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .hardware import cpu_description, machine_info

__all__ = [
    "GLUE_PREFIX",
    "cpu_description",
    "glue",
    "machine_info",
    "read_glued",
]

GLUE_PREFIX = "application/papermill.record/"


# --- Glue ------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as plain Python, so the stored repr reads back with literal_eval."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Store ``value`` under ``name`` for the book's prose (``{glue:text}`name```).

    The same output format as :func:`myst_nb.glue` (so Jupyter Book renders it),
    written without importing myst-nb, so chapters also run on Colab.

    Parameters
    ----------
    name : str
        The key the prose refers to.
    value : Any
        Anything IPython can display; NumPy scalars and arrays become plain Python.
    display : bool
        Also show the value in the cell's output (otherwise it is stored hidden).

    Returns
    -------
    Any
        The value, converted to plain Python.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    value = _plain(value)
    mimebundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
    return value


def read_glued(nb: Any) -> dict[str, Any]:
    """Every glued value of an executed notebook (an nbformat node, dict or path).

    Values are read back from their ``text/plain`` form with :func:`ast.literal_eval`;
    anything that is not a literal (a figure, a DataFrame) comes back as that text.

    Parameters
    ----------
    nb : nbformat.NotebookNode, dict, str or path-like
        The executed notebook or its path.

    Returns
    -------
    dict of str to Any
        Glued name → value (the last one wins when a name is glued twice).
    """
    nb = _as_dict(nb)
    values: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            data = out.get("data", {})
            text = data.get(meta.get("mime_prefix", "") + "text/plain")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            try:
                values[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[meta["name"]] = text
    return values



def _as_dict(nb: Any) -> dict:
    if isinstance(nb, (str, os.PathLike)):
        return json.loads(Path(nb).read_text(encoding="utf-8"))
    return nb


if __name__ == "__main__":
    # Deprecated: the build tools moved to the repository's tools/bookbuild
    # (``PYTHONPATH=tools python -m bookbuild``); this forwards to them from a
    # clone, for scripts and habits that still call ``python -m cnnbook.book``.
    _tools = Path(__file__).resolve().parents[2] / "tools"
    if not (_tools / "bookbuild").is_dir():
        sys.exit(
            "python -m cnnbook.book moved to the repository's tools: run "
            "'PYTHONPATH=tools python -m bookbuild ...' from a clone."
        )
    sys.path.insert(0, str(_tools))
    from bookbuild.__main__ import _main

    sys.exit(_main())
