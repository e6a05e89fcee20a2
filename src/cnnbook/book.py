"""Running the book's chapters: glue, provenance hashes, execution, staleness.

A chapter is *stale* when something that can change its outputs changed after
they were stored: its code cells, or a :mod:`cnnbook` definition the chapter can
reach (what its cells take from cnnbook, and transitively every function, class,
constant and import those use, plus the top-level statements of each module
imported).  Docstrings, comments and formatting do not count, nor does code the
chapter cannot reach.  Executing a chapter through :func:`execute` writes
``metadata.cnnbook.source_hash`` into it; the tests recompute the hash and fail
on a mismatch; :func:`reached_definitions` (``python -m cnnbook.book reached NB``)
lists what a chapter reaches.

Command line (what ``make book`` and ``make test`` call)::

    python -m cnnbook.book execute [--all] notebooks/*.ipynb   # run stale chapters in place
    python -m cnnbook.book check notebooks/*.ipynb             # exit 1 if any is stale
    python -m cnnbook.book reached notebooks/05_training.ipynb # the cnnbook definitions it reaches
    python -m cnnbook.book migrate notebooks/*.ipynb           # provenance into the current hash scheme
    python -m cnnbook.book prepare-ci notebooks OUTDIR         # CI-parameterised copies for nbval

This module imports papermill and nbformat only inside the functions that need them.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import functools
import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from . import hardware

__all__ = [
    "CHAPTER_PATTERNS",
    "GLUE_PREFIX",
    "HASH_SCHEME",
    "chapter_paths",
    "ci_parameters",
    "code_cells",
    "cpu_description",
    "execute",
    "glue",
    "is_stale",
    "machine_info",
    "migrate_hash",
    "prepare_ci",
    "read_glued",
    "reached_definitions",
    "source_hash",
    "time_in",
]

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

PACKAGE_DIR = Path(__file__).resolve().parent
# 2: definitions count by name and code, not by the module they live in (moves are free).
HASH_SCHEME = 2
GLUE_PREFIX = "application/papermill.record/"
_INJECTED = "injected-parameters"


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


# --- Provenance ------------------------------------------------------------------


def _as_dict(nb: Any) -> dict:
    if isinstance(nb, (str, os.PathLike)):
        return json.loads(Path(nb).read_text(encoding="utf-8"))
    return nb


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


# --- What a chapter can reach ------------------------------------------------------
#
# A *target* is (module, name): a top-level definition of a cnnbook module; with
# name None, the whole module (a module object used as a value, a star import).
# Definitions are compared as syntax trees (dumped as text) without docstrings,
# so comments, docstrings and formatting never make a chapter stale.


def _normalised(node: Any) -> str:
    """``ast.dump(node, include_attributes=False)`` without empty fields, which differ between Python versions."""
    if isinstance(node, ast.AST):
        fields = ", ".join(f"{k}={_normalised(v)}" for k, v in ast.iter_fields(node) if v is not None and v != [])
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return f"[{', '.join(map(_normalised, node))}]"
    return repr(node)


_MAIN_GUARD = _normalised(ast.parse("__name__ == '__main__'", mode="eval").body)


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = node.body[1:]
    return tree


def _cnnbook_bindings(stmt: ast.Import | ast.ImportFrom, modules: frozenset[str]) -> list[tuple[str, tuple]]:
    """(bound name, target) for each cnnbook thing an import binds ("*" for a star import); [] for other packages."""
    if isinstance(stmt, ast.Import):
        bound = []
        for alias in stmt.names:
            parts = alias.name.split(".")
            if parts[0] == "cnnbook" and alias.asname is None:  # import cnnbook.data binds cnnbook
                bound.append(("cnnbook", ("__init__", None)))
            elif parts[0] == "cnnbook" and (len(parts) == 1 or parts[1] in modules):
                bound.append((alias.asname, (parts[1] if len(parts) > 1 else "__init__", None)))
        return bound
    if stmt.level == 1:
        base = stmt.module or ""
    elif stmt.level == 0 and stmt.module and stmt.module.split(".")[0] == "cnnbook":
        base = stmt.module[len("cnnbook") :].lstrip(".")
    else:
        return []
    bound = []
    for alias in stmt.names:
        if alias.name == "*":
            bound.append(("*", (base or "__init__", None)))
        elif not base and alias.name in modules:  # from cnnbook import data
            bound.append((alias.asname or alias.name, (alias.name, None)))
        else:
            bound.append((alias.asname or alias.name, (base or "__init__", alias.name)))
    return bound


def _bindings(tree: ast.AST, modules: frozenset[str]) -> dict[str, set[tuple]]:
    """Every cnnbook name an import anywhere in ``tree`` binds (function bodies included)."""
    bindings: dict[str, set[tuple]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, target in _cnnbook_bindings(node, modules):
                bindings.setdefault(name, set()).add(target)
    return bindings


class _Uses(ast.NodeVisitor):
    """The targets code refers to: ``module.attr`` through a module alias, imported names, own globals."""

    def __init__(self, bindings: dict[str, set[tuple]], modules: frozenset[str], module: str = "", own=()):
        self.bindings, self.modules, self.module, self.own = bindings, modules, module, set(own)
        self.found: set[tuple] = set()

    def _modules(self, node: ast.expr) -> set[str]:
        """The cnnbook modules an expression names (``data``, ``cnnbook.data``)."""
        if isinstance(node, ast.Name):
            return {m for m, name in self.bindings.get(node.id, ()) if name is None}
        if isinstance(node, ast.Attribute) and node.attr in self.modules and "__init__" in self._modules(node.value):
            return {node.attr}
        return set()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owners = self._modules(node.value)
        if not owners:
            self.generic_visit(node)
        elif node.attr in self.modules and "__init__" in owners:  # cnnbook.data used as a value
            self.found.add((node.attr, None))
        else:
            self.found |= {(m, node.attr) for m in owners}

    def visit_Name(self, node: ast.Name) -> None:
        self.found |= self.bindings.get(node.id, set())  # a module alias used bare: the whole module
        if node.id in self.own:
            self.found.add((self.module, node.id))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found |= {target for name, target in _cnnbook_bindings(node, self.modules) if name == "*"}


class _Canonical(ast.NodeTransformer):
    """A definition's references to cnnbook definitions, written as ``cnnbook:name``.

    ``hardware.cpu_info()`` in one module, ``cpu_info()`` in the module that
    defines it and ``info()`` after ``from .hardware import cpu_info as info``
    all become ``cnnbook:cpu_info()``: where a definition lives, and how it is
    imported, do not change its text, so moving it is free (hash scheme 2).
    """

    def __init__(self, uses: _Uses):
        self.uses = uses

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        owners = self.uses._modules(node.value)
        if owners and not (node.attr in self.uses.modules and "__init__" in owners):
            return ast.copy_location(ast.Name(id=f"cnnbook:{node.attr}", ctx=node.ctx), node)
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        names = {name for _, name in self.uses.bindings.get(node.id, ()) if name is not None}
        if node.id in self.uses.own:
            names.add(node.id)
        if len(names) == 1:
            return ast.copy_location(ast.Name(id=f"cnnbook:{names.pop()}", ctx=node.ctx), node)
        return node


class _Module(NamedTuple):
    definitions: dict[str, list[tuple[str, frozenset]]]  # name -> [(normalised text, targets it uses)]
    exports: dict[str, set[tuple]]  # name -> the cnnbook targets a top-level import binds it to
    prelude: list[tuple[str, frozenset]]  # other top-level statements: they run at import
    loads: set[str]  # the cnnbook modules its top-level imports load


def _defined_names(stmt: ast.stmt) -> list[str]:
    """The names a top-level function, class or plain assignment defines ([] for anything else)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        nodes = [n for t in targets for n in ast.walk(t) if not isinstance(n, ast.expr_context)]
        if all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Starred)) for n in nodes):
            return [n.id for n in nodes if isinstance(n, ast.Name)]
    return []


@functools.lru_cache(maxsize=256)
def _parse_module(module: str, text: str, modules: frozenset[str], scheme: int = HASH_SCHEME) -> _Module:
    tree = _without_docstrings(ast.parse(text))
    definitions: dict[str, list[ast.stmt]] = {}
    exports: dict[str, set[tuple]] = {}
    prelude: list[ast.stmt] = []
    loads: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and _normalised(stmt.test) == _MAIN_GUARD:
            continue  # does not run when imported
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and getattr(stmt, "module", None) != "__future__":
            for alias in stmt.names:  # one definition per bound name
                if isinstance(stmt, ast.Import):
                    one: ast.Import | ast.ImportFrom = ast.Import([alias])
                else:
                    one = ast.ImportFrom(stmt.module, [alias], stmt.level)
                bound = _cnnbook_bindings(one, modules)
                loads |= {target[0] for _, target in bound}
                for name, target in bound:
                    exports.setdefault(name, set()).add(target)
                if any(name == "*" for name, _ in bound):
                    prelude.append(one)
                elif not bound:  # another package: import numpy as np defines np
                    definitions.setdefault(alias.asname or alias.name.split(".")[0], []).append(one)
        elif _defined_names(stmt):
            for name in _defined_names(stmt):
                definitions.setdefault(name, []).append(stmt)
        else:
            prelude.append(stmt)
    bindings = _bindings(tree, modules)

    def described(stmt: ast.stmt) -> tuple[str, frozenset]:
        uses = _Uses(bindings, modules, module, definitions)
        uses.visit(stmt)
        if scheme >= 2:
            stmt = _Canonical(uses).visit(copy.deepcopy(stmt))
        return _normalised(stmt), frozenset(uses.found)

    return _Module(
        {name: [described(s) for s in stmts] for name, stmts in definitions.items()},
        exports,
        [described(s) for s in prelude],
        loads,
    )


def _cell_trees(sources: Iterable[str]) -> list[ast.Module | str]:
    """Each cell parsed, once IPython's syntax (``%pip``, ``!cmd``) became Python; its text if it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()
    trees: list[ast.Module | str] = []
    for src in sources:
        try:
            trees.append(ast.parse(transformer.transform_cell(src)))
        except (SyntaxError, ValueError):
            trees.append(src)
    return trees


def _reach(
    trees: list[ast.Module | str], scheme: int = HASH_SCHEME
) -> tuple[dict[tuple, list[str]], dict[str, list[str]]]:
    """({(module, name): normalised definitions}, {module: normalised prelude}) that the cells can reach."""
    files = {p.stem: p for p in PACKAGE_DIR.glob("*.py")}
    modules = frozenset(files)
    parsed: dict[str, _Module] = {}

    def info(module: str) -> _Module:
        if module not in parsed:
            parsed[module] = _parse_module(module, files[module].read_text(encoding="utf-8"), modules, scheme)
        return parsed[module]

    cells = [tree for tree in trees if not isinstance(tree, str)]
    bindings: dict[str, set[tuple]] = {}  # the chapter's namespace: imports in any cell
    for tree in cells:
        for name, targets in _bindings(tree, modules).items():
            bindings.setdefault(name, set()).update(targets)
    uses = _Uses(bindings, modules)
    for tree in cells:
        uses.visit(tree)
    # An imported name is reached; a module alias only through what the cells take from it.
    todo = list(uses.found) + [t for targets in bindings.values() for t in targets if t[1] is not None]
    reached: dict[tuple, list[str]] = {}
    preludes: dict[str, list[str]] = {}

    def load(module: str) -> None:  # importing a module runs its prelude (and the package's)
        if module in files and module not in preludes:
            preludes[module] = [text for text, _ in info(module).prelude]
            todo.extend(t for _, used in info(module).prelude for t in used)
            for other in sorted(info(module).loads | {"__init__"}):
                load(other)

    for targets in bindings.values():
        for module, _ in targets:
            load(module)
    while todo:
        module, name = todo.pop()
        if module not in files or (module, name) in reached:
            continue
        load(module)
        mod = info(module)
        if name is None:  # the whole module
            reached[(module, name)] = []
            todo.extend((module, n) for n in [*mod.definitions, *mod.exports] if n != "*")
            continue
        reached[(module, name)] = [text for text, _ in mod.definitions.get(name, [])]
        todo.extend(t for _, used in mod.definitions.get(name, []) for t in used)
        todo.extend(mod.exports.get(name, ()))
    return {k: v for k, v in reached.items() if v}, preludes


def reached_definitions(sources: Iterable[str]) -> list[str]:
    """The :mod:`cnnbook` definitions code can reach, as sorted ``module.name`` strings.

    These (with the code itself) are what :func:`source_hash` covers: a chapter
    is stale when one of them changed other than in docstrings, comments or layout.

    Parameters
    ----------
    sources : iterable of str
        Code cells (IPython syntax such as ``%pip`` allowed), e.g. :func:`code_cells`.

    Returns
    -------
    list of str
        Sorted ``module.name`` of each reached definition.
    """
    return sorted(f"{module}.{name}" for module, name in _reach(_cell_trees(sources))[0])


def source_hash(nb: Any, *, scheme: int = HASH_SCHEME) -> str:
    """sha256 over the chapter's code cells and the cnnbook definitions they can reach.

    Both are compared as syntax trees without docstrings, so comments, docstrings
    and formatting do not count; nor does a change to code the chapter cannot reach.
    Since scheme 2 a definition counts by its name and its code, not by the module
    it lives in, and its references to other cnnbook definitions count by name
    (:class:`_Canonical`): moving an unchanged definition to another module
    (and importing it back) stales nothing.

    Parameters
    ----------
    nb : nbformat.NotebookNode, dict, str or path-like
        The chapter or its path (its outputs and injected parameters do not count).
    scheme : int
        1 for the hash stored before scheme 2 (definitions keyed by module, as
        written), used only by :func:`migrate_hash` to check that a chapter was
        fresh; the default is the current :data:`HASH_SCHEME`.

    Returns
    -------
    str
        Hex digest, as recorded in ``metadata.cnnbook.source_hash`` by :func:`execute`.
    """
    if scheme not in (1, 2):
        raise ValueError(f"scheme must be 1 or 2, got {scheme!r}.")
    trees = _cell_trees(code_cells(nb))
    definitions, preludes = _reach(trees, scheme)
    h = hashlib.sha256()
    for tree in trees:
        h.update((f"raw cell\0{tree}" if isinstance(tree, str) else f"cell\0{_normalised(tree)}").encode() + b"\0")
    if scheme == 1:
        for (module, name), texts in sorted(definitions.items()):
            for text in texts:
                h.update(f"definition\0{module}.{name}\0{text}\0".encode())
        for module, texts in sorted(preludes.items()):
            for text in texts:
                h.update(f"prelude\0{module}\0{text}\0".encode())
        return h.hexdigest()
    h.update(b"scheme 2\0")
    named = {(name, text) for (_, name), texts in definitions.items() for text in texts}
    for name, text in sorted(named):
        h.update(f"definition\0{name}\0{text}\0".encode())
    for text in sorted({text for texts in preludes.values() for text in texts}):
        h.update(f"prelude\0{text}\0".encode())
    return h.hexdigest()


def migrate_hash(path: str | os.PathLike[str]) -> bool:
    """Re-stamp a stored chapter's provenance in the current hash scheme, without running it.

    Only the scheme may differ: the stored hash must equal the chapter's hash
    in the scheme it was written with (its code did not change since its
    run), otherwise the chapter is stale and must be executed instead.

    Parameters
    ----------
    path : str or path-like
        The stored chapter; rewritten in place when migrated.

    Returns
    -------
    bool
        True if it was migrated, False if it already used the current scheme.

    Raises
    ------
    ValueError
        When the chapter is stale in its own scheme (its outputs are not the
        code's): execute it instead (``python -m cnnbook.book execute``).
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("cnnbook", {})
    old_scheme = meta.get("hash_scheme", 1)
    if old_scheme == HASH_SCHEME:
        return False
    stored = meta.get("source_hash")
    if stored is None or stored != source_hash(nb, scheme=old_scheme):
        raise ValueError(
            f"{path} is stale under hash scheme {old_scheme}: its stored outputs are not "
            f"its code's, so only a run can give it a hash (python -m cnnbook.book execute {path})."
        )
    new = source_hash(nb)
    for run in meta.get("runs_in", {}).values():  # separate timings of the same code
        if run.get("source_hash") == stored:
            run["source_hash"] = new
    meta["source_hash"], meta["hash_scheme"] = new, HASH_SCHEME
    nbformat.write(nb, str(path))
    return True


def is_stale(path: str | os.PathLike[str]) -> bool:
    """True when the stored outputs were not produced by the current code (or never were).

    Parameters
    ----------
    path : str or path-like
        The stored chapter (a notebook dict is accepted too).

    Returns
    -------
    bool
        Whether the recorded ``source_hash`` differs from :func:`source_hash` now,
        computed in the scheme it was recorded with (``metadata.cnnbook.hash_scheme``,
        1 when absent), or is missing.
    """
    nb = _as_dict(path)
    meta = nb.get("metadata", {}).get("cnnbook", {})
    stored = meta.get("source_hash")
    return stored != source_hash(nb, scheme=meta.get("hash_scheme", 1))


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
    info = hardware.cpu_info()
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


# --- Execution -------------------------------------------------------------------


@contextlib.contextmanager
def _expected_errors_allowed() -> Iterator[None]:
    """Let cells tagged ``raises-exception`` show their error without failing the run.

    nbclient already goes on past such a cell, but papermill then scans the
    outputs and raises on *any* error; during the ``with`` block its check
    skips the tagged cells (an error anywhere else still fails the run).
    """
    import copy

    import papermill.execute as pm_execute

    original = pm_execute.raise_for_execution_errors

    def check(nb: Any, output_path: Any) -> None:
        view = copy.copy(nb)
        view.cells = [
            copy.copy(c) if "raises-exception" in c.get("metadata", {}).get("tags", []) else c for c in nb.cells
        ]
        for cell in view.cells:
            if "raises-exception" in cell.get("metadata", {}).get("tags", []):
                cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
        original(view, output_path)

    pm_execute.raise_for_execution_errors = check
    try:
        yield
    finally:
        pm_execute.raise_for_execution_errors = original


def execute(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    parameters: dict[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: int = 3600,
    progress: bool = False,
) -> dict:
    """Execute a chapter with papermill and record its provenance in the metadata.

    With ``output=None`` the chapter is executed in place (its stored outputs
    replaced).  The recorded ``source_hash`` excludes the injected-parameters
    cell, so a CI-parameterised copy records the same code hash; the parameters
    used are recorded beside it.

    Parameters
    ----------
    path : str or path-like
        The chapter.
    output : str or path-like, optional
        Where to write the executed chapter (default: in place).  It is replaced
        only when the run succeeds.
    parameters : dict, optional
        Values for the ``parameters`` cell (default: its own, the full run).
    kernel_name : str, optional
        Jupyter kernel (default: the notebook's).
    timeout : int
        Most seconds per cell.
    progress : bool
        Show papermill's progress bar.

    Returns
    -------
    nbformat.NotebookNode
        The executed notebook, with ``metadata.cnnbook`` holding ``source_hash``,
        ``parameters``, ``executed_seconds`` and ``executed_on``.
    """
    import nbformat
    import papermill

    # TensorFlow's C++ start-up chatter (INFO/WARNING lines on the kernel's stderr)
    # would otherwise be stored in the chapter and shown in the book.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(path)
    output = Path(output) if output is not None else path
    # papermill saves as it goes; run into a scratch file so that a failed or
    # interrupted run never replaces the stored chapter.
    running = output.with_name(f".{output.stem}.running.ipynb")
    # A previous parameterised run may have left papermill's injected cell behind;
    # drop it, so the defaults of the parameters cell (the full run) really apply.
    source = nbformat.read(str(path), as_version=4)
    source.cells = [c for c in source.cells if _INJECTED not in c.get("metadata", {}).get("tags", [])]
    clean_input = path.with_name(f".{path.stem}.input.ipynb")
    nbformat.write(source, str(clean_input))
    # The hash of the code as it is *now*, before the run: an edit of a reached definition while
    # the chapter runs then leaves it stale, instead of stamping old outputs with the new code.
    code_hash = source_hash(source)
    start = time.perf_counter()
    try:
        with _expected_errors_allowed(), _inline_figures():
            nb = papermill.execute_notebook(
                str(clean_input),
                str(running),
                parameters=parameters or {},
                kernel_name=kernel_name,
                cwd=str(path.parent),
                execution_timeout=timeout,
                progress_bar=progress,
                log_output=False,
            )
        seconds = time.perf_counter() - start
        _drop_native_log_lines(nb)
        _hide_machine_paths(nb, _machine_paths(path.resolve().parent.parent))
        nb.metadata["cnnbook"] = {
            **nb.metadata.get("cnnbook", {}),
            "source_hash": code_hash,
            "hash_scheme": HASH_SCHEME,
            "parameters": parameters or {},
            "executed_seconds": round(seconds, 1),
            "executed_on": machine_info(),
        }
        nbformat.write(nb, str(running))
        os.replace(running, output)
    finally:
        running.unlink(missing_ok=True)
        clean_input.unlink(missing_ok=True)
    return nb


def time_in(path: str | os.PathLike[str], dtype: str = "float32", *, timeout: int = 3600) -> dict[str, Any]:
    """Time a chapter's full run in ``dtype`` and record it in the stored chapter, whose outputs stay as they are.

    A chapter's stored run computes in the precision the book picks for the
    machine; a reader without bfloat16 units computes in float32.  This runs
    a copy of the chapter with ``$CNNBOOK_DTYPE=dtype`` (which every chapter
    honours) and its full-run defaults, discards the copy, and writes
    ``{"executed_seconds", "executed_on", "source_hash"}`` to the stored
    chapter's ``metadata.cnnbook.runs_in[dtype]``.  The book's table of
    chapter times shows it while ``source_hash`` is the stored run's.

    Parameters
    ----------
    path : str or path-like
        The chapter.
    dtype : str
        One of :data:`cnnbook.hardware.DTYPES`.
    timeout : int
        Most seconds per cell.

    Returns
    -------
    dict
        What was recorded.
    """
    import nbformat

    if dtype not in hardware.DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(hardware.DTYPES)}, got {dtype!r}.")
    path = Path(path)
    scratch = path.with_name(f".{path.stem}.{dtype}.ipynb")
    forced = os.environ.get("CNNBOOK_DTYPE")
    os.environ["CNNBOOK_DTYPE"] = dtype  # the kernel inherits it
    try:
        run = execute(path, output=scratch, timeout=timeout).metadata["cnnbook"]
    finally:
        scratch.unlink(missing_ok=True)
        if forced is None:
            os.environ.pop("CNNBOOK_DTYPE", None)
        else:
            os.environ["CNNBOOK_DTYPE"] = forced
    record = {key: run[key] for key in ("executed_seconds", "executed_on", "source_hash")}
    stored = nbformat.read(str(path), as_version=4)
    meta = stored.metadata.setdefault("cnnbook", {})
    meta["runs_in"] = {**meta.get("runs_in", {}), dtype: record}
    nbformat.write(stored, str(path))
    return record


# TensorFlow's C++ runtime logs through absl straight to the kernel's stderr
# ("I0000 00:00:... port.cc:153] oneDNN custom operations are on", "failed call to
# cuInit" on machines without a GPU).  They describe the machine, not the chapter.
_NATIVE_LOG = re.compile(r"^(?:[IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl::InitializeLog)")


def _drop_native_log_lines(nb: Any) -> None:
    """Remove TensorFlow's native log lines from stderr outputs (and outputs left empty)."""
    for cell in nb.get("cells", []):
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                kept = [line for line in text.splitlines(keepends=True) if not _NATIVE_LOG.match(line)]
                if not "".join(kept).strip():
                    continue
                out["text"] = "".join(kept)
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs


@contextlib.contextmanager
def _inline_figures() -> Iterator[None]:
    """Let the kernel store its figures in the chapter, whatever ``MPLBACKEND`` says here.

    A headless shell (CI, ``MPLBACKEND=Agg``) passes its backend on to the kernel, where
    Agg draws figures into memory and never shows them: the stored chapter would have none.
    """
    before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = before


def _machine_paths(repository: Path) -> list[tuple[str, str]]:
    """(path on this machine, what a reader should see instead), longest first."""
    import site
    import sysconfig

    sites = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    pairs = [(folder.rstrip(os.sep), "site-packages") for folder in sites]
    pairs += [(str(repository), "."), (sys.prefix.rstrip(os.sep), "<venv>"), (str(Path.home()), "~")]
    # The reader's own data and model folders, as the variables that name them.
    for variable in ("CNNBOOK_DATA_DIR", "CNNBOOK_MODEL_DIR"):
        if os.environ.get(variable):
            pairs.append((str(Path(os.environ[variable]).expanduser().resolve()), f"${variable}"))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _hide_machine_paths(nb: Any, pairs: list[tuple[str, str]]) -> None:
    """Replace this machine's folders in text outputs (warnings name the file they come from)."""

    def clean(text: Any) -> Any:
        if isinstance(text, list):
            return [clean(t) for t in text]
        if not isinstance(text, str):
            return text
        for here, shown in pairs:
            text = text.replace(here, shown)
        return text

    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = clean(out["text"])
            if "traceback" in out:
                out["traceback"] = clean(out["traceback"])
            if "evalue" in out:
                out["evalue"] = clean(out["evalue"])
            for mime in ("text/plain", "text/html"):
                if mime in out.get("data", {}):
                    out["data"][mime] = clean(out["data"][mime])


def prepare_ci(path: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write a copy of a chapter parameterised with its CI settings, not executed (for nbval).

    Parameters
    ----------
    path : str or path-like
        The chapter.
    output : str or path-like
        Where to write the copy (its folder is created).

    Returns
    -------
    pathlib.Path
        ``output``.
    """
    import papermill

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(path), str(output), parameters=ci_parameters(path), prepare_only=True, progress_bar=False
    )
    return output


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnbook.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute chapters in place (only stale ones unless --all)")
    ex.add_argument("notebooks", nargs="+")
    ex.add_argument("--all", action="store_true", help="execute even chapters that are up to date")
    ex.add_argument("--ci", action="store_true", help="use each chapter's CI parameters")
    ch = sub.add_parser("check", help="exit 1 if any chapter's stored outputs are stale")
    ch.add_argument("notebooks", nargs="+")
    mi = sub.add_parser("migrate", help="re-stamp fresh chapters' provenance in the current hash scheme (no run)")
    mi.add_argument("notebooks", nargs="+")
    re_ = sub.add_parser("reached", help="list the cnnbook definitions a chapter reaches (what its hash covers)")
    re_.add_argument("notebook")
    ti = sub.add_parser("time", help="time a chapter's full run in another precision; keeps its stored outputs")
    ti.add_argument("notebooks", nargs="+")
    ti.add_argument("--dtype", default="float32", choices=hardware.DTYPES)
    pc = sub.add_parser("prepare-ci", help="write CI-parameterised copies for nbval")
    pc.add_argument("source_dir")
    pc.add_argument("output_dir")
    args = parser.parse_args(argv)

    if args.command == "execute":
        for nb in args.notebooks:
            if args.all or is_stale(nb):
                print(f"executing {nb} ...", flush=True)
                done = execute(nb, parameters=ci_parameters(nb) if args.ci else None, progress=False)
                print(f"  done in {done.metadata['cnnbook']['executed_seconds']} s", flush=True)
            else:
                print(f"up to date: {nb}")
        return 0
    if args.command == "check":
        stale = [nb for nb in args.notebooks if is_stale(nb)]
        for nb in stale:
            print(f"stale: {nb} (re-run: python -m cnnbook.book execute {nb})")
        return 1 if stale else 0
    if args.command == "migrate":
        failed = 0
        for nb in args.notebooks:
            try:
                print(("migrated: " if migrate_hash(nb) else "already current: ") + str(nb))
            except ValueError as error:
                print(error)
                failed += 1
        return 1 if failed else 0
    if args.command == "time":
        for nb in args.notebooks:
            print(f"timing {nb} in {args.dtype} ...", flush=True)
            print(f"  done in {time_in(nb, args.dtype)['executed_seconds']} s", flush=True)
        return 0
    if args.command == "reached":
        print("\n".join(reached_definitions(code_cells(args.notebook))))
        return 0
    for nb in chapter_paths(args.source_dir):
        print(prepare_ci(nb, Path(args.output_dir) / nb.name))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
