"""Datasets: where they come from, how they are checked, split and fed to Keras.

``load_dataset(name)`` looks for the official files, in this order, in

1. the folder passed as ``data_dir`` or named by ``$CNNBOOK_DATA_DIR``,
2. Keras' cache, ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``),
3. Debian's ``/usr/share/datasets`` (``apt-get install dataset-fashion-mnist``),

and otherwise downloads them from the same origins Keras uses (or from
``$CNNBOOK_MIRROR``, in which ``{name}`` stands for the dataset's name) into
Keras' cache.  Every file is checked against a known checksum before it is
parsed; a download that fails the check is deleted, never cached.  This module
imports no other :mod:`cnnbook` module, and imports TensorFlow only inside
:func:`make_pipeline`.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "ChecksumError",
    "Dataset",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "Splits",
    "channel_statistics",
    "default_search_dirs",
    "load_dataset",
    "make_pipeline",
    "prepare",
    "read_idx",
    "stratified_split",
    "stratified_subset",
    "to_float",
]


class DatasetNotFoundError(FileNotFoundError):
    """No source of a dataset worked; the message says what to do."""


class ChecksumError(ValueError):
    """A file's bytes (or decoded arrays) differ from the official release."""


class DatasetFormatError(ValueError):
    """A file is not in the format it claims to be (IDX header, size, archive)."""


# --- What each dataset is made of ------------------------------------------------

# Canonical md5 of the *decompressed* IDX files.  They hold whether the file on
# disk is the official .gz, a re-compressed copy (Debian's) or uncompressed.
_IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

# Keras' own single-file MNIST cache (keras.datasets.mnist), sha256 of the file.
_KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# CIFAR-10: the official python archive (md5 published on the CIFAR page) and,
# for .npz copies whose zip container is not byte-stable, the sha256 of each
# decoded array (C order).
_CIFAR10_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"
# The official name, tf.keras 2's cache name and Keras 3's (get_file(..., extract=True)).
_CIFAR10_TAR_NAMES = ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz", "cifar-10-batches-py-target_archive")
_CIFAR10_ARRAY_SHA256 = {
    "x_train": "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a",
    "y_train": "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253",
    "x_test": "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04",
    "y_test": "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5",
}

_CIFAR10_SHAPES = {
    "x_train": (50000, 32, 32, 3), "y_train": (50000,), "x_test": (10000, 32, 32, 3), "y_test": (10000,),
}

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}

# Sub-folders a data directory may hold each dataset in ("" = the folder itself).
_SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw", ""),
    "fashion_mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", ""),
    "cifar10": ("cifar10", "cifar-10", ""),
}

# Where a download comes from: the origins Keras' own loaders use.
_ORIGINS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
}
_OFFICIAL_PAGES = {
    "mnist": "http://yann.lecun.com/exdb/mnist/ (mirror: https://storage.googleapis.com/cvdf-datasets/mnist/)",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html",
}

DATASETS = tuple(CLASS_NAMES)

_IDX_MAGIC = {2049: 1, 2051: 3}  # unsigned-byte labels (1-D) and images (3-D)


@dataclass(frozen=True)
class Dataset:
    """A dataset as published: uint8 images ``N×H×W×C`` and uint8 labels ``N``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_test, y_test)``."""
        return self.x_test, self.y_test

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``H×W×C``."""
        return tuple(self.x_train.shape[1:])


# --- Checksums and file formats --------------------------------------------------


def _digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _expect_digest(actual: str, expected: str, what: str, advice: str) -> None:
    """Raise :class:`ChecksumError` ("``what`` is ``actual``, expected ``expected``. ``advice``") on a mismatch."""
    if actual != expected:
        raise ChecksumError(f"{what} is {actual}, expected {expected}. {advice}")


def _what_to_do(name: str) -> str:
    lines = [
        f"Download the official files from {_OFFICIAL_PAGES[name]}",
        "and put them in a folder named by $CNNBOOK_DATA_DIR (or in ~/.keras/datasets),",
        f"or let cnnbook download them (origin {_ORIGINS[name]}; set $CNNBOOK_MIRROR to use a mirror).",
    ]
    if name == "fashion_mnist":
        lines.append("On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist.")
    return "\n".join(lines)


def read_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse an uncompressed IDX file of unsigned bytes (the MNIST format).

    Checks the magic number (2049 for labels, 2051 for images), the dimensions
    and that the size is exactly header + product of dimensions.

    Parameters
    ----------
    data : bytes
        The whole (decompressed) file.
    source : str
        What to call the file in error messages (e.g. its path).

    Returns
    -------
    numpy.ndarray
        uint8, shape ``N`` (labels) or ``N×H×W`` (images), a copy of the bytes.

    Raises
    ------
    DatasetFormatError
        Not an IDX file of unsigned bytes, or truncated, or with trailing bytes.
    """
    if len(data) < 8:
        raise DatasetFormatError(f"{source}: {len(data)} bytes is too short for an IDX header.")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _IDX_MAGIC:
        raise DatasetFormatError(
            f"{source}: magic number {magic} is not an IDX file of unsigned bytes "
            f"(expected 2049 for labels or 2051 for images). Is this the right file?"
        )
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetFormatError(f"{source}: truncated IDX header.")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DatasetFormatError(
            f"{source}: {len(data)} bytes, but the header {dims} promises {expected}; "
            "the file is truncated or has trailing bytes. Download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _read_verified_idx(path: Path, expected_md5: str) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip, by content: a download's ".part" file has no .gz suffix
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ChecksumError(
                f"{path}: the gzip stream is damaged ({exc}). Delete the file and download it again."
            ) from exc
    _expect_digest(_digest(raw, "md5"), expected_md5, f"{path}: md5 of the decompressed data",
                   "The file is corrupt or not the official release: delete it and download it again.")
    return read_idx(raw, source=str(path))


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# --- Finding the files -----------------------------------------------------------


def _keras_cache_dir() -> Path:
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home) if keras_home else Path.home() / ".keras"
    return base / "datasets"


def default_search_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders searched, in order: ``data_dir`` or ``$CNNBOOK_DATA_DIR``, Keras' cache, Debian's.

    Parameters
    ----------
    data_dir : str or path-like, optional
        A folder to search first; default ``$CNNBOOK_DATA_DIR`` when it is set.

    Returns
    -------
    list of pathlib.Path
        The folders in search order (they need not exist).
    """
    dirs = []
    explicit = data_dir if data_dir is not None else os.environ.get("CNNBOOK_DATA_DIR")
    if explicit:
        dirs.append(Path(explicit).expanduser())
    dirs += [_keras_cache_dir(), Path("/usr/share/datasets")]
    return dirs


def _check_readable(folder: Path) -> None:
    """Raise PermissionError when ``folder`` (or the way to it) cannot be read."""
    if folder.is_dir():
        with os.scandir(folder) as entries:
            next(entries, None)


def _candidates(name: str, folder: Path) -> Iterable[Path]:
    for sub in _SUBDIRS[name]:
        yield folder / sub if sub else folder


def _find_idx(name: str, folder: Path) -> dict[str, Path] | None:
    for base in _candidates(name, folder):
        found = {}
        for stem in _IDX_FILES[name]:
            for path in (base / f"{stem}.gz", base / stem):
                if path.is_file():
                    found[stem] = path
                    break
        if len(found) == len(_IDX_FILES[name]):
            return found
    return None


def _load_idx_dataset(name: str, files: dict[str, Path]) -> tuple[np.ndarray, ...]:
    arrays = {stem: _read_verified_idx(path, _IDX_FILES[name][stem]) for stem, path in files.items()}
    x_train = arrays["train-images-idx3-ubyte"][..., None]
    x_test = arrays["t10k-images-idx3-ubyte"][..., None]
    return x_train, arrays["train-labels-idx1-ubyte"], x_test, arrays["t10k-labels-idx1-ubyte"]


def _load_mnist_npz(path: Path) -> tuple[np.ndarray, ...]:
    _expect_digest(_file_digest(path, "sha256"), _KERAS_MNIST_NPZ_SHA256, f"{path}: sha256",
                   "Not Keras' mnist.npz: delete it and download it again.")
    with np.load(path, allow_pickle=False) as f:
        return f["x_train"][..., None], f["y_train"], f["x_test"][..., None], f["y_test"]


def _load_cifar10_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        # Our own file handle: np.load leaks its own when the zip is damaged.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            arrays = {key: f[key] for key in _CIFAR10_ARRAY_SHA256}
    except (OSError, ValueError, KeyError, zlib.error, EOFError, zipfile.BadZipFile) as exc:
        raise ChecksumError(
            f"{path}: cannot be read as a CIFAR-10 .npz ({exc}). Delete it and download it again."
        ) from exc
    for key, expected in _CIFAR10_ARRAY_SHA256.items():
        if arrays[key].dtype != np.uint8 or arrays[key].shape != _CIFAR10_SHAPES[key]:
            raise ChecksumError(
                f"{path}: array {key!r} is {arrays[key].dtype} {arrays[key].shape}, expected uint8 "
                f"{_CIFAR10_SHAPES[key]}. Not the official CIFAR-10: delete it and download it again."
            )
        _expect_digest(_array_sha256(arrays[key]), expected, f"{path}: sha256 of array {key!r}",
                       "The file is corrupt or not the official CIFAR-10: delete it and download it again.")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def _load_cifar10_tar(path: Path) -> tuple[np.ndarray, ...]:
    _expect_digest(_file_digest(path, "md5"), _CIFAR10_TAR_MD5, f"{path}: md5",
                   "Not the official CIFAR-10 archive: delete it and download it again.")

    def batch(tar: tarfile.TarFile, member: str) -> tuple[np.ndarray, np.ndarray]:
        fileobj = tar.extractfile(f"cifar-10-batches-py/{member}")
        if fileobj is None:
            raise DatasetFormatError(f"{path}: {member} missing from the archive.")
        # Safe to unpickle: the archive's md5 matched the official release above.
        d = pickle.loads(fileobj.read(), encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x), np.asarray(d[b"labels"], dtype=np.uint8)

    with tarfile.open(path, "r:gz") as tar:
        train = [batch(tar, f"data_batch_{i}") for i in range(1, 6)]
        x_test, y_test = batch(tar, "test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _find_local(name: str, folder: Path) -> tuple[Callable[[], tuple[np.ndarray, ...]], Path] | None:
    """Return (loader, path) for the first usable copy of ``name`` in ``folder``."""
    if name in _IDX_FILES:
        files = _find_idx(name, folder)
        if files:
            return (lambda: _load_idx_dataset(name, files)), files["train-images-idx3-ubyte"].parent
        if name == "mnist":
            for base in _candidates(name, folder):
                npz = base / "mnist.npz"
                if npz.is_file():
                    return (lambda: _load_mnist_npz(npz)), npz  # noqa: B023 -- returned at once, never called late
        return None
    for base in _candidates(name, folder):
        npz = base / "cifar10.npz"
        if npz.is_file():
            return (lambda: _load_cifar10_npz(npz)), npz  # noqa: B023 -- returned at once, never called late
        for tar_name in _CIFAR10_TAR_NAMES:
            tar = base / tar_name
            if tar.is_file():
                return (lambda: _load_cifar10_tar(tar)), tar  # noqa: B023 -- returned at once, never called late
    return None


# --- Downloading -----------------------------------------------------------------


def _download(url: str, destination: Path, check: Callable[[Path], Any], timeout: float = 60.0) -> None:
    """Download ``url`` to ``destination`` only if ``check`` accepts the bytes.

    The bytes go to a temporary file beside the destination; a failed check or
    an interrupted transfer deletes it, so nothing corrupt is ever cached.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            promised, received = response.headers.get("Content-Length"), 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                received += len(block)
        # urllib returns a cut-off body silently; say so rather than blame the checksum.
        if promised is not None and received < int(promised):
            raise urllib.error.ContentTooShortError(
                f"retrieval incomplete: got {received} of {promised} bytes from {url}", None
            )
        try:
            check(tmp)
        except (ChecksumError, DatasetFormatError) as exc:
            raise type(exc)(
                f"The download from {url} failed its check and was deleted: {exc}"
            ) from exc
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def _origin(name: str) -> str:
    """``$CNNBOOK_MIRROR`` (``{name}`` in it becomes the dataset's name) or the official origin."""
    origin = os.environ.get("CNNBOOK_MIRROR") or _ORIGINS[name]
    origin = origin.replace("{name}", name)
    return origin if origin.endswith("/") else origin + "/"


def _download_dataset(name: str, cache: Path) -> tuple[Callable[[], tuple[np.ndarray, ...]], Path]:
    origin = _origin(name)
    if name in _IDX_FILES:
        target = cache / _SUBDIRS[name][0]
        for stem, md5 in _IDX_FILES[name].items():
            dest = target / f"{stem}.gz"
            if not dest.is_file():
                _download(origin + dest.name, dest, lambda p, md5=md5: _read_verified_idx(p, md5))
        files = _find_idx(name, target)
        assert files is not None  # all four were just verified and written
        return (lambda: _load_idx_dataset(name, files)), target
    dest = cache / _CIFAR10_TAR_NAMES[0]
    _download(origin + dest.name, dest, _check_cifar10_tar_md5)
    return (lambda: _load_cifar10_tar(dest)), dest


def _check_cifar10_tar_md5(path: Path) -> None:
    _expect_digest(_file_digest(path, "md5"), _CIFAR10_TAR_MD5, "The download of cifar-10-python.tar.gz: md5",
                   "It was deleted. Try again, or download it by hand from " + _OFFICIAL_PAGES["cifar10"])


# --- Public loading API ----------------------------------------------------------


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    search_dirs: Sequence[str | os.PathLike[str]] | None = None,
    download: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` as verified uint8 arrays.

    Parameters
    ----------
    name:
        Which dataset.
    data_dir:
        A folder searched first (default: ``$CNNBOOK_DATA_DIR``).
    search_dirs:
        Replace the whole search list (useful in tests and for unusual setups).
    download:
        Whether to download when no folder has the files.  Default: yes, unless
        ``$CNNBOOK_OFFLINE`` is set to ``1``.
    cache_dir:
        Where downloads go (default: Keras' cache, ``~/.keras/datasets``).

    Returns
    -------
    Dataset
        ``x_*`` have shape ``N×H×W×C`` (C = 1 for the MNISTs, 3 for CIFAR-10),
        ``y_*`` shape ``N``, both uint8.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`DATASETS`.
    ChecksumError
        A file found (or downloaded) is not byte-for-byte the official release:
        wrong checksum, damaged gzip stream or unreadable archive.  Checked
        before anything is parsed; a bad download is deleted, never cached.
    DatasetFormatError
        A file passed its checksum but is not valid IDX (cannot happen with the
        known checksums; :func:`read_idx` raises it for arbitrary bytes).
    DatasetNotFoundError
        No folder has the files and downloading is off or failed, or a data
        folder exists but cannot be read; the message names the dataset,
        every place searched and what to do.
    """
    if name not in CLASS_NAMES:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    folders = [Path(d) for d in search_dirs] if search_dirs is not None else default_search_dirs(data_dir)
    if download is None:
        download = os.environ.get("CNNBOOK_OFFLINE", "0").strip().lower() not in ("1", "true", "yes")

    for folder in folders:
        try:
            _check_readable(folder)
            found = _find_local(name, folder)
            if found is not None:
                loader, path = found
                return _make_dataset(name, loader(), str(path))
        except PermissionError as exc:
            raise DatasetNotFoundError(
                f"Could not load the dataset {name!r}: {exc.filename or folder} cannot be read "
                f"({exc.strerror}). Fix its permissions (chmod -R u+rX) or point $CNNBOOK_DATA_DIR elsewhere."
            ) from exc

    problems = []
    if download:
        cache = Path(cache_dir) if cache_dir is not None else _keras_cache_dir()
        try:
            loader, path = _download_dataset(name, cache)
            return _make_dataset(name, loader(), str(path))
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
            origin = _origin(name)
            problems.append(f"the download from {origin} failed: {exc}")
    else:
        problems.append("downloading was switched off ($CNNBOOK_OFFLINE=1 or download=False)")

    searched = "\n".join(f"  - {sub}" for folder in folders for sub in _candidates(name, folder)) or "  (none)"
    raise DatasetNotFoundError(
        f"Could not load the dataset {name!r}.\nSearched these folders:\n{searched}\n"
        f"and {'; '.join(problems)}.\nWhat to do:\n{_what_to_do(name)}"
    )


def _make_dataset(name: str, arrays: tuple[np.ndarray, ...], source: str) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=np.asarray(y_train, dtype=np.uint8).reshape(-1),
        x_test=x_test,
        y_test=np.asarray(y_test, dtype=np.uint8).reshape(-1),
        class_names=CLASS_NAMES[name],
        source=source,
    )


# --- Preprocessing and splits ----------------------------------------------------


def to_float(images: np.ndarray) -> np.ndarray:
    """Scale uint8 images to float32 in [0, 1] and make sure there is a channel axis.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 images, ``N×H×W`` or ``N×H×W×C``.

    Returns
    -------
    numpy.ndarray
        float32 ``N×H×W×C`` (``C = 1`` added for ``N×H×W``), values ``images / 255``.

    Raises
    ------
    ValueError
        ``images`` is not uint8 or not 3-D/4-D.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"to_float expects uint8 images (0..255), got {images.dtype}.")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"Expected images shaped N×H×W or N×H×W×C, got shape {images.shape}.")
    return images.astype(np.float32) / 255.0


def channel_statistics(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every channel of ``images`` (N×H×W×C), accumulated in float64.

    Parameters
    ----------
    images : array, N×H×W×C
        Any real dtype; float32 images in [0, 1] as :func:`prepare` makes them.
    chunk : int
        Images per step (bounds the memory of the float64 temporaries).

    Returns
    -------
    (mean, std) : two float64 arrays of length C

    Why float64: a float32 running sum has 24 significant bits, so once it
    passes 2**24 (about 16.8 million) adding a pixel value below 1 changes
    nothing.  CIFAR-10's 45,000 training images hold 46 million values per
    channel: ``x.mean(axis=(0, 1, 2))`` on float32 images stalls there and
    reports 2**24 / 46,080,000 = 0.3641 for every channel.
    """
    x = np.asarray(images)
    if x.ndim != 4 or len(x) == 0:
        raise ValueError(f"Expected a non-empty N×H×W×C array of images, got shape {x.shape}.")
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}.")
    count = x.shape[0] * x.shape[1] * x.shape[2]
    total = np.zeros(x.shape[-1], np.float64)
    for start in range(0, len(x), chunk):
        total += x[start : start + chunk].sum(axis=(0, 1, 2), dtype=np.float64)
    mean = total / count
    squares = np.zeros_like(mean)
    for start in range(0, len(x), chunk):  # second pass: no cancellation between two large sums
        squares += ((x[start : start + chunk].astype(np.float64) - mean) ** 2).sum(axis=(0, 1, 2))
    return mean, np.sqrt(squares / count)


def stratified_split(
    labels: np.ndarray, validation_size: int | float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, validation), keeping each class's share.

    ``validation_size`` is a count or a fraction in (0, 1).  The same seed gives
    the same indices; both index arrays are sorted and disjoint.

    Parameters
    ----------
    labels : numpy.ndarray
        ``N`` class labels (any hashable values NumPy can sort).
    validation_size : int or float
        Validation examples: a count in ``1 … N-1`` or a fraction in (0, 1).
    seed : int
        Seed of the NumPy random generator.

    Returns
    -------
    (train, validation) : two sorted int arrays of indices into ``labels``
        Together they cover ``0 … N-1`` exactly once.
    """
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if isinstance(validation_size, float):
        if not 0.0 < validation_size < 1.0:
            raise ValueError(f"validation_size as a fraction must be in (0, 1), got {validation_size}.")
        validation_size = int(round(validation_size * n))
    if not 0 < validation_size < n:
        raise ValueError(f"validation_size must be between 1 and {n - 1} samples, got {validation_size}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder allocation, so the total is exact and every class keeps its share.
    quota = counts * validation_size / n
    take = np.floor(quota).astype(int)
    remainder = validation_size - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:remainder]] += 1
    validation = []
    for cls, k in zip(classes, take):
        idx = np.flatnonzero(labels == cls)
        validation.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(validation))
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), val


def stratified_subset(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-balanced subset of ``size`` samples (all of them if ``size >= N``).

    Parameters
    ----------
    labels : numpy.ndarray
        ``N`` class labels.
    size : int
        How many indices to keep.
    seed : int
        Seed of the NumPy random generator.

    Returns
    -------
    numpy.ndarray
        Sorted indices into ``labels``, ``min(size, N)`` of them, each class in
        its share.
    """
    labels = np.asarray(labels).reshape(-1)
    if size >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, int(size), seed=seed)[1]


@dataclass(frozen=True)
class Splits:
    """Train / validation / test arrays, float32 in [0, 1] with a channel axis."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``H×W×C`` (what a model's input layer takes)."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)


def prepare(
    name: str = "mnist",
    *,
    validation_size: int | float = 5000,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    dataset: Dataset | None = None,
    **load_kwargs: Any,
) -> Splits:
    """Load, scale and split a dataset the way every chapter does.

    The validation split is carved out of the training set (stratified, seeded);
    ``train_size`` / ``test_size`` take stratified subsets for quick runs.  The
    test set is returned for the single final evaluation, never for tuning.

    Parameters
    ----------
    name : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` (see :data:`DATASETS`).
    validation_size : int or float
        Validation examples taken from the official training set: a count or a
        fraction in (0, 1).
    train_size : int, optional
        Keep a stratified subset of this many training examples (at least the
        number of classes); default all that remain after the validation split.
    test_size : int, optional
        Keep a stratified subset of this many test examples; default all.
    seed : int
        Seed of the splits and subsets.
    dataset : Dataset, optional
        An already loaded :class:`Dataset` (then nothing is loaded and ``name``
        is ignored).
    **load_kwargs
        Passed to :func:`load_dataset` (``data_dir``, ``download``, ...).

    Returns
    -------
    Splits
        float32 images in [0, 1] with a channel axis, uint8 labels, the class
        names and the dataset's name.
    """
    ds = dataset if dataset is not None else load_dataset(name, **load_kwargs)
    train_idx, val_idx = stratified_split(ds.y_train, validation_size, seed=seed)
    if train_size is not None:
        if train_size < ds.num_classes:
            raise ValueError(f"train_size must be at least the number of classes ({ds.num_classes}).")
        train_idx = train_idx[stratified_subset(ds.y_train[train_idx], train_size, seed=seed)]
    test_idx = np.arange(len(ds.y_test))
    if test_size is not None:
        test_idx = stratified_subset(ds.y_test, test_size, seed=seed)
    return Splits(
        x_train=to_float(ds.x_train[train_idx]),
        y_train=ds.y_train[train_idx],
        x_val=to_float(ds.x_train[val_idx]),
        y_val=ds.y_train[val_idx],
        x_test=to_float(ds.x_test[test_idx]),
        y_test=ds.y_test[test_idx],
        class_names=ds.class_names,
        name=ds.name,
    )


def make_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int | None = None,
    augment: Callable[..., Any] | None = None,
    cache: bool = True,
) -> "tf.data.Dataset":
    """A ``tf.data`` pipeline: cache → shuffle (seeded) → batch → augment → prefetch.

    ``augment`` is a Keras layer (or ``keras.Sequential`` of preprocessing layers)
    applied to each batch in training mode; pass it for the training set only.
    uint8 images are scaled to [0, 1] on the fly, which keeps memory low.

    Parameters
    ----------
    images : numpy.ndarray
        ``N×H×W×C`` images, float32 in [0, 1] or uint8.
    labels : numpy.ndarray
        ``N`` class indices.
    batch_size : int
        Examples per batch (positive); the last batch may be smaller.
    shuffle : bool
        Reshuffle the examples every epoch (training set only).
    seed : int, optional
        Seed of the shuffle.
    augment : callable, optional
        Called as ``augment(batch, training=True)`` on each batch of images.
    cache : bool
        Keep the examples in memory after the first pass.

    Returns
    -------
    tf.data.Dataset
        Batches of ``(images, labels)``, ready for ``model.fit`` or ``model.evaluate``.
    """
    import tensorflow as tf

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if np.asarray(images).dtype == np.uint8:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        # One batch at a time: the random layers draw from a stateful generator, and batches mapped in
        # parallel would draw in thread order, so the same seed would not give the same training run.
        # Prefetch still overlaps the augmentation of the next batch with the current training step.
        ds = ds.map(lambda x, y: (augment(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)
