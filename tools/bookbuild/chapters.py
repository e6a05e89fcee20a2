"""The book's chapters as files: which they are, their code cells, their CI settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnbook.book import _as_dict

__all__ = ["CHAPTER_PATTERNS", "chapter_paths", "ci_parameters", "code_cells"]

# Chapters are numbered NN_name; appendices A1_name, A2_name, ... come after them in the book.
CHAPTER_PATTERNS = ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")


def chapter_paths(folder: str | Path) -> list[Path]:
    """The book's chapters in ``folder``, in reading order.

    Parameters
    ----------
    folder
        The ``notebooks`` folder (or a copy of it).

    Returns
    -------
    list of Path
        Numbered chapters (``NN_name.ipynb``) in order, then appendices (``A1_name.ipynb``, ...).
    """
    folder = Path(folder)
    return [p for pattern in CHAPTER_PATTERNS for p in sorted(folder.glob(pattern))]


_INJECTED = "injected-parameters"


def code_cells(nb: Any) -> list[str]:
    """Sources of the code cells, without papermill's injected-parameters cell.

    Parameters
    ----------
    nb : nbformat.NotebookNode, dict, str or path-like
        The notebook or its path.

    Returns
    -------
    list of str
        One source per code cell, in order.
    """
    nb = _as_dict(nb)
    sources = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if _INJECTED in cell.get("metadata", {}).get("tags", []):
            continue
        src = cell.get("source", "")
        sources.append("".join(src) if isinstance(src, list) else src)
    return sources


def ci_parameters(nb: Any) -> dict[str, Any]:
    """The small settings CI runs a chapter with (``metadata.cnnbook.ci_parameters``).

    Parameters
    ----------
    nb : nbformat.NotebookNode, dict, str or path-like
        The chapter or its path.

    Returns
    -------
    dict of str to Any
        A copy; empty when the chapter has none.
    """
    return dict(_as_dict(nb).get("metadata", {}).get("cnnbook", {}).get("ci_parameters", {}))

