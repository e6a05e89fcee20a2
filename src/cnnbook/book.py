"""Running the book's chapters: glue, provenance hashes, execution, staleness.

A chapter is *stale* when its code cells or the :mod:`cnnbook` modules it
uses changed after its stored outputs were produced.  Executing a chapter
through :func:`execute` writes ``metadata.cnnbook.source_hash`` into it; the
tests recompute the hash and fail on a mismatch.

Command line (what ``make book`` and ``make test`` call)::

    python -m cnnbook.book execute [--all] notebooks/*.ipynb   # run stale chapters in place
    python -m cnnbook.book check notebooks/*.ipynb             # exit 1 if any is stale
    python -m cnnbook.book prepare-ci notebooks OUTDIR         # CI-parameterised copies for nbval

This module imports papermill and nbformat only inside the functions that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import ast
import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = [
    "GLUE_PREFIX",
    "ci_parameters",
    "code_cells",
    "execute",
    "glue",
    "is_stale",
    "machine_info",
    "module_dependencies",
    "read_glued",
    "source_hash",
]

PACKAGE_DIR = Path(__file__).resolve().parent
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
    written without importing myst-nb, so chapters also run on Colab.  Returns
    the value, converted to plain Python.
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
    """Sources of the code cells, without papermill's injected-parameters cell."""
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


# The names after "import": a parenthesised list (may span lines) or the rest of one line.
_NAMES = r"(\([\w\s,]+\)|[\w \t,]+)"
_NB_IMPORT = re.compile(r"\bcnnbook\.(\w+)|\bfrom\s+cnnbook\s+import\s+" + _NAMES)
_PKG_IMPORT = re.compile(
    r"^\s*from\s+\.(\w*)\s+import\s+" + _NAMES + r"|\bcnnbook\.(\w+)|^\s*from\s+cnnbook\s+import\s+" + _NAMES,
    re.M,
)


def _modules_named(names: str) -> set[str]:
    # First word of each item, so "data as d" counts as data.
    names = names.strip("()").replace("\n", ",")
    return {n.split()[0] for n in names.split(",") if n.strip()}


def module_dependencies(sources: Iterable[str]) -> list[str]:
    """The :mod:`cnnbook` modules that code uses, directly or through other cnnbook modules."""
    available = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    todo: set[str] = {"__init__"}
    for src in sources:
        for attr, names in _NB_IMPORT.findall(src):
            todo |= {attr} if attr else _modules_named(names)
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen or mod not in available:
            continue
        seen.add(mod)
        text = (PACKAGE_DIR / f"{mod}.py").read_text(encoding="utf-8")
        for rel_mod, rel_names, attr, abs_names in _PKG_IMPORT.findall(text):
            if rel_mod:
                todo.add(rel_mod)
            elif rel_names:
                todo |= _modules_named(rel_names)
            elif attr:
                todo.add(attr)
            elif abs_names:
                todo |= _modules_named(abs_names)
    return sorted(seen)


def source_hash(nb: Any) -> str:
    """sha256 over the chapter's code cells and the source of every cnnbook module it uses."""
    sources = code_cells(nb)
    h = hashlib.sha256()
    for src in sources:
        h.update(b"cell\0" + src.encode("utf-8"))
    for mod in module_dependencies(sources):
        h.update(f"module\0{mod}\0".encode() + (PACKAGE_DIR / f"{mod}.py").read_bytes())
    return h.hexdigest()


def is_stale(path: str | os.PathLike[str]) -> bool:
    """True when the stored outputs were not produced by the current code (or never were)."""
    nb = _as_dict(path)
    stored = nb.get("metadata", {}).get("cnnbook", {}).get("source_hash")
    return stored != source_hash(nb)


def ci_parameters(nb: Any) -> dict[str, Any]:
    """The small settings CI runs a chapter with (``metadata.cnnbook.ci_parameters``)."""
    return dict(_as_dict(nb).get("metadata", {}).get("cnnbook", {}).get("ci_parameters", {}))


def machine_info() -> dict[str, Any]:
    """CPU model and core count, for recording where timings were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), "system": platform.system()}


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
    start = time.perf_counter()
    try:
        with _expected_errors_allowed():
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
        nb.metadata["cnnbook"] = {
            **nb.metadata.get("cnnbook", {}),
            "source_hash": source_hash(nb),
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


def prepare_ci(path: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write a copy of a chapter parameterised with its CI settings, not executed (for nbval)."""
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
    for nb in sorted(Path(args.source_dir).glob("[0-9][0-9]_*.ipynb")):
        print(prepare_ci(nb, Path(args.output_dir) / nb.name))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
