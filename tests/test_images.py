"""cnnbook.images: any image file → an MNIST-like 28×28 input, or a clear refusal."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnbook import images
from cnnbook.images import ImageError, NoDigitFoundError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "book" / "images"


# --- Helpers: a "7" drawn on a canvas, in every format -------------------------------


def seven(size=(200, 240), box=(50, 30, 100, 170), pen=None, ink=20, paper=235) -> Image.Image:
    """Dark ink on light paper (mode L); the pen is MNIST-like (15% of the height) unless given."""
    img = Image.new("L", size, paper)
    left, top, w, h = box
    pen = pen if pen is not None else max(1, round(0.15 * h))
    draw = ImageDraw.Draw(img)
    draw.line([(left, top), (left + w, top), (left + 0.35 * w, top + h)], fill=ink, width=pen, joint="curve")
    return img


def as_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def ink_bbox(digit: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero((digit > level).any(axis=1))
    cols = np.flatnonzero((digit > level).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:28, 0:28]
    m = digit.sum()
    return float((digit * ys).sum() / m), float((digit * xs).sum() / m)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pixel correlation, allowing a shift of one pixel (the centring rounds to whole pixels)."""
    best = -1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.roll(np.roll(a, dy, axis=0), dx, axis=1)
            best = max(best, float(np.corrcoef(shifted.ravel(), b.ravel())[0, 1]))
    return best


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return images.prepare_digit(seven())


# --- The MNIST recipe -----------------------------------------------------------------


def test_output_is_mnist_like(reference):
    assert reference.shape == (28, 28)
    assert reference.dtype == np.float32
    assert reference.min() >= 0.0 and reference.max() <= 1.0
    assert reference.max() > 0.9  # strokes at full strength, like MNIST's 255
    # Light ink on black; the narrow side is centred, leaving empty columns at both edges.
    assert reference[:, :3].max() == 0 and reference[:, -3:].max() == 0
    # Fitted into 20×20 keeping the aspect ratio: the longer side is 20 pixels.
    h, w = ink_bbox(reference, level=0.0)
    assert max(h, w) == 20 and min(h, w) < 20
    # Centred by its centre of mass (to the pixel, as an integer shift).
    cy, cx = centre_of_mass(reference)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_light_background_is_inverted_dark_background_is_not(reference):
    dark_bg = Image.fromarray(255 - np.asarray(seven()))  # light ink on black, like MNIST itself
    assert corr(images.prepare_digit(dark_bg), reference) > 0.99


def test_off_centre_digit_is_centred(reference):
    corner = seven(size=(900, 700), box=(720, 480, 100, 170))
    digit = images.prepare_digit(corner)
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert corr(digit, reference) > 0.95


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA", "CMYK", "1", "I", "F"])
def test_colour_modes(mode, reference):
    img = seven().convert(mode, dither=Image.Dither.NONE) if mode == "1" else seven().convert(mode)
    assert corr(images.prepare_digit(img), reference) > 0.97


def test_sixteen_bit_png(reference):
    arr = (np.asarray(seven(), dtype=np.uint16) * 257).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    data = as_bytes(img)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    gray = images.load_image(data)
    assert gray.dtype == np.float32 and 0.0 <= gray.min() and gray.max() <= 1.0
    assert corr(images.prepare_digit(data), reference) > 0.98


def test_sixteen_bit_with_little_contrast_is_stretched(reference):
    # A 16-bit scan using only a band of its values (as raw scans often do).
    arr = (30000 + (np.asarray(seven(), dtype=np.float64) / 255) * 9000).astype(np.uint16)
    assert corr(images.prepare_digit(Image.fromarray(arr)), reference) > 0.98


def test_rgba_transparent_background_is_paper(reference):
    alpha = 255 - np.asarray(seven())  # black strokes, opacity = ink
    rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    assert corr(images.prepare_digit(Image.fromarray(rgba, "RGBA")), reference) > 0.98


def test_rgba_white_strokes_on_transparency_uses_alpha(reference):
    alpha = 255 - np.asarray(seven())
    rgba = np.full((*alpha.shape, 4), 255, dtype=np.uint8)  # white strokes …
    rgba[..., 3] = alpha  # … on a transparent background: invisible on white paper
    assert corr(images.prepare_digit(as_bytes(Image.fromarray(rgba, "RGBA"))), reference) > 0.98


def test_palette_with_transparency(reference):
    img = seven().convert("RGB").quantize(8)
    img.info["transparency"] = int(np.asarray(img)[0, 0])  # the paper's palette index is transparent
    assert corr(images.prepare_digit(as_bytes(img)), reference) > 0.98


def test_every_input_type(tmp_path, reference):
    img = seven()
    path = tmp_path / "seven.png"
    img.save(path)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), img, np.asarray(img)):
        assert corr(images.prepare_digit(source), reference) > 0.999


@pytest.mark.parametrize("dtype", ["bool", "float01", "float255", "uint16", "rgb"])
def test_arrays(dtype, reference):
    a = np.asarray(seven())
    arrays = {
        "bool": a > 128,
        "float01": a / 255.0,
        "float255": a.astype(np.float64),
        "uint16": a.astype(np.uint16) * 257,
        "rgb": np.stack([a] * 3, axis=-1),
    }
    assert corr(images.prepare_digit(arrays[dtype]), reference) > 0.95


def test_jpeg_photo_with_gradient_and_noise(reference):
    rng = np.random.default_rng(0)
    a = np.asarray(seven(size=(480, 400), box=(150, 80, 160, 260)), dtype=np.float64)
    gradient = np.linspace(0.55, 1.0, a.shape[1])[None, :]  # light falls off across the page
    photo = np.clip(a * gradient + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8)
    digit = images.prepare_digit(as_bytes(Image.fromarray(photo).convert("RGB"), "JPEG", quality=80))
    assert corr(digit, reference) > 0.9


def test_exif_rotation_is_applied():
    img = seven().convert("RGB")  # 200 wide, 240 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    gray = images.load_image(as_bytes(img, "JPEG", exif=exif))
    assert gray.shape == (200, 240)


def test_thin_pen_is_thickened(reference):
    thin = seven(size=(800, 900), box=(200, 100, 380, 650), pen=3)
    digit = images.prepare_digit(thin)
    assert corr(digit, reference) > 0.9
    assert (digit > 0.5).sum() >= 0.6 * (reference > 0.5).sum()  # not a faint hairline


def test_huge_canvas_is_reduced_and_works(reference):
    big = seven(size=(3000, 2400), box=(900, 500, 1000, 1500))
    assert max(images.load_image(big).shape) <= images.WORK_SIDE
    assert corr(images.prepare_digit(big), reference) > 0.9


def test_tiny_image_works(reference):
    small = seven(size=(16, 20), box=(4, 2, 8, 15))
    assert corr(images.prepare_digit(small), reference) > 0.85


def test_mnist_digit_round_trip():
    """An MNIST test image passed through the recipe comes back (almost) unchanged."""
    from cnnbook import data

    try:
        ds = data.load_dataset("mnist", download=False)
    except Exception as err:  # pragma: no cover - only without the data
        pytest.skip(f"MNIST not available: {err}")
    scores = [corr(images.prepare_digit(ds.x_test[i]), ds.x_test[i, :, :, 0] / 255.0) for i in range(50)]
    assert np.median(scores) > 0.98 and min(scores) > 0.75


def test_steps_are_returned_in_order():
    steps = images.prepare_digit_steps(seven())
    assert list(steps) == ["grayscale", "ink", "mask", "cropped", "fitted", "centred"]
    assert max(steps["fitted"].shape) == 20
    assert steps["centred"].shape == (28, 28)


def test_sample_images_in_the_book():
    files = sorted(SAMPLES.glob("digit_*.*"))
    assert len(files) == 10
    for path in files:
        assert path.stat().st_size < 200_000
        digit = images.prepare_digit(path)
        assert digit.shape == (28, 28) and digit.max() > 0.9
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(SAMPLES / "blank_page.jpg")


# --- Refusals -----------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        images.prepare_digit(path)
    with pytest.raises(ImageError, match="empty"):
        images.prepare_digit(b"")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is a text file, not a picture of a digit\n")
    with pytest.raises(ImageError, match="not an image"):
        images.prepare_digit(path)
    with pytest.raises(ImageError, match="not an image"):
        images.prepare_digit(np.random.default_rng(0).bytes(5000))


def test_truncated_image():
    data = as_bytes(seven())
    with pytest.raises(ImageError):
        images.prepare_digit(data[: len(data) // 2])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        images.prepare_digit(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        images.prepare_digit(tmp_path)


def test_unsupported_objects():
    with pytest.raises(ImageError):
        images.prepare_digit(12345)
    with pytest.raises(ImageError):
        images.prepare_digit(io.StringIO("text"))
    with pytest.raises(ImageError, match="shape"):
        images.prepare_digit(np.zeros((4, 28, 28)))
    with pytest.raises(ImageError, match="NaN"):
        images.prepare_digit(np.full((28, 28), np.nan))


def test_too_small():
    with pytest.raises(ImageError, match="at least"):
        images.prepare_digit(Image.new("L", (5, 5), 255))
    with pytest.raises(ImageError, match="at least"):
        images.prepare_digit(np.zeros((3, 100)))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width×height`` pixels (a decompression bomb)."""
    data = bytearray(as_bytes(Image.new("1", (8, 8), 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("size", [(8000, 7000), (30000, 30000)])
def test_gigantic_images_are_refused_before_decoding(size):
    with pytest.raises(ImageError, match="(MAX_PIXELS|too large)"):
        images.prepare_digit(_png_claiming(*size))


def test_blank_pages():
    with pytest.raises(NoDigitFoundError, match="blank"):
        images.prepare_digit(Image.new("L", (300, 300), 250))
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(Image.new("RGBA", (300, 300), (0, 0, 0, 0)))  # fully transparent
    rng = np.random.default_rng(1)
    gradient = np.linspace(150, 240, 400)[None, :] + rng.normal(0, 4, (300, 400))
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(np.clip(gradient, 0, 255).astype(np.uint8))


def test_noise_is_not_a_digit():
    rng = np.random.default_rng(2)
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(rng.integers(0, 256, (200, 200), dtype=np.uint8))
    salt = np.full((300, 300), 240, dtype=np.uint8)
    salt[rng.random((300, 300)) < 0.03] = 10  # scattered specks of "ink"
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(salt)


def test_ink_everywhere_is_not_a_digit():
    page = np.full((200, 200), 240, dtype=np.uint8)
    page[15:185, 15:185] = 10  # a dark object filling most of a light frame
    with pytest.raises(NoDigitFoundError):
        images.prepare_digit(page)


def test_a_speck_is_not_a_digit():
    page = np.full((1000, 1000), 240, dtype=np.uint8)
    page[500:503, 500:503] = 0  # a dust speck
    with pytest.raises(NoDigitFoundError, match="speck"):
        images.prepare_digit(page)


def test_errors_are_value_errors():
    assert issubclass(ImageError, ValueError) and issubclass(NoDigitFoundError, ValueError)


def test_preview_keeps_colour_and_handles_awkward_modes(tmp_path):
    red = Image.new("RGB", (400, 300), (200, 10, 10))
    shown = images.preview(red, max_side=100)
    assert shown.shape == (75, 100, 3) and shown.dtype == np.uint8
    assert tuple(shown[0, 0]) == (200, 10, 10)
    transparent = images.preview(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))
    assert (transparent == 255).all()  # transparency shown on white
    sixteen = Image.fromarray(np.full((40, 40), 65535, dtype=np.uint16))
    assert (images.preview(sixteen) == 255).all()
    assert images.preview(np.zeros((30, 30), np.uint8)).shape == (30, 30, 3)
    with pytest.raises(ImageError):
        images.preview(b"not an image")
