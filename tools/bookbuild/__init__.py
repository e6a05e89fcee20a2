"""The book's build tools: staleness, execution and CI copies of the chapters.

Not part of the installed :mod:`cnnbook` package (readers need only its small
runtime, :mod:`cnnbook.book`); run from the repository with ``tools`` on the
path: ``PYTHONPATH=tools python -m bookbuild check notebooks/*.ipynb``
(the Makefile does; ``tests/conftest.py`` puts ``tools`` on ``sys.path``).

* :mod:`bookbuild.chapters` — which files are chapters, their code cells and
  CI parameters;
* :mod:`bookbuild.staleness` — what a chapter reaches in cnnbook, its
  provenance hash, migration between hash schemes;
* :mod:`bookbuild.run` — executing a chapter (papermill) and recording its
  provenance, timing it in float32, CI-parameterised copies;
* :mod:`bookbuild.__main__` — the command line.
"""

from __future__ import annotations

from .chapters import CHAPTER_PATTERNS, chapter_paths, ci_parameters, code_cells
from .run import execute, prepare_ci, time_in
from .staleness import (
    HASH_SCHEME,
    is_stale,
    migrate_hash,
    reached_definitions,
    source_hash,
)

__all__ = [
    "CHAPTER_PATTERNS",
    "HASH_SCHEME",
    "chapter_paths",
    "ci_parameters",
    "code_cells",
    "execute",
    "is_stale",
    "migrate_hash",
    "prepare_ci",
    "reached_definitions",
    "source_hash",
    "time_in",
]
