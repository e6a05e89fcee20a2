"""Every chapter is stored with the outputs of a full run made by the current code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbook import book
import bookbuild

CHAPTERS = bookbuild.chapter_paths(Path(__file__).resolve().parents[1] / "notebooks")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_stored_outputs_are_current(path):
    assert not bookbuild.is_stale(path), (
        f"{path.name}: its code or the cnnbook modules it uses changed since its outputs were stored. "
        f"Re-run it: PYTHONPATH=tools python -m bookbuild execute {path}"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_stored_run_is_the_full_run(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    meta = nb["metadata"]["cnnbook"]
    assert meta.get("parameters") == {}, "stored outputs must come from the default (full-run) parameters"
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert book.read_glued(nb), "a chapter glues the numbers its prose quotes"
    tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged 'parameters'"
    assert bookbuild.ci_parameters(nb), "CI parameters are stored in metadata.cnnbook.ci_parameters"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_stored_provenance_uses_the_current_hash_scheme(path):
    meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]["cnnbook"]
    assert meta.get("hash_scheme", 1) == bookbuild.HASH_SCHEME, (
        f"{path.name}: provenance in hash scheme {meta.get('hash_scheme', 1)}; "
        f"re-stamp it without a run: PYTHONPATH=tools python -m bookbuild migrate {path}"
    )
