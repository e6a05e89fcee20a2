"""Open every page of a built book in headless Chromium and check what a reader sees.

Used by ``tests/test_browser.py``; also runs on its own against any build::

    .venv/bin/python tests/browser_check.py _build/html [--screenshots _build/screenshots]

Chromium is Debian's (``apt-get install chromium fonts-noto-cjk``), driven by
Playwright's Python package with ``executable_path``: no browser is downloaded
(never run ``playwright install``).  The site is served on 127.0.0.1 by a
thread-running ``http.server``; every other host resolves to nothing, so the
check is offline and fast (the MathJax script from a CDN simply does not load).

Checks, per page (the names are the keys of :data:`CHECKS`):

``loads``        the page and every resource it asks of the local server load (no 4xx/5xx),
                 and no uncaught JavaScript error;
``errors``       no error output (``.output.traceback``, ``.output.error``, stderr that holds a
                 traceback or an ``...Error``) outside cells tagged ``raises-exception``, and no
                 docutils ``system-message``/``problematic`` markup;
``images``       every ``<img>`` loads (``naturalWidth > 0``; an SVG without an intrinsic size
                 counts when it decodes);
``links``        every link to this site reaches a built file and, with a ``#fragment``, an
                 element of that id (or name) on the target page;
``glue``         no raw ``{glue...}`` role text outside code blocks, no empty or repr-looking
                 glued value (``'text'``, ``<... object at 0x...>``);
``phone-width``  at 390x844 the page itself does not scroll sideways
                 (``scrollWidth <= innerWidth + 2``; wide tables and code scroll in their own boxes);
``cjk``          on pages with Chinese text, each sampled Han character renders as a glyph,
                 not as the "tofu" box: drawn on a canvas in the element's own font, its pixels
                 must differ from those of U+10FFFD, a code point no font has.

A full-page screenshot of every page at desktop width (1280) and at phone width (390)
is written to the screenshots folder (``<page>.desktop.png``, ``<page>.phone.png``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

CHECKS = ("loads", "errors", "images", "links", "glue", "phone-width", "cjk")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PHONE_TOLERANCE_PX = 2
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Offline: every host but the local server fails at once instead of timing out.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
REDIRECT = re.compile(r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]+url=([^"'>\s]+)""", re.I)

# Uncaught JavaScript errors that come from the toolchain, not the book, on every page.
KNOWN_JS_ERRORS = {
    # Sphinx 7.4 writes inline scripts that extensions add after the HTML builder starts twice
    # (sphinx-togglebutton's `var togglebuttonSelector` too, which is harmless); sphinx-thebe's
    # is a `const`, so its second copy throws.  Thebe is off in this book, so nothing breaks.
    "Identifier 'THEBE_JS_URL' has already been declared",
}


def chromium_path() -> str | None:
    """Debian's Chromium, or ``$CNNBOOK_CHROMIUM``; None when there is none."""
    candidates = [os.environ.get("CNNBOOK_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def pages_of(site: Path) -> list[str]:
    """Every built page, as a path relative to the site ('book/intro.html'), theme internals left out."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in ("_static", "_sources", "_images"))


def screenshot_name(page: str, width: str) -> str:
    return page.removesuffix(".html").replace("/", "__") + f".{width}.png"


# ---------------------------------------------------------------- local server
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


@contextlib.contextmanager
def serve(site: Path):
    """``http://127.0.0.1:<free port>/`` serving ``site`` from a daemon thread."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- anchors of a page
class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


# ---------------------------------------------------------------- in-page scripts
_ERRORS_JS = r"""() => {
  const out = [];
  const describe = el => {
    const cell = el.closest('.cell');
    const where = cell ? 'cell ' + (Array.from(document.querySelectorAll('.cell')).indexOf(cell) + 1) : 'page';
    return where + ': ' + (el.innerText || '').trim().split('\n').filter(Boolean).slice(0, 3).join(' | ').slice(0, 240);
  };
  for (const el of document.querySelectorAll('.output')) {
    if (el.closest('.tag_raises-exception')) continue;
    const cls = el.classList;
    const text = el.innerText || '';
    if (cls.contains('traceback') || cls.contains('error')) out.push('error output in ' + describe(el));
    else if (cls.contains('stderr') && /Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b/m.test(text))
      out.push('error text on stderr in ' + describe(el));
  }
  for (const el of document.querySelectorAll('.system-message, .problematic'))
    out.push('docutils ' + el.className + ' in ' + describe(el));
  return out;
}"""

_IMAGES_JS = r"""async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) img.loading = 'eager';
  const decoded = await Promise.all(imgs.map(img => Promise.race([
    img.decode().then(() => true, () => false),
    new Promise(r => setTimeout(() => r(false), 10000)),
  ])));
  return imgs.map((img, i) => ({
    src: img.getAttribute('src').slice(0, 120), complete: img.complete, width: img.naturalWidth,
    svg: /\.svg(\?|#|$)/i.test(img.getAttribute('src') || '') || img.currentSrc.startsWith('data:image/svg'),
    decoded: decoded[i],
  }));
}"""

_LINKS_JS = r"""() => Array.from(document.querySelectorAll('a[href]'))
  .map(a => [a.getAttribute('href'), a.href, (a.innerText || a.title || '').trim().slice(0, 60)])"""

_GLUE_JS = r"""() => {
  const out = [];
  const body = document.querySelector('main') || document.body;
  const clone = body.cloneNode(true);
  for (const el of clone.querySelectorAll('pre, .highlight, script, style')) el.remove();
  const text = clone.textContent;
  const raw = text.match(/\{glue(:[a-z]+)?\}[^\s]{0,40}/g);
  if (raw) out.push('raw glue role text: ' + Array.from(new Set(raw)).slice(0, 5).join(', '));
  for (const el of body.querySelectorAll('[class^="pasted"], [class*=" pasted"]')) {
    if (el.querySelector('img, svg, table, .output, pre')) continue;
    const value = (el.textContent || '').trim();  // innerText is empty inside a closed dropdown
    if (!value) out.push('empty glued value (' + el.className + ')');
    else if (/^'.*'$|^".*"$|object at 0x[0-9a-f]+/s.test(value)) out.push('glued value looks like a Python repr: ' + value.slice(0, 80));
  }
  return out;
}"""

_WIDTH_JS = r"""() => {
  const vw = window.innerWidth, sw = document.documentElement.scrollWidth;
  const culprits = [];
  if (sw > vw) {
    const clips = el => { for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX; if (o !== 'visible') return p !== document.documentElement && p !== document.body; }
      return false; };
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right <= vw + 1 || r.width === 0 || getComputedStyle(el).position === 'fixed' || clips(el)) continue;
      if (el.parentElement && el.parentElement.getBoundingClientRect().right > vw + 1 && !clips(el.parentElement)
          && el.parentElement !== document.body) continue;  // report the outermost
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        Array.from(el.classList).slice(0, 3).map(c => '.' + c).join('');
      culprits.push(name + ' (right edge ' + Math.round(r.right + window.scrollX) + 'px)');
      if (culprits.length >= 5) break;
    }
  }
  return {viewport: vw, scrollWidth: sw, culprits};
}"""

# Han characters of the page, grouped by the font of the element that shows them, each drawn
# on a canvas beside U+10FFFD (no font has it: the renderer draws its "tofu"/notdef box).
_CJK_JS = r"""() => {
  const han = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/g;
  const byFont = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const chars = n.data.match(han);
    if (!chars || !n.parentElement) continue;
    const el = n.parentElement;
    if (el.closest('script, style, noscript')) continue;
    const style = getComputedStyle(el);
    const key = style.fontFamily + '|' + style.fontWeight + '|' + style.fontStyle;
    if (!byFont.has(key)) byFont.set(key, {family: style.fontFamily, weight: style.fontWeight,
      style: style.fontStyle, chars: new Set(), sample: el.tagName.toLowerCase(), lang: el.closest('[lang]')?.lang});
    for (const c of chars) if (byFont.get(key).chars.size < 12) byFont.get(key).chars.add(c);
  }
  const canvas = document.createElement('canvas');
  canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (font, ch) => {
    ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.fillStyle = '#000'; ctx.textBaseline = 'top';
    ctx.fillText(ch, 4, 4);
    return {pixels: Array.from(ctx.getImageData(0, 0, 48, 48).data).join(','), width: ctx.measureText(ch).width};
  };
  const results = [];
  for (const g of byFont.values()) {
    const font = `${g.style} ${g.weight} 32px ${g.family}`;
    const tofu = draw(font, '\u{10FFFD}');
    const boxes = [], drawn = [];
    for (const c of g.chars) {
      const d = draw(font, c);
      (d.pixels === tofu.pixels ? boxes : drawn).push(c);
    }
    results.push({family: g.family, sample: g.sample, lang: g.lang, boxes: boxes.join(''), drawn: drawn.join('')});
  }
  return results;
}"""


# ---------------------------------------------------------------- the run
def check_site(site: Path, screenshots: Path | None = None, *, chromium: str | None = None,
               budget_s: float = 150.0, pages: list[str] | None = None,
               env: dict[str, str] | None = None) -> dict:
    """``{page: {check: [problems]}}`` for every page (``[]`` = passed), plus ``"_meta"``.

    Pages not reached within ``budget_s`` get the single problem "not checked: time budget".
    """
    from playwright.sync_api import sync_playwright

    site = Path(site).resolve()
    pages = pages_of(site) if pages is None else pages
    chromium = chromium or chromium_path()
    if screenshots is not None:
        shutil.rmtree(screenshots, ignore_errors=True)
        screenshots.mkdir(parents=True)
    results: dict = {}
    meta = {"cjk_pages": {}, "redirects": {}, "external_requests": set(), "seconds": {}}
    start = time.monotonic()
    with serve(site) as base, tempfile.TemporaryDirectory(prefix="cnnbook-chromium-") as profile, \
            sync_playwright() as pw:
        browser_env = {**os.environ, **(env or {})}
        context_args = dict(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS, env=browser_env,
            timeout=60_000,
        )
        # A fresh user-data dir; a persistent context is how Playwright takes one.
        desktop = pw.chromium.launch_persistent_context(
            profile, viewport=DESKTOP, device_scale_factor=1, **context_args)
        try:
            tab = desktop.pages[0] if desktop.pages else desktop.new_page()
            phone = desktop.new_page()
            phone.set_viewport_size(PHONE)
            for p in (tab, phone):
                p.set_default_timeout(30_000)
            for page in pages:
                if time.monotonic() - start > budget_s:
                    results[page] = {c: [f"not checked: the {budget_s:.0f} s time budget ran out"] for c in CHECKS}
                    continue
                t0 = time.monotonic()
                results[page] = _check_page(tab, phone, base, site, page, screenshots, meta)
                meta["seconds"][page] = round(time.monotonic() - t0, 2)
        finally:
            desktop.close()
    meta["external_requests"] = sorted(meta["external_requests"])
    meta["total_seconds"] = round(time.monotonic() - start, 1)
    results["_meta"] = meta
    return results


def _check_page(tab, phone, base: str, site: Path, page: str, screenshots: Path | None, meta: dict) -> dict:
    problems = {c: [] for c in CHECKS}
    url = base + page
    failed: list[str] = []
    js_errors: list[str] = []

    def on_response(response):
        if response.url.startswith(base) and response.status >= 400:
            failed.append(f"HTTP {response.status}: {response.url[len(base):]}")

    def on_failed(request):
        if request.url.startswith(base):
            failed.append(f"failed ({request.failure}): {request.url[len(base):]}")
        elif not request.url.startswith("data:"):
            meta["external_requests"].add(urlsplit(request.url).netloc)

    redirect = REDIRECT.search((site / page).read_text(encoding="utf-8", errors="replace")[:4000])
    if redirect:  # index.html: a meta-refresh to the first page, nothing else to look at
        problems["links"] += _broken_links([[redirect[1], urljoin(url, redirect[1]), "meta refresh"]],
                                           base, site, page)
        meta["redirects"][page] = redirect[1]
        return problems

    tab.on("response", on_response)
    tab.on("requestfailed", on_failed)
    tab.on("pageerror", lambda exc: js_errors.append(str(exc)[:200]))
    try:
        response = tab.goto(url, wait_until="load")
        if response is None or response.status >= 400:
            problems["loads"].append(f"{page} answered {response.status if response else 'nothing'}")
            return problems
        problems["errors"] += tab.evaluate(_ERRORS_JS)

        for img in tab.evaluate(_IMAGES_JS):
            if not (img["complete"] and (img["width"] > 0 or (img["svg"] and img["decoded"]))):
                problems["images"].append(f"image does not load: {img['src']}")

        problems["links"] += _broken_links(tab.evaluate(_LINKS_JS), base, site, page)
        problems["glue"] += tab.evaluate(_GLUE_JS)

        if HAN.search(tab.evaluate("() => document.body.innerText")):
            groups = tab.evaluate(_CJK_JS)
            meta["cjk_pages"][page] = groups
            for g in groups:
                if g["boxes"]:
                    problems["cjk"].append(
                        f"{len(g['boxes'])} Han character(s) drawn as the notdef box in font "
                        f"{g['family']!r} (<{g['sample']}>): {g['boxes']} -- is fonts-noto-cjk installed?")
        if screenshots is not None:
            tab.screenshot(path=str(screenshots / screenshot_name(page, "desktop")), full_page=True)

        phone.goto(url, wait_until="load")
        width = phone.evaluate(_WIDTH_JS)
        if width["scrollWidth"] > width["viewport"] + PHONE_TOLERANCE_PX:
            problems["phone-width"].append(
                f"page is {width['scrollWidth']} px wide in a {width['viewport']} px viewport; "
                f"sticking out: {', '.join(width['culprits']) or 'unknown'}")
        if screenshots is not None:
            phone.screenshot(path=str(screenshots / screenshot_name(page, "phone")), full_page=True)
    except Exception as exc:  # a timeout or a crashed tab fails the page, not the run
        problems["loads"].append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        tab.remove_listener("response", on_response)
        tab.remove_listener("requestfailed", on_failed)
    problems["loads"] += failed + [f"JavaScript error: {e}" for e in js_errors
                                    if not any(known in e for known in KNOWN_JS_ERRORS)]
    return problems


def _broken_links(links: list, base: str, site: Path, page: str) -> list[str]:
    broken = []
    for raw, resolved, label in links:
        if not resolved.startswith(base) or raw.strip() in ("#", "") or raw.startswith(("javascript:", "mailto:")):
            continue
        parts = urlsplit(resolved)
        path = unquote(parts.path[len(urlsplit(base).path):]) or "index.html"
        target = site / path
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"link {raw!r} ({label!r}): {path} does not exist")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in _ids(target):
            broken.append(f"link {raw!r} ({label!r}): no id {fragment!r} in {target.relative_to(site).as_posix()}")
    return sorted(set(broken))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)
    if not chromium_path():
        print("no Chromium: apt-get install chromium fonts-noto-cjk", file=sys.stderr)
        return 2
    results = check_site(args.site, args.screenshots)
    meta = results.pop("_meta")
    if args.json:
        print(json.dumps({"results": results, "meta": meta}, indent=1, ensure_ascii=False))
    bad = 0
    for page, checks in results.items():
        for check, problems in checks.items():
            for problem in problems:
                bad += 1
                print(f"FAIL {page} [{check}] {problem}")
    print(f"{len(results)} pages, {bad} problems, {meta['total_seconds']} s", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
