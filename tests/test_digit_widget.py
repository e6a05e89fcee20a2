"""The online book's drawing pad (``_static/digit/``), checked in headless Chromium.

The pad's JavaScript does in the reader's browser what the package does in
Python, so each half is compared with its Python twin:

(a) preprocessing: 60 drawings (strokes generated from a fixed seed, drawn on
    the pad's canvas by its own drawing code) go through the JavaScript
    ``prepare`` and through :func:`cnnbook.web.prepare_canvas` on the very
    same canvas pixels; every pixel of the 28×28 inputs agrees to 2/255, and
    the network gives both the same answer;
(b) forward pass: the JavaScript network on 1,000 MNIST test images against
    Keras running the same weights (the committed ``mnist_cnn.json`` loaded
    into :func:`cnnbook.models.mnist_cnn`): the same top-1 answer for every
    image, probabilities within 1e-4;
(c) the page: mouse strokes drawing a 1, a 0 and a 7 on the pad, answered
    through the test contract (``data-digit-canvas``, ``data-digit-clear``,
    ``data-digit-prediction``).

And without a browser: the committed weights file still belongs to the model
the chapters train (its recorded cache key is recomputed from the current
recipe), and ``cnnbook export MODEL --format web`` writes it.

The pad is served from a copy of ``_static/digit/`` with a small page holding
``<div data-digit-widget>`` (the same files the built book ships), so no book
build is needed.  Chromium is Debian's, driven by Playwright's Python package
as in ``tests/browser_check.py``; without them these tests skip, unless
``CNNBOOK_REQUIRE_BROWSER=1``.  No training: everything runs from the
committed weights.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import browser_check
from cnnbook import images, web

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "_static" / "digit"
WEIGHTS = STATIC / "mnist_cnn.json"
REQUIRE = os.environ.get("CNNBOOK_REQUIRE_BROWSER", "") not in ("", "0")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="_static/digit/digit.css">
<script src="_static/digit/digit.js"></script></head>
<body><div data-digit-widget></div></body></html>
"""
#: Per-pixel tolerance of (a), on the 0-1 scale.
PIXEL_TOLERANCE = 2 / 255
#: Largest probability difference allowed in (b).
PROBABILITY_TOLERANCE = 1e-4


def _record() -> dict:
    return json.loads(WEIGHTS.read_text())


def _keras_model():
    """models.mnist_cnn holding the committed weights (float32, inference)."""
    from cnnbook import models

    record = _record()
    model = models.mnist_cnn(tuple(record["input_shape"]), 10, dtype="float32")
    for name, arrays in web.read_web(record).items():
        model.get_layer(name).set_weights(arrays)
    return model


# ---------------------------------------------------------------- no browser
def test_weights_file_is_the_chapters_model():
    """Recorded provenance against the recipe the chapters train with now."""
    from cnnbook import book, training

    record = _record()
    prov = record["provenance"]
    trained = prov["training"]
    # The precision chapter 6 ran in (its glued value in the stored run).
    nb = json.loads((ROOT / "notebooks" / "06_evaluation.ipynb").read_text())
    precision = book.read_glued(nb)["precision"]
    assert trained["dtype"] == precision
    assert trained["dataset"] == "mnist" and trained["train_size"] is None
    # The cache file name is the recipe's key (recipe, dtype, model builder).
    expected = training.trained_model_path("mnist", dtype=precision).name
    assert prov["model_file"] == expected, (
        f"_static/digit/mnist_cnn.json was exported from {prov['model_file']}, "
        f"but the chapters now train {expected}: re-export it with "
        "`cnnbook export <that file> --format web --out "
        "_static/digit/mnist_cnn.json --force`")
    assert trained["config"] == asdict(training.default_config("mnist"))
    assert record["parameters"] == _keras_model().count_params()
    cached = training.trained_model_path("mnist", dtype=precision)
    if cached.is_file():  # where the model is cached, the very same bytes
        import hashlib

        assert hashlib.sha256(cached.read_bytes()).hexdigest() == prov["model_sha256"]


def test_to_web_round_trip_and_refusal():
    import keras

    from cnnbook import models

    model = models.mnist_cnn(dtype="float32")
    model.get_layer("stage1_bn").set_weights(
        [np.full(16, 2.0, np.float32), np.full(16, 0.5, np.float32),
         np.full(16, 0.1, np.float32), np.full(16, 3.0, np.float32)])
    record = json.loads(json.dumps(web.to_web(model, {"model_file": "m.keras"})))
    assert [layer["type"] for layer in record["layers"]] == [
        "conv2d", "max_pool2d", "batch_norm", "relu"] * 3 + ["flatten", "dense"]
    assert record["provenance"] == {"model_file": "m.keras"}
    weights = web.read_web(record)
    for name, arrays in weights.items():
        for got, want in zip(arrays, model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    odd = keras.Sequential([keras.Input((28, 28, 1)),
                            keras.layers.Conv2D(4, 3, activation="tanh")])
    with pytest.raises(ValueError, match="activation 'tanh'"):
        web.to_web(odd)
    with pytest.raises(ValueError, match="not a cnnbook-web file"):
        web.read_web({"format": "other"})


def test_prepare_canvas_is_prepare_digit_on_a_canvas():
    """The canvas path gives what prepare_digit gives for the same drawing."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(90, 70), (190, 70), (120, 220)], fill=0, width=18, joint="curve")
    ink = 255 - np.asarray(img)
    canvas = web.prepare_canvas(ink)
    digit = images.prepare_digit(np.asarray(img))
    assert canvas.shape == (28, 28) and canvas.dtype == np.float32
    assert np.abs(canvas - digit).max() <= PIXEL_TOLERANCE
    with pytest.raises(images.NoDigitFoundError):
        web.prepare_canvas(np.zeros((280, 280), np.uint8))
    with pytest.raises(images.ImageError, match="2-D"):
        web.prepare_canvas(np.zeros((28, 28, 3), np.uint8))


# ---------------------------------------------------------------- browser
def _need_browser() -> str:
    missing = []
    chromium = browser_check.chromium_path()
    if not chromium:
        missing.append("Chromium (apt-get install chromium fonts-noto-cjk)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright's Python package (pip install -e '.[book]')")
    if missing:
        reason = "no browser for the drawing pad: " + " and ".join(missing)
        if REQUIRE:
            pytest.fail(reason + " (CNNBOOK_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return chromium


@pytest.fixture(scope="module")
def pad(tmp_path_factory):
    """A Chromium tab on a page with the pad, its weights loaded."""
    chromium = _need_browser()
    from playwright.sync_api import sync_playwright

    site = tmp_path_factory.mktemp("pad")
    shutil.copytree(STATIC, site / "_static" / "digit")
    (site / "pad.html").write_text(PAGE)
    errors: list[str] = []
    with browser_check.serve(site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=browser_check.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.set_default_timeout(30_000)
            page.goto(base + "pad.html")
            page.wait_for_selector("[data-digit-widget][data-digit-ready]")
            yield page, errors
        finally:
            browser.close()


def _strokes(rng: np.random.Generator) -> list[list[list[float]]]:
    """One to three random strokes: smooth polylines in the pad's pixels."""
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        start = rng.uniform(60, 220, size=2)
        steps = rng.normal(0, 14, size=(int(rng.integers(4, 14)), 2))
        turn = rng.normal(0, 4, size=2)
        points = start + np.cumsum(steps + turn, axis=0)
        strokes.append(np.clip(points, 10, 270).round(2).tolist())
    return strokes


def test_constants_match_python(pad):
    page, _ = pad
    js = page.evaluate("cnnbookDigit.constants")
    for name, value in js.items():
        assert getattr(images, name) == value, name


def test_preprocessing_matches_python(pad):
    """(a) 60 seeded drawings: JavaScript prepare vs web.prepare_canvas."""
    page, errors = pad
    rng = np.random.default_rng(34)
    drawings = [_strokes(rng) for _ in range(60)]
    out = page.evaluate("""(drawings) => {
      const D = cnnbookDigit, c = document.createElement('canvas');
      c.width = c.height = D.SIDE;
      const ctx = c.getContext('2d', {willReadFrequently: true});
      return drawings.map((strokes) => {
        D.clearPad(ctx);
        strokes.forEach((s) => D.drawStroke(ctx, s));
        const ink = D.readInk(ctx);
        const bytes = Uint8Array.from(ink, (v) => Math.round(v * 255));
        let centred = null;
        try { centred = Array.from(D.prepare(ink, D.SIDE, D.SIDE).centred); }
        catch (e) { if (!(e instanceof D.NoDigit)) throw e; }
        return {ink: btoa(String.fromCharCode(...bytes)), centred};
      });
    }""", drawings)
    model = _keras_model()
    diffs, compared = [], 0
    for item in out:
        ink = np.frombuffer(base64.b64decode(item["ink"]), np.uint8).reshape(280, 280)
        try:
            want = web.prepare_canvas(ink)
        except images.NoDigitFoundError:
            assert item["centred"] is None
            continue
        got = np.asarray(item["centred"], np.float32).reshape(28, 28)
        diffs.append(float(np.abs(got - want).max()))
        probs = model.predict(np.stack([got, want])[..., None], verbose=0)
        assert probs[0].argmax() == probs[1].argmax()
        compared += 1
    assert compared >= 50, f"only {compared} drawings held a digit"
    print(f"\n(a) {compared} drawings: largest pixel difference "
          f"{max(diffs):.2e} (tolerance {PIXEL_TOLERANCE:.2e})")
    assert max(diffs) <= PIXEL_TOLERANCE
    assert not errors


def test_forward_pass_matches_keras(pad):
    """(b) 1,000 MNIST test images: the JavaScript network vs Keras."""
    from cnnbook import data

    page, errors = pad
    ds = data.load_dataset("mnist")
    x8 = np.ascontiguousarray(ds.x_test[:1000, :, :, 0])
    x = x8.astype(np.float32) / 255.0
    js = np.asarray(page.evaluate("""async (b64) => {
      const D = cnnbookDigit, model = await D.loadWeights();
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const out = [];
      for (let i = 0; i < bytes.length / 784; i++) {
        const img = Float32Array.from(bytes.subarray(784 * i, 784 * (i + 1)),
                                      (v) => Math.fround(v / 255));
        out.push(D.predict(model, img));
      }
      return out;
    }""", base64.b64encode(x8.tobytes()).decode()))
    import keras

    keras_probs = keras.ops.convert_to_numpy(keras.ops.softmax(
        _keras_model().predict(x[..., None], batch_size=500, verbose=0)))
    agree = float((js.argmax(1) == keras_probs.argmax(1)).mean())
    largest = float(np.abs(js - keras_probs).max())
    print(f"\n(b) 1,000 test images: top-1 agreement {agree:.1%}, largest "
          f"probability difference {largest:.1e}")
    assert agree == 1.0
    assert largest <= PROBABILITY_TOLERANCE
    assert not errors


# Mouse strokes in the pad's own units (0-1 of its side).
MOUSE_DIGITS = {
    "1": [[(0.5, 0.18), (0.5, 0.82)]],
    "0": [[(0.5 + 0.2 * np.sin(t), 0.5 - 0.3 * np.cos(t))
           for t in np.linspace(0, 2 * np.pi, 25)]],
    "7": [[(0.28, 0.22), (0.72, 0.22), (0.45, 0.82)]],
}


@pytest.mark.parametrize("digit", list(MOUSE_DIGITS))
def test_mouse_drawing_is_answered(pad, digit):
    """(c) draw with mouse events on the pad; read the contract attributes."""
    page, errors = pad
    page.click("[data-digit-clear]")
    assert not page.inner_text("[data-digit-prediction]")[:1].isdigit()
    box = page.locator("[data-digit-canvas]").bounding_box()
    for stroke in MOUSE_DIGITS[digit]:
        points = [(box["x"] + u * box["width"], box["y"] + v * box["height"])
                  for u, v in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()
    answer = page.inner_text("[data-digit-prediction]")
    assert answer[:1] == digit, f"drew a {digit}, the pad answered {answer!r}"
    assert page.locator(".cnnbook-digit__top3 li").count() == 3
    assert not errors
