"""The book builds with Jupyter Book, warnings treated as errors.

The working tree is copied to a temporary folder and built there, so the test
never touches the repository's own ``_build/`` and sees exactly the files that
``make book`` would build (committed or not).  Chapters are not executed: the
build renders their stored outputs (``execute_notebooks: "off"``).

Select or skip it with the ``book`` marker: ``pytest -m book`` / ``-m "not book"``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "_build", "__pycache__", ".pytest_cache", "*.egg-info", ".ipynb_checkpoints", "models"
)

pytestmark = pytest.mark.book


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def _text(page: Path) -> str:
    """The visible text of a built page's article."""
    source = page.read_text(encoding="utf-8")
    article = source[source.find("<article") : source.find("</article>")]
    article = re.sub(r"<script.*?</script>", " ", article, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", article)))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    missing = [f for f in _toc_files() if not any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb"))]
    if missing:
        pytest.fail(f"_toc.yml names pages that do not exist: {', '.join(missing)}")
    copy = tmp_path_factory.mktemp("book") / "cnnbook"
    shutil.copytree(ROOT, copy, ignore=IGNORE, symlinks=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book"]
    proc = subprocess.run(
        [*command, "build", str(copy), "-W", "--keep-going"],
        capture_output=True, text=True, timeout=600, cwd=copy,
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    problems = "\n".join(line for line in log.splitlines() if "WARNING" in line or "ERROR" in line)
    assert proc.returncode == 0, f"jupyter-book build failed:\n{problems or log[-5000:]}"
    return copy / "_build" / "html"


def test_every_page_of_the_table_of_contents_is_built(built):
    assert (built / "index.html").is_file()
    for name in _toc_files():
        assert (built / f"{name}.html").is_file(), name


def test_intro_has_the_generated_chapter_times(built):
    text = _text(built / "book" / "intro.html")
    assert "Chapter Full run Precision Full run in float32 Measured on" in text
    # One row per chapter, each linking to the chapter (no typed numbers to check: they come from metadata).
    chapters = [f for f in _toc_files() if f.startswith("notebooks/")]
    page = (built / "book" / "intro.html").read_text(encoding="utf-8")
    table = page[page.find('class="chapter-times'):]
    table = table[: table.find("</table>")]
    for chapter in chapters:
        assert f'href="../{chapter}.html"' in table, chapter
    # Each row names the precision of its stored run, and a float32 run is its own float32 time.
    rows = table.split("<tr")[2:]
    assert len(rows) >= len(chapters)
    for row in rows[: len(chapters)]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        precision, float32_time = (re.sub(r"<[^>]+>", "", c).strip() for c in cells[2:4])
        assert precision in ("float32", "bfloat16 (mixed)"), row
        if precision == "float32":  # the stored run is its own float32 time
            assert float32_time == re.sub(r"<[^>]+>", "", cells[1]).strip(), row
        else:  # a separate float32 run of the same code (`PYTHONPATH=tools python -m bookbuild time`), or none
            assert "a separate float32 run on" in float32_time or float32_time == "not measured yet", row
    # "AMD EPYC" alone hides a Zen 4 / Zen 5 difference of about 2×: the table names family and model.
    for chapter in chapters:
        row = next(r for r in rows if f'href="../{chapter}.html"' in r)
        machine = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))["metadata"]["cnnbook"]["executed_on"]
        if machine.get("cpu_family"):
            assert f"(CPU family {machine['cpu_family']}, model {machine['cpu_model_number']})" in row, chapter
        # ... and the kernels it ran with, where the run recorded them (bookbuild.run.execute).
        kernels = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))["metadata"]["cnnbook"].get("kernels")
        if kernels:
            assert f"oneDNN {'on' if kernels['enabled'] else 'off'}" in row, chapter
        else:
            assert "kernels not recorded" in row, chapter


def test_references_and_glossary(built):
    references = _text(built / "book" / "references.html").lower()  # the style changes titles' case
    for needle in ("gradient-based learning", "tiny images", "fashion-mnist", "adam", "batch normalization",
                   "super-convergence", "on calibration", "simple mnist convnet", "convolutional neural network"):
        assert needle in references, needle
    glossary = (built / "book" / "glossary.html").read_text(encoding="utf-8")
    for term in ("term-Convolution", "term-Pooling", "term-Validation-set", "term-Logits"):
        assert f'id="{term}"' in glossary, term


def test_launch_buttons_point_at_the_repository(built):
    page = next(iter(sorted((built / "notebooks").glob("*.html"))))
    source = page.read_text(encoding="utf-8")
    assert "colab.research.google.com/github/cnnbook/cnnbook/blob/main/notebooks/" in source
    assert "mybinder.org/v2/gh/cnnbook/cnnbook/main" in source
