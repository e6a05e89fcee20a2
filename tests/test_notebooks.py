"""Every chapter executes with its CI parameters, and every number its prose quotes is glued."""

from __future__ import annotations

import re

import pytest

from conftest import CHAPTERS

pytestmark = pytest.mark.notebook

# {glue:text}`name`, {glue:text}`name:.2%`, {glue}`name`, {glue:md}`name` ...
_GLUE_REF = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")


def _markdown(nb) -> str:
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_with_ci_parameters(chapter_runner, path):
    nb, glued = chapter_runner(path.stem)
    for i, cell in enumerate(nb["cells"]):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"cell {i} raised {errors[0].get('ename')}: {errors[0].get('evalue')}"
    referenced = set(_GLUE_REF.findall(_markdown(nb)))
    missing = referenced - set(glued)
    assert not missing, f"prose quotes values the chapter never glued: {sorted(missing)}"
