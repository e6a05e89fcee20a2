"""Every page of the built book, opened in headless Chromium.

Per page and per check (one test each, ids like ``notebooks/04_building.html-phone-width``):
it loads (no local 404, no uncaught JavaScript error), no error output outside cells tagged
``raises-exception``, every image loads, every internal link and ``#fragment`` resolves, glued
values render (no raw ``{glue...}`` text, no empty or repr-looking value), the page does not
scroll sideways at phone width (390x844), and Chinese text is drawn with a CJK font rather than
as "tofu" boxes.  The checks themselves are in ``tests/browser_check.py`` (which also runs on
its own: ``.venv/bin/python tests/browser_check.py _build/html``).

Screenshots (a CI artifact): every page, full length, at desktop width (1280 px) and at phone
width (390 px), in ``_build/screenshots/<page>.desktop.png`` and ``<page>.phone.png``.

The build: the one ``tests/test_book_build.py`` made earlier in the same pytest session (found
under pytest's session temp folder), else ``$CNNBOOK_BOOK_HTML`` if set (e.g. ``_build/html``
after ``make book``), else a fresh build of a copy of the working tree, exactly as that test
makes it.  Glue warnings fail that build (``-W``); when this module builds, it checks them too.

Chromium is Debian's (``apt-get install chromium fonts-noto-cjk``), driven by Playwright's
Python package (the ``book`` extra), never a downloaded browser.  Without Chromium or
Playwright the tests SKIP, unless ``CNNBOOK_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which
makes that a failure.  The whole run is bounded (``$CNNBOOK_BROWSER_BUDGET_S``, 600 s: a bound on the CI run, not a speed target): pages
not reached in time fail.  Select with ``pytest -m browser``; ``-m "not book"`` leaves it out too.

Known content failures are ``xfail(strict=True)`` in :data:`KNOWN` (page, check): fix the
content and the test XPASSes, which fails until the entry is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import browser_check

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "_build", "__pycache__", ".pytest_cache", "*.egg-info", ".ipynb_checkpoints", "models"
)
REQUIRE = os.environ.get("CNNBOOK_REQUIRE_BROWSER", "") not in ("", "0")
BUDGET_S = float(os.environ.get("CNNBOOK_BROWSER_BUDGET_S", "600"))

pytestmark = [pytest.mark.browser, pytest.mark.book]

# Failures of the current content, (page, check) -> why.  Remove an entry when its page is fixed.
KNOWN: dict[tuple[str, str], str] = {}


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    files = [re.sub(r"\.(md|ipynb)$", "", f) for f in files]
    return [f"{f}.html" for f in files] + ["index.html", "genindex.html", "search.html"]


PAGES = _toc_pages()


# ---------------------------------------------------------------- fixtures
def _need_browser() -> str:
    """Chromium's path, or skip (fail under CNNBOOK_REQUIRE_BROWSER=1) saying what is missing."""
    missing = []
    chromium = browser_check.chromium_path()
    if not chromium:
        missing.append("Chromium (apt-get install chromium fonts-noto-cjk)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright's Python package (pip install -e '.[book]'; no `playwright install`)")
    if missing:
        reason = "no browser to check the book in: " + " and ".join(missing) + " not installed"
        if REQUIRE:
            pytest.fail(reason + " (CNNBOOK_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return chromium


def _build(tmp_path_factory) -> tuple[Path, str]:
    copy = tmp_path_factory.mktemp("book") / "cnnbook"
    shutil.copytree(ROOT, copy, ignore=IGNORE, symlinks=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book"]
    proc = subprocess.run([*command, "build", str(copy), "-W", "--keep-going"],
                          capture_output=True, text=True, timeout=600, cwd=copy)
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    html = copy / "_build" / "html"
    if not (html / "index.html").is_file():
        pytest.fail(f"jupyter-book build made no HTML:\n{log[-5000:]}")
    return html, log


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str | None]:
    """(the built HTML, its build log or None when the build is not this module's)."""
    made = sorted(tmp_path_factory.getbasetemp().glob("book*/cnnbook/_build/html/index.html"),
                  key=lambda p: p.stat().st_mtime)
    if made:  # tests/test_book_build.py built it in this session
        return made[-1].parent, None
    if os.environ.get("CNNBOOK_BOOK_HTML"):
        html = Path(os.environ["CNNBOOK_BOOK_HTML"]).resolve()
        if not (html / "index.html").is_file():
            pytest.fail(f"CNNBOOK_BOOK_HTML={html} holds no index.html")
        return html, None
    return _build(tmp_path_factory)


@pytest.fixture(scope="module")
def results(request) -> dict:
    chromium = _need_browser()  # before building: no browser, no build
    html, _ = request.getfixturevalue("site")
    return browser_check.check_site(html, SCREENSHOTS, chromium=chromium, budget_s=BUDGET_S,
                                    pages=[p for p in PAGES if (html / p).is_file()])


# ---------------------------------------------------------------- tests
def _cases():
    for page in PAGES:
        for check in browser_check.CHECKS:
            reason = KNOWN.get((page, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(page, check, id=f"{page}-{check}", marks=marks)


@pytest.mark.parametrize(("page", "check"), list(_cases()))
def test_page(results, site, page, check):
    html, log = site
    assert (html / page).is_file(), f"{page} was not built"
    problems = list(results[page][check])
    if check == "glue" and log is not None:
        source = re.escape(re.sub(r"\.html$", "", page))
        problems += [line for line in log.splitlines()
                     if "WARNING" in line and "glue" in line.lower() and re.search(source + r"\.(md|ipynb)", line)]
    assert not problems, f"{page} [{check}]:\n  " + "\n  ".join(problems)


def test_every_built_page_is_checked(results, site):
    html, _ = site
    built = set(browser_check.pages_of(html))
    assert built <= set(PAGES), f"built but not checked: {sorted(built - set(PAGES))}"


def test_screenshots_are_kept(results):
    for page in PAGES:
        if page in results and page not in results["_meta"]["redirects"]:
            for width in ("desktop", "phone"):
                shot = SCREENSHOTS / browser_check.screenshot_name(page, width)
                assert shot.is_file() and shot.stat().st_size > 1000, shot


def test_the_run_is_bounded(results):
    seconds = results["_meta"]["total_seconds"]
    slow = sorted(results["_meta"]["seconds"].items(), key=lambda kv: -kv[1])[:3]
    assert seconds < BUDGET_S, f"{seconds} s for {len(PAGES)} pages; slowest: {slow}"


ZH_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>zh</title></head>
<body><p>卷积神经网络识别手写数字</p><pre><code># 加载数据集</code></pre></body></html>"""
NO_CJK_FONTS = """<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>
<include ignore_missing="yes">/etc/fonts/fonts.conf</include>
<selectfont><rejectfont><pattern><patelt name="lang"><string>zh-cn</string></patelt></pattern></rejectfont></selectfont>
</fontconfig>"""


def test_a_cjk_font_is_installed_and_the_tofu_check_sees_its_absence(tmp_path):
    """The ``cjk`` check on a two-line Chinese page: it passes with the fonts Chromium has
    (fails when fonts-noto-cjk is missing), and fails when fontconfig is told to hide every
    font that covers Chinese -- so it is not vacuous on a machine that has them."""
    chromium = _need_browser()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "zh.html").write_text(ZH_PAGE, encoding="utf-8")
    (tmp_path / "fonts.conf").write_text(NO_CJK_FONTS, encoding="utf-8")
    with_fonts = browser_check.check_site(tmp_path / "site", chromium=chromium, pages=["zh.html"])
    assert with_fonts["zh.html"]["cjk"] == [], with_fonts["zh.html"]["cjk"]
    assert with_fonts["_meta"]["cjk_pages"]["zh.html"], "the Chinese text was not found"
    without = browser_check.check_site(tmp_path / "site", chromium=chromium, pages=["zh.html"],
                                       env={"FONTCONFIG_FILE": str(tmp_path / "fonts.conf")})
    assert without["zh.html"]["cjk"], "with no CJK font the check still passed"


BAD_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>bad</title></head><body><main>
<p id="here">Value: {glue:text}`acc` and <span class="pasted-text">'0.98'</span></p>
<img src="missing.png" alt="gone"><img src="ok.svg" alt="fine">
<a href="nowhere.html">a</a> <a href="ok.html#nope">b</a> <a href="ok.html#there">c</a> <a href="#here">d</a>
<div class="cell tag_raises-exception"><div class="cell_output"><div class="output traceback">expected</div></div></div>
<div class="cell"><div class="cell_output"><div class="output traceback">ValueError: boom</div></div></div>
<div style="width: 700px">wide</div><script>undefinedFunction()</script></main></body></html>"""


def test_the_checks_catch_what_they_look_for(tmp_path):
    """Each check fails on a page made to break it, and passes what it should (the tagged
    traceback, a working link and fragment, an SVG): the checks are not vacuous."""
    chromium = _need_browser()
    (tmp_path / "bad.html").write_text(BAD_PAGE, encoding="utf-8")
    (tmp_path / "ok.html").write_text('<html><body><p id="there">ok</p></body></html>', encoding="utf-8")
    (tmp_path / "ok.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                                     '<rect width="10" height="10"/></svg>', encoding="utf-8")
    found = browser_check.check_site(tmp_path, chromium=chromium, pages=["bad.html"])["bad.html"]
    text = {check: "\n".join(problems) for check, problems in found.items()}
    assert "missing.png" in text["images"] and "ok.svg" not in text["images"], text["images"]
    assert "nowhere.html does not exist" in text["links"] and "'nope'" in text["links"], text["links"]
    assert len(found["links"]) == 2, found["links"]
    assert len(found["errors"]) == 1 and "ValueError: boom" in text["errors"], text["errors"]
    assert "raw glue role" in text["glue"] and "Python repr" in text["glue"], text["glue"]
    assert "page is" in text["phone-width"] and "div" in text["phone-width"], text["phone-width"]
    assert "undefinedFunction" in text["loads"], text["loads"]
    assert found["cjk"] == []
