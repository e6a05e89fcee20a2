"""Provenance hashes: what a chapter reaches in cnnbook, and whether it is stale.

A chapter is *stale* when something that can change its outputs changed after
they were stored: its code cells, or a :mod:`cnnbook` definition the chapter can
reach (what its cells take from cnnbook, and transitively every function, class,
constant and import those use, plus the top-level statements of each module
imported).  Docstrings, comments and formatting do not count, nor does code the
chapter cannot reach.  :func:`bookbuild.run.execute` writes
``metadata.cnnbook.source_hash`` into a chapter; the tests recompute the hash
and fail on a mismatch; :func:`reached_definitions`
(``python -m bookbuild reached NB``) lists what a chapter reaches.

The analysis reads the sources of the installed package (:data:`PACKAGE_DIR`).
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import cnnbook
from cnnbook.book import _as_dict

from .chapters import code_cells

__all__ = [
    "HASH_SCHEME",
    "PACKAGE_DIR",
    "is_stale",
    "migrate_hash",
    "reached_definitions",
    "source_hash",
]

#: The sources the reach analysis reads: the installed package (tests point it
#: at a copy).
PACKAGE_DIR = Path(cnnbook.__file__).resolve().parent
# 2: definitions count by name and code, not by the module they live in (moves are free).
HASH_SCHEME = 2


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
        code's): execute it instead (``python -m bookbuild execute``).
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
            f"its code's, so only a run can give it a hash (python -m bookbuild execute {path})."
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
