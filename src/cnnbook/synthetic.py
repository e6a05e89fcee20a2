"""Digits that never came from MNIST: rendered from fonts, made to look photographed.

NumPy and Pillow only.  :func:`render_digits` draws the digits 0-9 with the TrueType/OpenType
fonts found on the machine (:func:`find_fonts`), slants, thickens and scales them at random,
centres them the way MNIST does (a 20×20 box, centred by mass in 28×28), then adds what a phone
photograph of a paper digit brings after it has been turned into an MNIST-like image: uneven
lighting, a faint background, blur and sensor noise.  The result is a small test set with a
*distribution shift*: same classes, same format, other writers (type designers) and other
"cameras".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["FONT_DIRS", "find_fonts", "render_digits"]

#: Where :func:`find_fonts` looks (Debian/Ubuntu, macOS, Windows), besides ``$CNNBOOK_FONT_DIR``.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "/System/Library/Fonts",
             "C:/Windows/Fonts")

# Fonts whose digits are not Latin digits or are symbols only.
_SKIP = ("symbol", "emoji", "dingbat", "math", "cjk")


def find_fonts(dirs: Sequence[str | os.PathLike[str]] | None = None) -> list[Path]:
    """The TrueType/OpenType font files under ``dirs``, sorted by name.

    Parameters
    ----------
    dirs : sequence of path-like, optional
        Folders to search recursively; default ``$CNNBOOK_FONT_DIR`` (if set) and :data:`FONT_DIRS`.

    Returns
    -------
    list of pathlib.Path
        ``.ttf``/``.otf`` files, without symbol, emoji and CJK fonts; possibly empty.  With the
        default folders and none found there, matplotlib's bundled DejaVu fonts (when matplotlib
        is installed; it is not imported).
    """
    default = dirs is None
    if dirs is None:
        extra = os.environ.get("CNNBOOK_FONT_DIR")
        dirs = ([extra] if extra else []) + list(FONT_DIRS)
    found = _fonts_in(dirs)
    if not found and default:
        found = _fonts_in(_matplotlib_font_dirs())
    return found


def _fonts_in(dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    found: set[Path] = set()
    for folder in map(Path, dirs):
        if folder.is_dir():
            for pattern in ("*.ttf", "*.otf"):
                found.update(p for p in folder.rglob(pattern) if not any(s in p.name.lower() for s in _SKIP))
    return sorted(found, key=lambda p: (p.name, str(p)))


def _matplotlib_font_dirs() -> list[Path]:
    """matplotlib's bundled fonts folder, found without importing matplotlib."""
    from importlib.util import find_spec

    spec = find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]


def _render(digit: int, font_path: Path, rng: np.random.Generator) -> np.ndarray:
    """One digit as white ink on black, 28×28 floats in [0, 1], placed the MNIST way."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    size = 96
    font = ImageFont.truetype(str(font_path), size=int(rng.integers(56, 80)))
    canvas = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(canvas).text((size // 2, size // 3), str(digit), fill=255, font=font)
    # Handwriting leans and varies in stroke width: a random shear, and thicker or thinner ink.
    shear = float(rng.uniform(-0.3, 0.3))
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * size, 0, 1, 0),
                              resample=Image.Resampling.BILINEAR)
    canvas = canvas.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR)
    width = int(rng.integers(0, 3))
    if width:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * width + 1))
    box = canvas.getbbox()
    if box is None:  # a font without this glyph drew nothing
        raise ValueError(f"{font_path.name} drew nothing for {digit}.")
    ink = canvas.crop(box)
    # MNIST: the digit fitted in a 20×20 box (aspect kept), then centred by its mass in 28×28.
    scale = 20.0 / max(ink.size)
    ink = ink.resize((max(1, round(ink.size[0] * scale)), max(1, round(ink.size[1] * scale))),
                     Image.Resampling.LANCZOS)
    a = np.asarray(ink, dtype=np.float64) / 255.0
    out = np.zeros((28, 28))
    rows, cols = np.indices(a.shape)
    total = a.sum() or 1.0
    cy, cx = (rows * a).sum() / total, (cols * a).sum() / total
    top = int(np.clip(round(14 - cy), 0, 28 - a.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - a.shape[1]))
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return np.clip(out, 0.0, 1.0)


def _photograph(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven lighting, a faint background, a little blur and noise, as from a phone photograph."""
    from PIL import Image, ImageFilter

    blurred = Image.fromarray((img * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.1))))
    x = np.asarray(blurred, dtype=np.float64) / 255.0
    rows, cols = np.indices(x.shape) / 27.0
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.5 + 0.5 * (np.cos(angle) * (cols - 0.5) + np.sin(angle) * (rows - 0.5)) * 2  # 0..1 across
    ink_level = rng.uniform(0.55, 1.0)  # faded ink or a dim photograph
    background = rng.uniform(0.0, 0.25) * light  # paper that is not quite black after inversion
    x = background + x * ink_level * (1 - 0.4 * light)
    x = x + rng.normal(0.0, rng.uniform(0.01, 0.06), x.shape)
    return np.clip(x, 0.0, 1.0)


def render_digits(
    n: int,
    *,
    seed: int = 0,
    fonts: Sequence[str | os.PathLike[str]] | None = None,
    photographed: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` synthetic digits in MNIST's format, balanced over the ten classes.

    Parameters
    ----------
    n : int
        Number of images (at least 1); labels cycle through 0-9, then the order is shuffled.
    seed : int
        Seed of every random choice: the same seed and fonts give the same images.
    fonts : sequence of path-like, optional
        Font files to draw with; default :func:`find_fonts`.  Fonts that cannot draw a digit are
        skipped.
    photographed : bool
        Add lighting, background, blur and noise (:func:`_photograph`); ``False`` keeps the clean
        rendered digits.

    Returns
    -------
    images : numpy.ndarray
        ``n×28×28×1`` float32 in [0, 1], white digits on black like MNIST.
    labels : numpy.ndarray
        ``n`` uint8 class indices.
    font_names : list of str
        The file name of the font each image was drawn with.

    Raises
    ------
    ValueError
        ``n`` below 1, or no usable font (install one, e.g. ``apt-get install fonts-dejavu-core``,
        or point ``$CNNBOOK_FONT_DIR`` at a folder of ``.ttf`` files).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    paths = [Path(f) for f in (find_fonts() if fonts is None else fonts)]
    if not paths:
        raise ValueError("No TrueType/OpenType font found to draw digits with: install one (e.g. "
                         "`apt-get install fonts-dejavu-core`) or set CNNBOOK_FONT_DIR to a folder of .ttf files.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = np.empty((n, 28, 28, 1), dtype=np.float32)
    names: list[str] = []
    unusable: set[Path] = set()
    for i, digit in enumerate(labels):
        while True:
            usable = [p for p in paths if p not in unusable]
            if not usable:
                raise ValueError(f"None of the {len(paths)} fonts could draw the digit {digit}.")
            font = usable[int(rng.integers(len(usable)))]
            try:
                img = _render(int(digit), font, rng)
                break
            except (OSError, ValueError):  # not a font Pillow can read, or no glyph for digits
                unusable.add(font)
        if photographed:
            img = _photograph(img, rng)
        images[i, :, :, 0] = img
        names.append(font.name)
    return images, labels, names
