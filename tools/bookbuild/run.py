"""Running chapters: papermill execution with provenance, float32 timings, CI copies.

A stored run's outputs are cleaned of what describes the machine rather than the
chapter (TensorFlow's native log lines, this machine's folders).  papermill and
nbformat are imported only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from cnnbook import hardware

from .chapters import _INJECTED, ci_parameters
from .staleness import HASH_SCHEME, source_hash

__all__ = ["execute", "prepare_ci", "time_in"]


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
            "executed_on": hardware.machine_info(),
            # The kernels the chapter's kernel process ran: oneDNN on or off, what decided it, the CPU's extensions.
            "kernels": hardware.expected_onednn_state(),
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
