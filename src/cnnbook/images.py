"""Turning a reader's own image of a handwritten digit into an MNIST-like input.

MNIST's digits were made in a fixed way (LeCun et al.): the written digit was
size-normalised to fit a 20×20 box keeping its aspect ratio (anti-aliased, so
grey levels appear), then placed in a 28×28 field so that its centre of mass
lies in the middle, as light ink on a black background.  A network trained on
MNIST expects exactly that, so :func:`prepare_digit` repeats the recipe on any
image file:

1. **read** it — any size, colour mode (RGB, RGBA, palette, 16-bit, CMYK …),
   EXIF rotation applied, transparency composited on white — as grayscale;
2. **find the ink** — the background is the colour of the image's border; when
   it is light the image is inverted (MNIST has light ink on black); an uneven
   illumination (a gradient across a photo) is removed by fitting a plane to the
   background; pixels clearly brighter than the background noise are ink, and
   specks far smaller than the digit are dropped;
3. **crop** to the ink's bounding box, thickening pen strokes that would become
   thinner than MNIST's at 20×20;
4. **fit** it into a 20×20 box keeping the aspect ratio;
5. **centre** it by its centre of mass in a 28×28 field.

What cannot be a digit is refused with an error instead of a guess:
:class:`ImageError` (a :class:`ValueError`) for an empty file, bytes that are not
an image, a corrupt or absurdly small or large image; :class:`NoDigitFoundError`
(also a :class:`ValueError`) for a blank page, pure noise, or "ink" that covers
most of the image.

This module uses NumPy and Pillow only.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from typing import IO, Any, Union

import numpy as np

__all__ = [
    "ImageError",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "NoDigitFoundError",
    "load_image",
    "prepare_digit",
    "prepare_digit_steps",
    "preview",
]

#: Largest image accepted, in pixels (width × height): 50 megapixels, more than
#: any phone photo.  Larger files are refused before they are decoded, which also
#: guards against "decompression bombs" (tiny files that expand to gigabytes).
MAX_PIXELS = 50_000_000
#: Largest image file accepted, in bytes.
MAX_FILE_BYTES = 200_000_000
#: Smallest accepted width and height, in pixels.
MIN_SIDE = 8
#: The image is worked on at most this many pixels on its longer side.
WORK_SIDE = 1024
#: Ink must differ from the background by at least this much (on a 0–1 scale) …
MIN_CONTRAST = 0.08
#: … and by this many times the background's noise level.
MIN_SNR = 6.0
#: Thresholded ink covering more than this fraction of the image is not a digit.
MAX_INK_FRACTION = 0.5
#: Pieces of ink smaller than this fraction of the largest piece are dropped as specks.
KEEP_FRACTION = 0.1
#: The digit's box must span at least this fraction of the image's longer side.
MIN_DIGIT_FRACTION = 0.02
#: MNIST's recipe: the digit fits a BOX×BOX box inside a FIELD×FIELD image.
BOX = 20
FIELD = 28
#: Pen strokes thinner than MIN_STROKE pixels at 20×20 are thickened to about TARGET_STROKE.
#: Measured the same way (2 × area / boundary pixels of the ink above half strength),
#: MNIST's test digits have strokes 2.7 pixels wide (median), 2.1 or more for 90% of them.
MIN_STROKE = 1.6
TARGET_STROKE = 2.7

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Any]

_WHAT_TO_DO = ("Pass a photo or scan of one handwritten digit as a PNG, JPEG, BMP, GIF, TIFF "
               "or WebP file (or its bytes, a PIL image or a NumPy array).")


class ImageError(ValueError):
    """The input is not a usable image (empty, not an image, corrupt, too small or too large)."""


class NoDigitFoundError(ValueError):
    """The image holds no digit: a blank page, noise, or "ink" covering nearly everything."""


# --- Reading ------------------------------------------------------------------------


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "the data given"
    return f"the {type(source).__name__} given"


def _open(source: ImageSource):
    """A loaded PIL image from a path, bytes, a binary file object or a PIL image."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        img = source
    else:
        what = _describe(source)
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if os.path.isdir(path):
                raise ImageError(f"{what} is a folder, not an image file. {_WHAT_TO_DO}")
            if not os.path.exists(path):
                raise FileNotFoundError(f"No such image file: {what}.")
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                raise ImageError(f"{what} is {size / 1e6:.0f} MB, more than MAX_FILE_BYTES = "
                                 f"{MAX_FILE_BYTES / 1e6:.0f} MB; a digit needs far less. Downscale it first.")
            with open(path, "rb") as f:
                data = f.read()
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif hasattr(source, "read"):
            data = source.read()
            if isinstance(data, str):
                raise ImageError(f"{what} was opened in text mode; open image files with 'rb'.")
        else:
            raise ImageError(f"Cannot read an image from {what}. {_WHAT_TO_DO}")
        if len(data) == 0:
            raise ImageError(f"{what} is empty (0 bytes). {_WHAT_TO_DO}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            head = data[:16]
            raise ImageError(f"{what} is not an image Pillow can read (it starts with {head!r}). "
                             f"{_WHAT_TO_DO}") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageError(f"{what} is far too large ({err}); the limit is MAX_PIXELS = "
                             f"{MAX_PIXELS:,} pixels. Downscale the image first.") from None
        except OSError as err:
            raise ImageError(f"{what} could not be opened as an image ({err}). {_WHAT_TO_DO}") from None
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"The image is {width}×{height} = {width * height:,} pixels, more than "
                         f"cnnbook.images.MAX_PIXELS = {MAX_PIXELS:,}. Downscale it first "
                         "(a digit needs only a few hundred pixels a side).")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"The image is only {width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} "
                         "are needed to see a digit.")
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # an animated GIF/WebP or a multi-page TIFF: its first frame
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"The image data is corrupt or truncated ({err}). {_WHAT_TO_DO}") from None
    return img


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    return a[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _array_to_gray(arr: np.ndarray) -> np.ndarray:
    """An image array (H×W, H×W×1, H×W×3, H×W×4; uint8/uint16/bool/float) → H×W luminance in [0, 1]."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"An image array must be H×W, H×W×1, H×W×3 or H×W×4; got shape {a.shape}.")
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif a.dtype.kind in "ui":
        top = float(np.iinfo(a.dtype).max) if a.dtype.itemsize <= 2 else max(float(a.max()), 1.0)
        a = a.astype(np.float32) / top
    elif a.dtype.kind == "f":
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise ImageError("The image array holds NaN or infinite values.")
        if a.max() > 1.0:
            a = a / (255.0 if a.max() <= 255.0 else float(a.max()))
    else:
        raise ImageError(f"Cannot use an image array of dtype {a.dtype}.")
    a = np.clip(a, 0.0, 1.0)
    if a.ndim == 3:
        rgb = a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if a.shape[-1] == 4:
            alpha = a[..., 3]
            composite = rgb * alpha + (1.0 - alpha)  # on white paper
            a = _alpha_fallback(composite, alpha)
        else:
            a = rgb
    return a.astype(np.float32)


def _alpha_fallback(composite: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """When compositing on white erases the drawing (light ink on a transparent
    background), the transparency itself is the drawing."""
    if np.ptp(composite) < MIN_CONTRAST and np.ptp(alpha) >= MIN_CONTRAST:
        return (1.0 - alpha).astype(np.float32)
    return composite.astype(np.float32)


def load_image(source: ImageSource) -> np.ndarray:
    """Read an image as grayscale luminance: a float32 ``H×W`` array in [0, 1], 1 = white.

    ``source`` is a file path, the file's bytes, a binary file object, a PIL image
    or an array.  Any Pillow format and mode is accepted: palette images are
    expanded, transparency is composited on white, 16-bit and float images are
    scaled to [0, 1], the EXIF orientation of a phone photo is applied.  Images
    with more than :data:`WORK_SIDE` pixels on the longer side are reduced (by
    averaging blocks of pixels) to at most that size.

    Parameters
    ----------
    source : str, path-like, bytes, file object, PIL.Image.Image or numpy.ndarray
        The image.

    Returns
    -------
    numpy.ndarray
        float32 ``H×W`` luminance in [0, 1].

    Raises
    ------
    FileNotFoundError
        A path that names no file.
    ImageError
        Anything that is not a usable image (empty, not an image, corrupt, smaller
        than :data:`MIN_SIDE` or larger than :data:`MAX_PIXELS`).
    """
    # Image is unused here; dropping it would change a reached definition (a re-run).
    from PIL import Image, ImageOps  # noqa: F401

    if isinstance(source, np.ndarray):
        gray = _array_to_gray(source)
        if min(gray.shape) < MIN_SIDE:
            raise ImageError(f"The image is only {gray.shape[1]}×{gray.shape[0]} pixels; at least "
                             f"{MIN_SIDE}×{MIN_SIDE} are needed to see a digit.")
        if gray.size > MAX_PIXELS:
            raise ImageError(f"The image has {gray.size:,} pixels, more than MAX_PIXELS = {MAX_PIXELS:,}.")
    else:
        img = _open(source)
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not stop us; orientation is then as stored
            pass
        mode = img.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            arr = np.asarray(img).astype(np.float32)
            if mode == "F":
                top = 1.0 if arr.max() <= 1.0 else (255.0 if arr.max() <= 255.0 else float(arr.max()))
            else:
                top = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
                arr = np.clip(arr, 0, top)
            gray = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        else:
            if mode in ("1", "L", "RGB", "CMYK", "YCbCr", "LAB", "HSV") and "transparency" not in img.info:
                gray = np.asarray(img.convert("RGB").convert("L") if mode not in ("1", "L") else img.convert("L"),
                                  dtype=np.float32) / 255.0
            else:  # palette, LA, RGBA, La, RGBa, PA, or anything with transparency
                rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
                gray = _array_to_gray(rgba)
    long_side = max(gray.shape)
    if long_side > WORK_SIDE:
        gray = _block_mean(gray, math.ceil(long_side / WORK_SIDE)).astype(np.float32)
    return gray


# --- Finding the ink ----------------------------------------------------------------


def _border(a: np.ndarray) -> np.ndarray:
    m = max(1, int(round(0.03 * min(a.shape))))
    return np.concatenate([a[:m].ravel(), a[-m:].ravel(), a[m:-m, :m].ravel(), a[m:-m, -m:].ravel()])


def _box3(a: np.ndarray) -> np.ndarray:
    """3×3 mean filter (edges replicated)."""
    p = np.pad(a, 1, mode="edge")
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0))), axis=0), axis=1)
    return ((c[3:, 3:] - c[:-3, 3:] - c[3:, :-3] + c[:-3, :-3]) / 9.0).astype(np.float32)


def _remove_background(ink: np.ndarray) -> np.ndarray:
    """Subtract a plane fitted to the background (robustly: ink pixels are left out)."""
    h, w = ink.shape
    step = max(1, int(math.ceil(max(h, w) / 256)))  # fit on a subsample, for speed
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    sample = ink[::step, ::step].ravel().astype(np.float64)
    design = np.stack([np.ones(sample.size), xs.ravel() / w - 0.5, ys.ravel() / h - 0.5], axis=1)
    keep = np.ones(sample.size, dtype=bool)
    coef = np.array([np.median(sample), 0.0, 0.0])
    for _ in range(4):
        if keep.sum() < 3:
            break
        coef, *_ = np.linalg.lstsq(design[keep], sample[keep], rcond=None)
        residual = sample - design @ coef
        sigma = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep]))) + 1e-6
        keep = residual < 2.5 * sigma  # ink is brighter than the background
    yy, xx = np.mgrid[0:h, 0:w]
    plane = coef[0] + coef[1] * (xx / w - 0.5) + coef[2] * (yy / h - 0.5)
    return np.clip(ink - plane, 0.0, None).astype(np.float32)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: (row, start, end exclusive), in row-major order."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rows, starts, ends


def _components(mask: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """8-connected components of a boolean image, found on its horizontal runs.

    Returns the runs, each run's component label (0..n-1) and each component's size.
    """
    rows, starts, ends = _runs(mask)
    n = rows.size
    if n == 0:
        return (rows, starts, ends), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    big = mask.shape[1] + 4
    key_start = rows * big + starts
    key_end = rows * big + ends
    # For run i, the runs of the next row touching it (8-connectivity): start_j <= end_i and end_j >= start_i.
    lo = np.searchsorted(key_end, (rows + 1) * big + starts, side="left")
    hi = np.searchsorted(key_start, (rows + 1) * big + ends, side="right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    b = np.repeat(lo, counts) + offsets
    labels = np.arange(n)
    while True:  # label propagation with pointer jumping: every run gets its component's smallest run index
        m = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, labels):
            break
        labels = new
    _, labels = np.unique(labels, return_inverse=True)
    sizes = np.bincount(labels, weights=ends - starts).astype(np.int64)
    return (rows, starts, ends), labels, sizes


def _paint(shape: tuple[int, int], rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    h, w = shape
    marks = np.zeros((h, w + 1), dtype=np.int32)
    np.add.at(marks, (rows, starts), 1)
    np.add.at(marks, (rows, ends), -1)
    return np.cumsum(marks, axis=1)[:, :w] > 0


def _dilate(a: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level dilation: the maximum over a (2r+1)×(2r+1) square, separable, in O(log r) passes."""
    if radius <= 0:
        return a
    out = np.asarray(a, dtype=np.float32)
    size = 2 * radius + 1
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="constant", constant_values=-np.inf)
        # m[i] = max(padded[i : i + covered]); doubling the window until it is `size` wide.
        m, covered = padded, 1
        while covered < size:
            step = min(covered, size - covered)
            m = np.maximum(m, np.roll(m, -step, axis=axis))
            covered += step
        out = np.take(m, np.arange(n), axis=axis)
    return out


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary drawing: 2·area / number of boundary pixels."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    boundary = int((mask & ~inner).sum())
    return 2.0 * float(mask.sum()) / max(boundary, 1)


def _fit_box(ink: np.ndarray, box: int) -> np.ndarray:
    """Resize (anti-aliased) so that the longer side is ``box`` pixels, keeping the aspect ratio."""
    from PIL import Image

    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    img = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    return np.clip(np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32), 0.0, 1.0)


def _centre_by_mass(fitted: np.ndarray, field: int) -> np.ndarray:
    """Place ``fitted`` in a ``field×field`` image so its centre of mass is at the middle pixel."""
    h, w = fitted.shape
    out = np.zeros((field, field), dtype=np.float32)
    total = float(fitted.sum())
    ys, xs = np.mgrid[0:h, 0:w]
    cy = float((fitted * ys).sum() / total) if total > 0 else (h - 1) / 2
    cx = float((fitted * xs).sum() / total) if total > 0 else (w - 1) / 2
    top = int(round(field / 2 - cy))
    left = int(round(field / 2 - cx))
    # Paste with clipping (a lopsided digit may poke out of the field, as in MNIST).
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, field), min(left + w, field)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = fitted[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def prepare_digit_steps(image: ImageSource) -> dict[str, np.ndarray]:
    """:func:`prepare_digit`, keeping every intermediate image (for teaching and debugging).

    Parameters
    ----------
    image : str, path-like, bytes, file object, PIL.Image.Image or numpy.ndarray
        As for :func:`prepare_digit`.

    Returns
    -------
    dict of str to numpy.ndarray
        In order: ``"grayscale"`` (as read, 1 = white), ``"ink"`` (light ink on
        black, background removed), ``"mask"`` (the pixels kept as the digit),
        ``"cropped"`` (the ink in the digit's bounding box), ``"fitted"`` (into 20×20)
        and ``"centred"`` (28×28, the network's input).

    Raises
    ------
    FileNotFoundError, ImageError, NoDigitFoundError
        As :func:`prepare_digit`.
    """
    gray = load_image(image)
    if float(np.ptp(gray)) < MIN_CONTRAST:
        raise NoDigitFoundError(
            f"No digit found: the image is uniform (its darkest and lightest pixels differ by "
            f"{float(np.ptp(gray)):.1%}). Is it a blank page?")

    # Light background (paper) → invert, so the ink is bright on black as in MNIST.
    light_background = float(np.median(_border(gray))) >= float(gray.mean())
    ink = (1.0 - gray) if light_background else gray.copy()
    ink = _remove_background(ink)

    smooth = _box3(ink)
    noise = 1.4826 * float(np.median(np.abs(smooth - np.median(smooth))))
    peak = float(smooth.max())
    if peak < MIN_CONTRAST or peak < MIN_SNR * noise:
        raise NoDigitFoundError(
            f"No digit found: nothing stands out from the background (strongest mark {peak:.2f}, "
            f"background noise {noise:.3f}). Is it a blank page, or only noise?")
    mask = smooth > max(0.3 * peak, 4.0 * noise, 0.5 * MIN_CONTRAST)
    ink_fraction = float(mask.mean())
    if ink_fraction > MAX_INK_FRACTION:
        raise NoDigitFoundError(
            f"No digit found: the 'ink' covers {ink_fraction:.0%} of the image. Photograph one "
            "digit on plain paper, filling about half the frame.")

    (rows, starts, ends), labels, sizes = _components(mask)
    largest = int(sizes.max()) if sizes.size else 0
    if largest == 0 or (sizes.size > 50 and largest < 0.1 * sizes.sum()):
        raise NoDigitFoundError(
            f"No digit found: the marks are {sizes.size} scattered specks, the largest of "
            f"{largest} pixels — that looks like noise, not a written digit.")
    keep = sizes >= KEEP_FRACTION * largest
    run_kept = keep[labels]
    digit_mask = _paint(mask.shape, rows[run_kept], starts[run_kept], ends[run_kept])
    # The stroke's own level; like MNIST's 20×20 fit, the box is where the ink reaches half of it.
    level = max(float(np.percentile(ink[digit_mask], 75)), 1e-6)
    core = digit_mask & (ink >= 0.5 * level)
    if not core.any():
        core = digit_mask
    r = np.flatnonzero(core.any(axis=1))
    c = np.flatnonzero(core.any(axis=0))
    y0, y1, x0, x1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
    long_side = max(y1 - y0, x1 - x0)
    if long_side < max(4, MIN_DIGIT_FRACTION * max(gray.shape)):
        raise NoDigitFoundError(
            f"No digit found: the only mark is a speck of {long_side} pixels in a "
            f"{gray.shape[1]}×{gray.shape[0]} image. Photograph the digit larger.")

    # Keep the ink of the digit (with its anti-aliased rim), drop everything else;
    # strokes at full strength, as MNIST's (its stroke centres are 255).
    clean = np.where(_dilate(digit_mask.astype(np.float32), 1) > 0, ink, 0.0)
    cropped = np.clip(clean[y0:y1, x0:x1] / level, 0.0, 1.0).astype(np.float32)
    crop_mask = core[y0:y1, x0:x1]

    # A thin pen stroke would all but vanish at 20×20: thicken it to MNIST's stroke width.
    scale = BOX / long_side
    width = _stroke_width(crop_mask)
    if width * scale < MIN_STROKE:
        radius = max(1, int(round((TARGET_STROKE / scale - width) / 2)))
        cropped = _dilate(np.pad(cropped, radius), radius)

    fitted = _fit_box(cropped, BOX)
    centred = _centre_by_mass(fitted, FIELD)
    if float(centred.max()) <= 0.0:
        raise NoDigitFoundError("No digit found: nothing was left after centring the marks.")
    return {
        "grayscale": gray,
        "ink": ink,
        "mask": digit_mask,
        "cropped": cropped,
        "fitted": fitted,
        "centred": centred,
    }


def prepare_digit(image: ImageSource) -> np.ndarray:
    """Any image of one handwritten digit → an MNIST-like ``28×28`` float32 array in [0, 1].

    Follows MNIST's recipe (grayscale; inverted when the background is light, so
    the ink is bright on black; cropped to the ink; fitted into a 20×20 box keeping
    the aspect ratio; centred by its centre of mass in 28×28).  Feed it to a model
    as ``digit[None, :, :, None]``.

    Parameters
    ----------
    image : str, path-like, bytes, file object, PIL.Image.Image or numpy.ndarray
        A path, the file's bytes, a binary file object, a PIL image or an array.

    Returns
    -------
    numpy.ndarray
        float32 ``28×28``, the digit bright on black.

    Raises
    ------
    FileNotFoundError
        A path that names no file.
    ImageError
        An input that is not a usable image.
    NoDigitFoundError
        The image holds no digit (blank, noise, ink everywhere).
    """
    return prepare_digit_steps(image)["centred"]


def preview(source: ImageSource, max_side: int = 256) -> np.ndarray:
    """The image as a reader sees it, for display: RGB uint8, at most ``max_side`` pixels a side.

    Colour is kept (unlike :func:`load_image`); transparency is shown on white,
    16-bit and float images are scaled to 8 bits.

    Parameters
    ----------
    source : str, path-like, bytes, file object, PIL.Image.Image or numpy.ndarray
        The image, as for :func:`load_image`.
    max_side : int
        Longest side of the result in pixels (positive); smaller images keep their size.

    Returns
    -------
    numpy.ndarray
        uint8 ``H×W×3``.
    """
    from PIL import Image, ImageOps

    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}.")
    if isinstance(source, np.ndarray):
        a = np.asarray(source)
        if a.ndim == 3 and a.shape[-1] in (3, 4):
            a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else (65535.0 if a.dtype == np.uint16 else 1.0))
            rgb = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:]) if a.shape[-1] == 4 else a[..., :3]
        else:
            rgb = np.repeat(_array_to_gray(a)[..., None], 3, axis=-1)
        img = Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    else:
        img = _open(source)
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:
            pass
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            gray = load_image(img)
            img = Image.fromarray(np.round(gray * 255).astype(np.uint8), "L")
        elif img.mode not in ("RGB", "L"):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        img = img.convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)
