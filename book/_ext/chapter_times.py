"""Sphinx extension: the ``chapter-times`` directive.

Renders a table of how long each chapter's stored run took and in which
precision, read from the notebooks' metadata (``metadata.cnnbook.executed_seconds``
and ``executed_on``, written by ``python -m bookbuild execute``) and from the
value a chapter glues as ``precision``.  The book never changes Keras' global
dtype policy, so a chapter that glues no ``precision`` computed in float32.  A
run made in float32 is also the float32 time a reader without bfloat16 units can
expect; for a run made in bfloat16 the float32 column shows the separate float32
run that ``python -m bookbuild time`` records (``metadata.cnnbook.runs_in``),
or says it was not measured.  No number in
the table is typed by hand, and the page is rebuilt when a chapter changes.

Usage in a MyST page::

    ```{chapter-times}
    ```

Registered in ``_config.yml`` under ``sphinx.local_extensions``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from cnnbook.book import cpu_description, read_glued


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


_PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16 (mixed)"}


def _machine(info: dict[str, Any], kernels: dict[str, Any] | None = None) -> str:
    cpu = cpu_description(info).replace("|", "/")
    cores = info.get("cores")
    text = f"{cpu}, {cores} cores" if cores else cpu
    if kernels:  # recorded since the book named its kernels (bookbuild.run.execute)
        extensions = kernels.get("vector_extensions") or []
        widest = "AVX-512" if "avx512f" in extensions else "AVX2" if "avx2" in extensions else "no AVX2"
        text += f"; {widest}, oneDNN {'on' if kernels.get('enabled') else 'off'}"
    else:
        text += "; kernels not recorded"
    return text


def _float32_run(meta: dict[str, Any]) -> str:
    """The separate float32 timing of a chapter stored in another precision (``bookbuild.run.time_in``)."""
    run = meta.get("runs_in", {}).get("float32")
    if not run or run.get("source_hash") != meta.get("source_hash"):
        return "not measured yet"  # never timed, or timed with other code than the stored run's
    return f"{_duration(run['executed_seconds'])} (a separate float32 run on {_machine(run.get('executed_on', {}))})"


class ChapterTimes(SphinxDirective):
    """A Markdown table: chapter, time of its stored run, where it ran."""

    has_content = False
    option_spec = {"prefix": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        prefix = self.options.get("prefix", "notebooks/")
        rows, total, complete = [], 0.0, True
        for docname in sorted(d for d in self.env.found_docs if d.startswith(prefix)):
            path = Path(self.env.doc2path(docname))
            if path.suffix != ".ipynb":
                continue
            self.env.note_dependency(str(path))
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("cnnbook", {})
            seconds = meta.get("executed_seconds")
            link = f"{{doc}}`/{docname}`"
            if seconds is None:
                complete = False
                rows.append(f"| {link} | not executed yet | | | |")
                continue
            when = _duration(seconds)
            if meta.get("parameters"):
                complete = False
                when += " (reduced CI settings, not the full run)"
            else:
                total += seconds
            info = meta.get("executed_on", {})
            precision = read_glued(path).get("precision", "float32")
            float32 = when if precision == "float32" else _float32_run(meta)
            rows.append(
                f"| {link} | {when} | {_PRECISIONS.get(precision, 'not recorded')} | {float32} "
                f"| {_machine(info, meta.get('kernels'))} |"
            )
        if not rows:
            return [nodes.paragraph(text="No chapter has been executed yet.")]
        lines = [
            "| Chapter | Full run | Precision | Full run in float32 | Measured on |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
        if complete:
            lines.append(f"| **All chapters** | **{_duration(total)}** | | | |")
        container = nodes.container(classes=["chapter-times"])
        self.state.nested_parse(StringList(lines, source="chapter-times"), self.content_offset, container)
        return [container]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("chapter-times", ChapterTimes)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
