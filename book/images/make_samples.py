"""Draw the sample "handwritten" digit images used in chapter 6 (``notebooks/06_evaluation.ipynb``).

These images were **not** written by hand: this script draws each digit as a few
pen strokes (arcs and lines with a random wobble, slant and pen width), then
renders it the way a reader's own picture might arrive — a phone photo of paper
with uneven light and sensor noise, a scan, a drawing app's transparent PNG, a
palette GIF-like PNG, a 16-bit scan, chalk on a dark board, a small digit off
the centre of a large page, a thin ball-point line.  It also draws a blank page
(which must give "no digit found").

Run it from the repository root to re-create the files (deterministic, seeded)::

    python book/images/make_samples.py

Uses NumPy and Pillow only.  Every file stays well under 200 KB.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SEED = 2024


# --- The digits as pen strokes in a unit box (x right, y down) ------------------------


def _arc(cx, cy, rx, ry, start_deg, end_deg, n=40):
    t = np.radians(np.linspace(start_deg, end_deg, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*points, n=20):
    pts = [np.asarray(p, dtype=float) for p in points]
    out = [np.linspace(a, b, n) for a, b in zip(pts[:-1], pts[1:])]
    return np.concatenate(out)


STROKES = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 275, 70)],
    1: [_line((0.35, 0.22), (0.55, 0.05), (0.55, 0.95))],
    2: [np.concatenate([_arc(0.5, 0.3, 0.3, 0.25, 200, 380, 40), _line((0.79, 0.38), (0.2, 0.95), (0.85, 0.95))])],
    3: [np.concatenate([_arc(0.48, 0.27, 0.3, 0.22, 210, 450, 40), _arc(0.48, 0.72, 0.33, 0.24, -90, 150, 40)])],
    4: [_line((0.6, 0.05), (0.15, 0.62), (0.88, 0.62)), _line((0.68, 0.3), (0.66, 0.97))],
    5: [np.concatenate([_line((0.8, 0.06), (0.28, 0.06), (0.24, 0.45)), _arc(0.48, 0.68, 0.32, 0.27, -120, 150, 40)])],
    6: [np.concatenate([_arc(0.85, 0.55, 0.6, 0.5, 230, 180, 30), _arc(0.5, 0.72, 0.26, 0.23, 180, 540, 60)])],
    7: [_line((0.15, 0.08), (0.85, 0.08), (0.4, 0.97))],
    8: [np.concatenate([_arc(0.5, 0.27, 0.23, 0.22, 90, 450, 50)]), _arc(0.5, 0.71, 0.29, 0.25, -90, 270, 60)],
    9: [np.concatenate([_arc(0.5, 0.3, 0.27, 0.23, 0, 360, 50), _line((0.77, 0.3), (0.72, 0.97))])],
}


def _transform(points, rng, slant, rotation_deg):
    """Wobble the stroke smoothly (as a hand does), slant (shear) and rotate about the box centre."""
    n = len(points)
    k = max(3, n // 12)  # a few control points, linearly interpolated: a slow, smooth wobble
    control = rng.normal(0, 0.015, (k, 2))
    t = np.linspace(0, k - 1, n)
    wobble = np.stack([np.interp(t, np.arange(k), control[:, d]) for d in range(2)], axis=1)
    pts = points + wobble
    pts = pts - 0.5
    pts[:, 0] = pts[:, 0] - slant * pts[:, 1]
    t = math.radians(rotation_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return pts @ rot.T + 0.5


def draw_digit(digit, size, box, rng, *, pen=0.09, slant=0.15, rotation=0.0, supersample=4):
    """A float image (H×W) in [0, 1]: 1 where the pen drew, anti-aliased.

    ``box`` = (left, top, width, height) of the digit on the canvas in pixels;
    ``pen`` the stroke width as a fraction of the box height.
    """
    width, height = size
    s = supersample
    canvas = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, bw, bh = box
    for stroke in STROKES[digit]:
        pts = _transform(stroke, rng, slant, rotation)
        xy = [((left + x * bw) * s, (top + y * bh) * s) for x, y in pts]
        draw.line(xy, fill=255, width=max(1, int(round(pen * bh * s))), joint="curve")
        r = pen * bh * s / 2  # round pen ends
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    canvas = canvas.resize((width, height), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def _gradient(size, rng, low, high):
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * math.pi)
    g = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    g = (g - g.min()) / (np.ptp(g) + 1e-9)
    return low + (high - low) * g


def _to_uint8(a):
    return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)


# --- The samples --------------------------------------------------------------------


def photo_on_paper(digit, rng):
    """Phone photo: blue-black ink on paper, light falling off across the page, noise, JPEG."""
    size = (640, 480)
    ink = draw_digit(digit, size, (200, 60, 220, 340), rng, pen=0.07, slant=0.2, rotation=rng.uniform(-8, 8))
    paper = _gradient(size, rng, 0.62, 0.93)[..., None] * np.array([1.0, 0.98, 0.93])
    colour = np.array([0.12, 0.14, 0.32])
    rgb = paper * (1 - ink[..., None]) + colour * ink[..., None]
    rgb += rng.normal(0, 0.025, rgb.shape)
    img = Image.fromarray(_to_uint8(rgb), "RGB").filter(ImageFilter.GaussianBlur(0.8))
    return img, "jpg"


def scan(digit, rng):
    """Flatbed scan: black felt pen on white, grayscale PNG."""
    size = (300, 300)
    ink = draw_digit(digit, size, (70, 40, 160, 220), rng, pen=0.1, slant=0.1)
    gray = 0.97 - 0.9 * ink + rng.normal(0, 0.01, ink.shape)
    return Image.fromarray(_to_uint8(gray), "L"), "png"


def transparent(digit, rng):
    """Drawing app export: black strokes on a transparent background (RGBA)."""
    size = (256, 256)
    ink = draw_digit(digit, size, (60, 30, 140, 200), rng, pen=0.12, slant=0.0)
    rgba = np.zeros((*ink.shape, 4))
    rgba[..., 3] = ink  # colour black, opacity = ink
    return Image.fromarray(_to_uint8(rgba), "RGBA"), "png"


def palette(digit, rng):
    """Palette (indexed-colour) image, as a GIF or an optimised PNG: red marker on cream."""
    size = (200, 240)
    ink = draw_digit(digit, size, (40, 30, 120, 180), rng, pen=0.11, slant=0.25)
    paper, colour = np.array([0.98, 0.95, 0.85]), np.array([0.8, 0.1, 0.1])
    rgb = paper * (1 - ink[..., None]) + colour * ink[..., None]
    img = Image.fromarray(_to_uint8(rgb), "RGB").quantize(colors=16, dither=Image.Dither.NONE)
    return img, "png"


def scan_16bit(digit, rng):
    """16-bit grayscale scan (values 0–65535), pencil grey on white."""
    size = (240, 280)
    ink = draw_digit(digit, size, (60, 40, 120, 200), rng, pen=0.08, slant=0.05, rotation=-4)
    gray = 0.95 - 0.55 * ink + rng.normal(0, 0.004, ink.shape)
    arr = np.clip(np.round(gray * 65535), 0, 65535).astype(np.uint16)
    return Image.fromarray(arr), "png"  # Pillow stores a uint16 array as mode "I;16"


def chalkboard(digit, rng):
    """Chalk on a dark green board: light ink on a dark background (must not be inverted)."""
    size = (480, 360)
    ink = draw_digit(digit, size, (170, 50, 150, 260), rng, pen=0.11, slant=0.1, rotation=5)
    ink = ink * rng.uniform(0.75, 1.0, ink.shape)  # chalk is patchy
    board = _gradient(size, rng, 0.12, 0.2)[..., None] * np.array([0.8, 1.1, 0.9])
    rgb = board * (1 - ink[..., None]) + np.array([0.92, 0.92, 0.9]) * ink[..., None]
    rgb += rng.normal(0, 0.02, rgb.shape)
    return Image.fromarray(_to_uint8(rgb), "RGB"), "jpg"


def off_centre(digit, rng):
    """A small digit near a corner of a large, otherwise empty page."""
    size = (1000, 800)
    ink = draw_digit(digit, size, (720, 520, 110, 170), rng, pen=0.1, slant=0.15)
    gray = 0.96 - 0.85 * ink
    return Image.fromarray(_to_uint8(gray), "L"), "png"


def thin_pen(digit, rng):
    """Thin ball-point line, large on the page: the stroke must be thickened to look like MNIST."""
    size = (700, 700)
    ink = draw_digit(digit, size, (180, 60, 340, 580), rng, pen=0.012, slant=0.12, rotation=3)
    gray = 0.95 - 0.8 * ink
    return Image.fromarray(_to_uint8(gray), "L"), "png"


def wide_marker(digit, rng):
    """Thick marker on a sticky note, photographed slightly rotated (RGB JPEG)."""
    size = (400, 400)
    ink = draw_digit(digit, size, (110, 60, 170, 280), rng, pen=0.16, slant=0.2, rotation=-10)
    paper, colour = np.array([1.0, 0.93, 0.45]), np.array([0.05, 0.05, 0.05])
    rgb = paper * (1 - ink[..., None]) + colour * ink[..., None]
    rgb *= _gradient(size, rng, 0.8, 1.0)[..., None]
    rgb += rng.normal(0, 0.015, rgb.shape)
    return Image.fromarray(_to_uint8(rgb), "RGB"), "jpg"


def grey_background(digit, rng):
    """A dim, low-contrast photo: dark grey ink on grey paper."""
    size = (360, 420)
    ink = draw_digit(digit, size, (100, 70, 160, 270), rng, pen=0.09, slant=0.3)
    gray = 0.5 - 0.25 * ink + rng.normal(0, 0.015, ink.shape)
    return Image.fromarray(_to_uint8(gray), "L"), "jpg"


def blank_page(rng):
    """A photo of a blank sheet: uneven light and noise, but no digit."""
    size = (640, 480)
    gray = _gradient(size, rng, 0.6, 0.9) + rng.normal(0, 0.02, (size[1], size[0]))
    img = Image.fromarray(_to_uint8(gray), "L").filter(ImageFilter.GaussianBlur(0.8))
    return img.convert("RGB")


STYLES = {
    0: chalkboard,
    1: wide_marker,
    2: palette,
    3: photo_on_paper,
    4: off_centre,
    5: scan_16bit,
    6: thin_pen,
    7: transparent,
    8: scan,
    9: grey_background,
}


def main() -> None:
    rng = np.random.default_rng(SEED)
    for digit, style in STYLES.items():
        img, ext = style(digit, rng)
        path = HERE / f"digit_{digit}_{style.__name__}.{ext}"
        if ext == "jpg":
            img.save(path, quality=85)
        else:
            img.save(path, optimize=True)
        print(f"{path.name}: {img.mode} {img.size[0]}×{img.size[1]}, {path.stat().st_size / 1024:.0f} KB")
    path = HERE / "blank_page.jpg"
    blank_page(rng).save(path, quality=85)
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
